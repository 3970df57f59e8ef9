package store

import (
	"bytes"
	"errors"
	"testing"
	"time"
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
