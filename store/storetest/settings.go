package storetest

import (
	"testing"

	"github.com/mqim/mqim/store"
)

func init() { featureTests = append(featureTests, featureTest{"Settings", testSettings}) }

func testSettings(t *testing.T, e *env) {
	e.users(t, "alice", "bob")
	e.send(t, e.req("alice", "bob", "c1", "one"))
	conv := "d:alice:bob"
	yes, draft := true, "half a thought"
	st, events, err := e.s.UpdateSettings(e.ctx, "alice", conv, store.SettingsChange{Pinned: &yes, Draft: &draft}, 100)
	want := store.Settings{Conv: conv, Pinned: true, Draft: draft, TS: 100}
	if err != nil || st != want {
		t.Fatalf("UpdateSettings: %+v %v, want %+v", st, err, want)
	}
	if len(events) != 1 || events[0].User != "alice" || events[0].Kind != store.KindSettings || events[0].Conv != conv ||
		events[0].Settings == nil || *events[0].Settings != want || events[0].Seq != e.latest(t, "alice") {
		t.Fatalf("events %+v", events)
	}
	ev := e.inbox(t, "alice")[events[0].Seq-1]
	if ev.Kind != store.KindSettings || ev.Conv != conv || ev.ConvSeq != 0 || ev.Seq != events[0].Seq {
		t.Fatalf("synced settings event %+v", ev)
	}
	if e.latest(t, "bob") != 1 {
		t.Fatal("settings event in the peer's inbox")
	}
	// No change: no event, time kept.
	if st, events, err := e.s.UpdateSettings(e.ctx, "alice", conv, store.SettingsChange{Pinned: &yes}, 200); err != nil || len(events) != 0 || st != want {
		t.Fatalf("unchanged: %+v %d %v", st, len(events), err)
	}
	no, empty := false, ""
	if st, _, _ := e.s.UpdateSettings(e.ctx, "alice", conv, store.SettingsChange{Pinned: &no, Muted: &yes, Archived: &yes, Draft: &empty}, 300); st != (store.Settings{Conv: conv, Muted: true, Archived: true, TS: 300}) {
		t.Fatalf("second change: %+v", st)
	}
	e.reopen()
	got, err := e.s.Settings(e.ctx, "alice", []string{"d:x:y", conv})
	if err != nil || len(got) != 2 || got[0] != (store.Settings{Conv: "d:x:y"}) || got[1] != (store.Settings{Conv: conv, Muted: true, Archived: true, TS: 300}) {
		t.Fatalf("Settings: %+v %v", got, err)
	}
	if got, _ := e.s.Settings(e.ctx, "bob", []string{conv}); got[0] != (store.Settings{Conv: conv}) {
		t.Fatalf("bob's settings: %+v", got)
	}
}
