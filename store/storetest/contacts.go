package storetest

import (
	"errors"
	"testing"

	"github.com/mqim/mqim/store"
)

func init() {
	featureTests = append(featureTests,
		featureTest{"Contacts", testContacts},
		featureTest{"ContactUnknownPeer", testContactUnknownPeer},
		featureTest{"Relations", testRelations},
		featureTest{"BlockedSend", testBlockedSend},
	)
}

func (e *env) contact(t *testing.T, owner, peer string, c store.ContactChange, ts int64) store.Contact {
	t.Helper()
	got, err := e.s.UpdateContact(e.ctx, owner, peer, c, ts)
	if err != nil {
		t.Fatalf("UpdateContact(%s, %s, %d): %v", owner, peer, c, err)
	}
	return got
}

func testContacts(t *testing.T, e *env) {
	e.users(t, "alice", "bob", "carol")
	if got := e.contact(t, "alice", "bob", store.ContactAdd, 10); got != (store.Contact{User: "bob", Contact: true, Since: 10}) {
		t.Fatalf("add: %+v", got)
	}
	// A change that changes nothing keeps the time.
	if got := e.contact(t, "alice", "bob", store.ContactAdd, 20); got.Since != 10 {
		t.Fatalf("add again: %+v, want since 10", got)
	}
	if got := e.contact(t, "alice", "bob", store.ContactBlock, 30); got != (store.Contact{User: "bob", Contact: true, Blocked: true, Since: 30}) {
		t.Fatalf("block: %+v", got)
	}
	if got := e.contact(t, "alice", "carol", store.ContactBlock, 40); got != (store.Contact{User: "carol", Blocked: true, Since: 40}) {
		t.Fatalf("block carol: %+v", got)
	}
	list, err := e.s.Contacts(e.ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Contact{{User: "bob", Contact: true, Blocked: true, Since: 30}, {User: "carol", Blocked: true, Since: 40}}
	if len(list) != 2 || list[0] != want[0] || list[1] != want[1] {
		t.Fatalf("contacts: %+v, want %+v", list, want)
	}
	// Relations are one-way.
	if list, _ := e.s.Contacts(e.ctx, "bob"); len(list) != 0 {
		t.Fatalf("bob's contacts: %+v", list)
	}
	e.contact(t, "alice", "bob", store.ContactUnblock, 50)
	e.contact(t, "alice", "bob", store.ContactRemove, 60)
	if got := e.contact(t, "alice", "carol", store.ContactUnblock, 70); got != (store.Contact{User: "carol"}) {
		t.Fatalf("unblock carol: %+v", got)
	}
	e.reopen()
	if list, _ := e.s.Contacts(e.ctx, "alice"); len(list) != 0 {
		t.Fatalf("contacts after removing all: %+v", list)
	}
}

func testContactUnknownPeer(t *testing.T, e *env) {
	e.users(t, "alice")
	_, err := e.s.UpdateContact(e.ctx, "alice", "nobody", store.ContactBlock, 1)
	if !errors.Is(err, store.ErrUnknownUser) {
		t.Fatalf("block of an unknown user: %v, want ErrUnknownUser", err)
	}
	if list, _ := e.s.Contacts(e.ctx, "alice"); len(list) != 0 {
		t.Fatalf("contacts: %+v", list)
	}
}

func testRelations(t *testing.T, e *env) {
	e.users(t, "alice", "bob", "carol")
	e.contact(t, "bob", "alice", store.ContactBlock, 5)
	e.contact(t, "carol", "alice", store.ContactAdd, 6)
	got, err := e.s.Relations(e.ctx, []store.Pair{{Owner: "bob", Peer: "alice"}, {Owner: "carol", Peer: "alice"}, {Owner: "alice", Peer: "bob"}, {Owner: "bob", Peer: "alice"}, {Owner: "x", Peer: "y"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []store.Contact{{User: "alice", Blocked: true, Since: 5}, {User: "alice", Contact: true, Since: 6},
		{User: "bob"}, {User: "alice", Blocked: true, Since: 5}, {User: "y"}}
	if len(got) != len(want) {
		t.Fatalf("relations: %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("relation %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if got, err := e.s.Relations(e.ctx, nil); err != nil || len(got) != 0 {
		t.Fatalf("no pairs: %v %v", got, err)
	}
}

// testBlockedSend: a send marked Blocked stores nothing and fails with
// ErrBlocked, but a retry of a message stored before the block is still
// answered with it [IM-4.5-2], [IM-13.2-1].
func testBlockedSend(t *testing.T, e *env) {
	e.users(t, "alice", "bob")
	first := e.send(t, e.req("alice", "bob", "c1", "before the block"))[0].Msg
	before := e.latest(t, "bob")
	retry, fresh := e.req("alice", "bob", "c1", "before the block"), e.req("alice", "bob", "c2", "after")
	retry.Blocked, fresh.Blocked = true, true
	res := e.append(t, retry, fresh)
	if !res[0].Duplicate || res[0].Err != nil || res[0].Msg.ID != first.ID {
		t.Fatalf("retry of a stored message after the block: %+v", res[0])
	}
	if !errors.Is(res[1].Err, store.ErrBlocked) {
		t.Fatalf("new send to a user who blocks the sender: %+v", res[1])
	}
	if got := e.latest(t, "bob"); got != before {
		t.Fatalf("bob's inbox grew from %d to %d", before, got)
	}
}
