package e2e

import (
	"testing"

	"github.com/mqim/mqim/protocol"
)

// TestContactsAndBlocking: contact RPCs [IM-13.1]; a blocked sender's
// messages are refused with `blocked` and not stored [IM-13.2-1]; after
// unblock the same cmid goes through.
func TestContactsAndBlocking(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		alice := dl.dial(t, n, "alice")
		bob := dl.dial(t, n, "bob")
		dl.dial(t, n, "carol")

		if c := call[protocol.Contact](bob, protocol.MethodContactAdd, protocol.ContactRequest{User: "alice"}); !c.Contact || c.Blocked || c.User != "alice" || c.Since == 0 {
			t.Fatalf("contact.add: %+v", c)
		}
		if c := call[protocol.Contact](bob, protocol.MethodContactBlock, protocol.ContactRequest{User: "alice"}); !c.Contact || !c.Blocked {
			t.Fatalf("contact.block: %+v", c)
		}
		call[protocol.Contact](bob, protocol.MethodContactAdd, protocol.ContactRequest{User: "carol"})
		list := call[protocol.ContactsResult](bob, protocol.MethodContactList, struct{}{})
		if len(list.Contacts) != 2 || list.Contacts[0].User != "alice" || !list.Contacts[0].Blocked || list.Contacts[1].User != "carol" || list.Contacts[1].Blocked {
			t.Fatalf("contact.list: %+v", list)
		}

		mark := alice.mark()
		alice.expectRefused(mark, alice.send(text("b-1", "bob", "let me in")), protocol.CodeBlocked, "b-1")
		// Not stored: no conversation for either side, nothing in bob's inbox.
		if h := alice.historyAll("d:alice:bob"); len(h) != 0 {
			t.Fatalf("history after a refused send: %v", h)
		}
		if res := call[protocol.SyncResult](bob, protocol.MethodSync, protocol.SyncRequest{Limit: 0}); res.Latest != 0 {
			t.Fatalf("bob's inbox has %d events", res.Latest)
		}
		// The block is one-way: bob may still write, and alice to others.
		bob.sendOK(text("b-2", "alice", "I can still talk"))
		alice.sendOK(text("b-3", "carol", "hi carol"))

		// Bad input changes nothing [IM-13.1-2].
		bob.rpcErr(protocol.MethodContactBlock, protocol.ContactRequest{User: "bob"}, protocol.CodeBadRequest)
		bob.rpcErr(protocol.MethodContactBlock, protocol.ContactRequest{User: "no/one"}, protocol.CodeBadRequest)
		bob.rpcErr(protocol.MethodContactAdd, protocol.ContactRequest{User: "nobody"}, protocol.CodeUnknownUser)
		bob.rpcErr(protocol.MethodContactAdd, map[string]any{"user": 5}, protocol.CodeBadPayload)
		if l := call[protocol.ContactsResult](bob, protocol.MethodContactList, struct{}{}); len(l.Contacts) != 2 {
			t.Fatalf("contact.list after bad requests: %+v", l)
		}

		if c := call[protocol.Contact](bob, protocol.MethodContactUnblock, protocol.ContactRequest{User: "alice"}); c.Blocked || !c.Contact {
			t.Fatalf("contact.unblock: %+v", c)
		}
		got := alice.sendOK(text("b-1", "bob", "let me in"))
		if got.Seq != 2 {
			t.Fatalf("after unblock: stored at seq %d, want 2", got.Seq)
		}
		if c := call[protocol.Contact](bob, protocol.MethodContactRemove, protocol.ContactRequest{User: "alice"}); c.Contact || c.Blocked || c.Since != 0 {
			t.Fatalf("contact.remove: %+v", c)
		}
		if l := call[protocol.ContactsResult](bob, protocol.MethodContactList, struct{}{}); len(l.Contacts) != 1 || l.Contacts[0].User != "carol" {
			t.Fatalf("contact.list after remove: %+v", l)
		}
	})
}
