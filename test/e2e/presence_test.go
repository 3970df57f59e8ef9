package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/server"
)

func presenceOf(t *testing.T, d *device, users ...string) []protocol.Presence {
	t.Helper()
	res := call[protocol.PresenceResult](d, protocol.MethodPresence, protocol.PresenceRequest{Users: users})
	if len(res.Presence) != len(users) {
		t.Fatalf("presence of %v: %+v", users, res)
	}
	for i, p := range res.Presence {
		if p.User != users[i] {
			t.Fatalf("presence entry %d is %q, want %q", i, p.User, users[i])
		}
	}
	return res.Presence
}

func notAllowed(p protocol.Presence) bool {
	return p.Error != nil && p.Error.Code == protocol.CodeNotAllowed && !p.Online && p.LastSeen == 0
}

// TestPresence: online while any device is connected, offline with last
// seen after the last one leaves (cleanly or by a crash), visible only to
// the user's contacts and co-members and not to users it blocked [IM-15.2].
func TestPresence(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		alice := dl.dial(t, n, "alice")
		bob1 := dl.dial(t, n, "bob")
		bob2 := dl.dial(t, n, "bob")
		connected := time.Now().UnixMilli()
		dl.dial(t, n, "carol")

		if p := presenceOf(t, alice, "bob"); !notAllowed(p[0]) {
			t.Fatalf("bob's presence before he added alice: %+v", p[0])
		}
		call[protocol.Contact](bob1, protocol.MethodContactAdd, protocol.ContactRequest{User: "alice"})
		p := presenceOf(t, alice, "bob", "carol", "alice", "nobody")
		if !p[0].Online || p[0].LastSeen == 0 || p[0].Error != nil || !notAllowed(p[1]) || !p[2].Online || !notAllowed(p[3]) {
			t.Fatalf("presence: %+v", p)
		}
		// One device leaves: still online.
		bob1.disconnect()
		if p := presenceOf(t, alice, "bob"); !p[0].Online {
			t.Fatalf("bob with one device left: %+v", p[0])
		}
		// The other crashes: offline, last seen at the crash, not at the
		// connect, which is made to lie more than a second back.
		eventually(t, waitTimeout, "a second to pass", func() bool { return time.Now().UnixMilli() > connected+1500 })
		before := time.Now().UnixMilli()
		bob2.closeAbruptly()
		var last protocol.Presence
		eventually(t, waitTimeout, "bob offline", func() bool {
			last = presenceOf(t, alice, "bob")[0]
			return !last.Online && last.LastSeen > connected+1000
		})
		if last.LastSeen < before-1000 {
			t.Fatalf("last seen %d, crash at %d", last.LastSeen, before)
		}
		if last.LastSeen > time.Now().UnixMilli()+5000 || last.Error != nil {
			t.Fatalf("offline presence %+v", last)
		}
		// Back online on a new device.
		dl.dial(t, n, "bob")
		eventually(t, waitTimeout, "bob online", func() bool { return presenceOf(t, alice, "bob")[0].Online })

		// Blocked: hidden again, though still a contact.
		call[protocol.Contact](dl.dial(t, n, "bob"), protocol.MethodContactBlock, protocol.ContactRequest{User: "alice"})
		if p := presenceOf(t, alice, "bob"); !notAllowed(p[0]) {
			t.Fatalf("presence of a user who blocked alice: %+v", p[0])
		}

		// Co-members of a group see each other's presence without being
		// contacts; a user who is neither stays hidden.
		dave := dl.dial(t, n, "dave")
		if p := presenceOf(t, dave, "carol"); !notAllowed(p[0]) {
			t.Fatalf("carol's presence to dave before a common group: %+v", p[0])
		}
		call[protocol.GroupChangeResult](alice, protocol.MethodGroupCreate,
			protocol.GroupRequest{Members: []string{"carol", "dave"}, Name: ptr("presence")})
		if p := presenceOf(t, dave, "carol", "bob"); !p[0].Online || p[0].Error != nil || !notAllowed(p[1]) {
			t.Fatalf("presence to a co-member: %+v", p)
		}

		// Bad requests.
		alice.rpcErr(protocol.MethodPresence, protocol.PresenceRequest{}, protocol.CodeBadRequest)
		alice.rpcErr(protocol.MethodPresence, protocol.PresenceRequest{Users: []string{"bo/b"}}, protocol.CodeBadRequest)
		alice.rpcErr(protocol.MethodPresence, protocol.PresenceRequest{Users: strings.Split(strings.Repeat("x,", 100)+"x", ",")}, protocol.CodeBadRequest)
		alice.rpcErr(protocol.MethodPresence, map[string]any{"users": "bob"}, protocol.CodeBadPayload)
	})
}

// TestPresenceAndTypingAcrossNodes: two nodes on one NATS (routing table,
// signal relay): presence and typing work between users on different nodes
// [IM-15.1-2], [IM-15.2-2].
//
// PostgreSQL only: nodes share a database only there (a SQLite file belongs
// to one node).
func TestPresenceAndTypingAcrossNodes(t *testing.T) {
	n1, n2 := twoNodes(t)
	dl := dialer{5}
	alice := dl.dial(t, n1, "alice")
	bob := dl.dial(t, n2, "bob")
	call[protocol.Contact](bob, protocol.MethodContactAdd, protocol.ContactRequest{User: "alice"})

	eventually(t, waitTimeout, "bob online for alice's node", func() bool { return presenceOf(t, alice, "bob")[0].Online })
	alice.publish(protocol.TypingTopic("alice"), alice.encode(protocol.Typing{To: "bob"}))
	if ev := bob.waitFrom(0, "typing", func(e event) bool { return e.Kind == protocol.KindTyping }); ev.User != "alice" {
		t.Fatalf("typing across nodes: %v", ev)
	}
	bob.closeAbruptly()
	eventually(t, waitTimeout, "bob offline for alice's node", func() bool {
		p := presenceOf(t, alice, "bob")[0]
		return !p.Online && p.LastSeen > 0
	})
}

func isPresenceTopic(topic string) bool {
	_, ok := protocol.ParsePresenceTopic(topic)
	return ok
}

// waitPresence waits for a live presence publish at or after position from
// that satisfies pred.
func (d *device) waitPresence(from int, what string, pred func(protocol.Presence) bool) (protocol.Presence, int) {
	d.t.Helper()
	deadline := time.After(waitTimeout)
	for {
		d.mu.Lock()
		for i := from; i < len(d.presence); i++ {
			var p protocol.Presence
			if err := protocol.Decode(d.presence[i].format(), d.presence[i].Payload, &p); err != nil {
				d.mu.Unlock()
				d.t.Fatalf("%s: undecodable presence %q: %v", d.id, d.presence[i].Payload, err)
			}
			if pred(p) {
				d.mu.Unlock()
				return p, i + 1
			}
		}
		from = max(from, len(d.presence))
		grew := d.grew
		d.mu.Unlock()
		select {
		case <-grew:
		case <-deadline:
			d.t.Fatalf("%s: no live presence %s within %v", d.id, what, waitTimeout)
		}
	}
}

// TestLivePresence: the retained presence topic follows the routing table
// [IM-15.3-1] and may be read by the user and its contacts only
// [IM-15.3-2].
func TestLivePresence(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		nc := embeddedNATS(t)
		n := startNode(t, be, func(c *server.Config) { c.NATS, c.NodeName = nc.Conn, "n1" })
		bob := dl.dial(t, n, "bob")
		alice := dl.dial(t, n, "alice")
		carol := dl.dial(t, n, "carol")
		call[protocol.Contact](bob, protocol.MethodContactAdd, protocol.ContactRequest{User: "alice"})

		if code := carol.subscribe(protocol.PresenceTopic("bob")); code < 0x80 {
			t.Fatalf("carol (not bob's contact) subscribed to his presence: %#x", code)
		}
		for _, f := range []string{"im/v1/u/+/presence", "im/v1/u/bob/+"} {
			if code := alice.subscribe(f); code < 0x80 {
				t.Fatalf("alice subscribed to %s: %#x", f, code)
			}
		}
		if code := alice.subscribe(protocol.PresenceTopic("bob")); code >= 0x80 {
			t.Fatalf("alice may not subscribe to bob's presence: %#x", code)
		}
		// The retained state (bob is connected) arrives on subscribe.
		p, next := alice.waitPresence(0, "bob online", func(p protocol.Presence) bool { return p.User == "bob" && p.Online })
		if p.LastSeen == 0 {
			t.Fatalf("presence %+v", p)
		}
		bob.closeAbruptly()
		alice.waitPresence(next, "bob offline", func(p protocol.Presence) bool { return p.User == "bob" && !p.Online && p.LastSeen > 0 })
		dl.dial(t, n, "bob")
		alice.waitPresence(next, "bob back online", func(p protocol.Presence) bool { return p.User == "bob" && p.Online })
		// A device publishing on a presence topic is refused.
		mark := alice.mark()
		alice.expectRefused(mark, alice.publish(protocol.PresenceTopic("alice"), alice.encode(protocol.Presence{User: "alice", Online: true})), protocol.CodeNotAuthorized, "")
		carol.mu.Lock()
		defer carol.mu.Unlock()
		if len(carol.presence) != 0 {
			t.Fatalf("carol got presence %v", carol.presence)
		}
	})
}
