package store

import "testing"

// TestKindCodes pins the stored codes: rows written with them must read
// back as the same kind forever.
func TestKindCodes(t *testing.T) {
	for kind, code := range map[string]int{KindMessage: 1, KindRead: 2, KindRecall: 10, KindEdit: 11, KindDelete: 12, KindSettings: 13} {
		if got := KindCode(kind); got != code {
			t.Errorf("KindCode(%q) = %d, want %d", kind, got, code)
		}
		if got := KindName(code); got != kind {
			t.Errorf("KindName(%d) = %q, want %q", code, got, kind)
		}
	}
	if KindName(99) != KindMessage {
		t.Error("an unknown code reads as a message")
	}
	defer func() {
		if recover() == nil {
			t.Error("KindCode of an unknown kind did not panic")
		}
	}()
	KindCode("typing")
}

func TestSettingsApply(t *testing.T) {
	yes, no, draft := true, false, "hi"
	s := Settings{Conv: "c", Pinned: true, TS: 5}
	if s.Apply(SettingsChange{Pinned: &yes}, 9) || s.TS != 5 {
		t.Fatalf("a change to the same value changed %+v", s)
	}
	if !s.Apply(SettingsChange{Pinned: &no, Draft: &draft}, 9) || s != (Settings{Conv: "c", Draft: "hi", TS: 9}) {
		t.Fatalf("after a change: %+v", s)
	}
}

func TestContactFlags(t *testing.T) {
	for c, want := range map[ContactChange][2]string{ContactAdd: {"true", "nil"}, ContactRemove: {"false", "nil"},
		ContactBlock: {"nil", "true"}, ContactUnblock: {"nil", "false"}} {
		contact, blocked, err := ContactFlags(c)
		show := func(b *bool) string {
			if b == nil {
				return "nil"
			}
			if *b {
				return "true"
			}
			return "false"
		}
		if err != nil || [2]string{show(contact), show(blocked)} != want {
			t.Errorf("change %d: %s %s %v, want %v", c, show(contact), show(blocked), err, want)
		}
	}
	if _, _, err := ContactFlags(0); err == nil {
		t.Error("change 0: no error")
	}
	if got := Relation("bob", false, false, 7); got != (Contact{User: "bob"}) {
		t.Errorf("no relation: %+v", got)
	}
}
