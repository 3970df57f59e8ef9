package store

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

func TestRecallChange(t *testing.T) {
	const window = 2 * time.Minute
	msg := func(conv, from, typ string) Message {
		return Message{ID: 5, Conv: conv, From: from, Type: typ, Body: []byte("hi"), TS: 1000}
	}
	late := int64(1000) + window.Milliseconds() + 1
	for _, c := range []struct {
		name    string
		m       Message
		user    string
		role    string
		ts      int64
		changed bool
		want    error
	}{
		{"sender in the window", msg("d:alice:bob", "alice", "text"), "alice", RoleMember, 1000 + window.Milliseconds(), true, nil},
		{"sender after the window", msg("d:alice:bob", "alice", "text"), "alice", RoleMember, late, false, ErrNotAllowed},
		{"recipient", msg("d:alice:bob", "alice", "text"), "bob", RoleMember, 1001, false, ErrNotAllowed},
		{"recalled already", msg("d:alice:bob", "alice", TypeRecalled), "alice", RoleMember, 1001, false, nil},
		{"recalled already, after the window", msg("d:alice:bob", "alice", TypeRecalled), "alice", RoleMember, late, false, ErrNotAllowed},
		{"group member, another's", msg("g:1", "bob", "text"), "carol", RoleMember, 1001, false, ErrNotAllowed},
		{"group admin, late", msg("g:1", "bob", "text"), "carol", RoleAdmin, late, true, nil},
		{"group owner, late", msg("g:1", "bob", "text"), "carol", RoleOwner, late, true, nil},
		{"group event by the owner", msg("g:1", "alice", TypeGroup), "alice", RoleOwner, 1001, false, ErrNotAllowed},
		{"recall event by the owner", msg("g:1", "alice", TypeRecall), "alice", RoleOwner, 1001, false, ErrNotAllowed},
		{"edit event by its actor", msg("g:1", "alice", TypeEdit), "alice", RoleMember, 1001, false, ErrNotAllowed},
		// A direct conversation has no admins, whatever the role column says.
		{"direct 'admin'", msg("d:alice:bob", "alice", "text"), "bob", RoleAdmin, 1001, false, ErrNotAllowed},
	} {
		m := c.m
		changed, err := RecallChange(c.user, c.ts, window).Apply(&m, c.role)
		if changed != c.changed || !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: changed %v, %v; want %v, %v", c.name, changed, err, c.changed, c.want)
			continue
		}
		if changed && (m.Type != TypeRecalled || !bytes.Equal(m.Body, RecalledBody)) {
			t.Errorf("%s: recalled message %+v", c.name, m)
		}
		if !changed && m.Type != c.m.Type {
			t.Errorf("%s: refused recall changed the message to %+v", c.name, m)
		}
	}
}

func TestEditChange(t *testing.T) {
	refuse := errors.New("refused body")
	body := func(b []byte, err error) EditBody { return func(string) ([]byte, error) { return b, err } }
	for _, c := range []struct {
		name, user, typ string
		body            EditBody
		want            error
	}{
		{"sender", "alice", "text", body([]byte("new"), nil), nil},
		{"recipient", "bob", "text", body([]byte("new"), nil), ErrNotAllowed},
		{"recalled", "alice", TypeRecalled, body([]byte("new"), nil), ErrNotAllowed},
		{"recall event", "alice", TypeRecall, body([]byte("new"), nil), ErrNotAllowed},
		{"edit event", "alice", TypeEdit, body([]byte("new"), nil), ErrNotAllowed},
		{"refused body", "alice", "text", body(nil, refuse), refuse},
	} {
		m := Message{ID: 5, From: "alice", Type: c.typ, Body: []byte("old")}
		changed, err := EditChange(c.user, c.body).Apply(&m, RoleMember)
		if changed != (c.want == nil) || !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: changed %v, %v; want %v", c.name, changed, err, c.want)
		}
		if want := map[bool]string{true: "new", false: "old"}[c.want == nil]; string(m.Body) != want {
			t.Errorf("%s: body %q, want %q", c.name, m.Body, want)
		}
	}
}

func TestChangeAudience(t *testing.T) {
	for _, c := range []struct {
		c      MessageChange
		fanout string
		want   bool
	}{
		{RecallChange("a", 0, 0), "", true},
		{EditChange("a", nil), FanoutWrite, true},
		{RecallChange("a", 0, 0), FanoutRead, false},
		{DeleteChange(), "", false},
		{DeleteChange(), FanoutWrite, false},
	} {
		if got := c.c.ToMembers(c.fanout); got != c.want {
			t.Errorf("%s in %q: to members %v, want %v", c.c.Kind, c.fanout, got, c.want)
		}
	}
}

// TestChangeEvent: a recall or an edit in a read-fan-out group is an event
// at the group's next seq, naming the message, with the new body for an
// edit; nothing elsewhere, nor for a delete [IM-14.4-3].
func TestChangeEvent(t *testing.T) {
	m := Message{ID: 362388381503488, Conv: "g:1", Seq: 4, From: "bob", Type: "text", Body: []byte{0x81, 0xa1, 'a', 0x01}, TS: 1000}
	at := Stamp{TS: 2000, EventID: 99}
	for _, c := range []struct {
		c      MessageChange
		fanout string
	}{
		{RecallChange("bob", 0, 0), ""},
		{EditChange("bob", nil), FanoutWrite},
		{DeleteChange(), FanoutRead},
	} {
		if ev, err := c.c.Event(c.fanout, &m, "bob", at, 7); ev != nil || err != nil {
			t.Errorf("%s in %q: event %+v, %v", c.c.Kind, c.fanout, ev, err)
		}
	}
	type ref struct {
		MsgID   string             `msgpack:"msg_id"`
		ConvSeq int64              `msgpack:"conv_seq"`
		Body    msgpack.RawMessage `msgpack:"body"`
	}
	for _, c := range []struct {
		c     MessageChange
		typ   string
		body  []byte
		scrub bool
	}{
		{RecallChange("alice", 0, 0), TypeRecall, nil, true},
		{EditChange("bob", nil), TypeEdit, m.Body, false},
	} {
		ev, err := c.c.Event(FanoutRead, &m, "alice", at, 7)
		if err != nil || ev == nil {
			t.Fatalf("%s: %+v, %v", c.typ, ev, err)
		}
		e := ev.Msg
		if e.ID != 99 || e.Conv != "g:1" || e.Seq != 8 || e.From != "alice" || e.Type != c.typ || e.TS != 2000 || e.Cmid != EventCmid(99) {
			t.Errorf("%s event %+v", c.typ, e)
		}
		var got ref
		if err := msgpack.Unmarshal(e.Body, &got); err != nil || got.MsgID != "362388381503488" || got.ConvSeq != 4 ||
			!bytes.Equal(got.Body, c.body) {
			t.Errorf("%s body %+v, %v", c.typ, got, err)
		}
		if ev.Row.RefSeq != 4 || ev.Row.Seq != 8 || !bytes.Equal(ev.Row.Body, e.Body) || ev.Row.Digest == nil {
			t.Errorf("%s row %+v", c.typ, ev.Row)
		}
		if c.scrub != (ev.Scrub != nil) {
			t.Errorf("%s scrub %x", c.typ, ev.Scrub)
		}
		if c.scrub {
			got = ref{}
			if err := msgpack.Unmarshal(ev.Scrub, &got); err != nil || got.Body != nil || got.ConvSeq != 4 {
				t.Errorf("scrubbed edit body %+v, %v", got, err)
			}
		}
		if w, err := e.Wire(); err != nil || w.Cmid != "" {
			t.Errorf("%s event as devices see it: %+v, %v", c.typ, w, err)
		}
	}
}
