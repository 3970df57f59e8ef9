package e2e

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/protocol/authtoken"
)

// TestACLPublish: every publish outside the device's own send and rpc
// topics is refused, reported, and leaves the connection usable [IM-2.2-1],
// [IM-2.2-3]; the other user receives nothing.
func TestACLPublish(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		bob := dl.dial(t, n, "bob")
		alice := dl.dial(t, n, "alice")
		payload := alice.encode(text("acl-1", "bob", "must not arrive"))
		for _, topic := range []string{
			protocol.SendTopic("bob"),
			protocol.InboxTopic("alice"),
			protocol.InboxTopic("bob"),
			alice.replyTopic(),
			protocol.RPCTopic("bob", "sync"),
			"foo",
			"im/v1/u/alice/rpc/a/b", // multi-level method
			"im/v1/u/alice/rpc/",    // empty method
			"im/v1/u/alice",
			"im/v1/u/alice/send/x",
			"im/v2/u/alice/send",
			"IM/v1/u/alice/send",
			"im/v1/u/Alice/send", // user ids are case-sensitive
			"$SYS/broker/clients",
		} {
			mark := alice.mark()
			r := alice.publish(topic, payload)
			if r.Err != nil {
				t.Fatalf("publish to %q: no PUBACK: %v", topic, r.Err)
			}
			alice.expectRefused(mark, r, protocol.CodeNotAuthorized, "")
		}
		// QoS 0: dropped, reported by an error event for either version.
		mark := alice.mark()
		alice.publish(protocol.SendTopic("bob"), payload, func(o *pubOpts) { o.qos = 0 })
		if ev := alice.waitFrom(mark, "error event", func(e event) bool { return e.Kind == protocol.KindError }); ev.Error.Code != protocol.CodeNotAuthorized {
			t.Fatalf("QoS 0 refusal: %v", ev)
		}

		// The connection is usable, and bob's first event is this message.
		alice.sendOK(text("ok-1", "bob", "after the refusals"))
		if ev := bob.nextMessage(); ev.Seq != 1 || ev.Msg.Cmid != "ok-1" {
			t.Fatalf("bob: %v, want ok-1 as seq 1", ev)
		}
		if h := alice.historyAll("d:alice:bob"); len(h) != 1 {
			t.Fatalf("history has %d messages, want 1", len(h))
		}
	})
}

// TestACLSubscribe: only the own inbox and reply/… filters are granted
// [IM-2.2-2].
func TestACLSubscribe(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		bob := dl.dial(t, n, "bob")
		alice := dl.dial(t, n, "alice")
		carol := dl.dial(t, n, "carol")
		refused := byte(0x87)
		if !dl.v5() {
			refused = 0x80
		}
		filters := []string{
			protocol.InboxTopic("bob"),
			"#",
			"+",
			"im/v1/u/+/inbox",
			"+/v1/u/alice/inbox",
			"$SYS/#",
			"im/v1/u/alice/#",
			"im/v1/u/alice/+",
			"im/v1/u/alice/send",
			"im/v1/u/alice/rpc/sync",
			"im/v1/u/alice/reply",
			"im/v1/u/alice/reply/",
			"im/v1/u/bob/reply/#",
			"im/v1/u/alice/inbox/#",
		}
		if !dl.v5() {
			// paho.golang will not send a shared subscription to a server
			// that announced it has none; the raw client below does.
			filters = append(filters, "$share/g/im/v1/u/alice/inbox")
		}
		for _, f := range filters {
			if c := alice.subscribe(f); c != refused {
				t.Errorf("subscribe %q: granted %#x, want %#x", f, c, refused)
			}
		}
		for _, f := range []string{"im/v1/u/alice/reply/#", "im/v1/u/alice/reply/x/y", "im/v1/u/alice/reply/+"} {
			if c := alice.subscribe(f); c != 1 {
				t.Errorf("subscribe %q: granted %#x, want 1", f, c)
			}
		}

		// One SUBSCRIBE with several filters: each granted on its own.
		raw, _ := dialRawOK(t, n, dl, "alice")
		codes, _ := raw.subscribe(7, "$share/g/im/v1/u/alice/inbox", protocol.InboxTopic("alice"), "#", "$share/g/#")
		if len(codes) != 4 || codes[0] != refused || codes[1] != 1 || codes[2] != refused || codes[3] != refused {
			t.Fatalf("SUBACK codes %x, want [%x 1 %x %x]", codes, refused, refused, refused)
		}

		// Nothing of bob's reaches alice: carol writes to bob, bob sees it;
		// then an RPC round trip on alice's connection (a response published
		// after bob's event) before the cleanup checks that alice received
		// nothing on a topic that is not hers.
		carol.sendOK(text("c1", "bob", "for bob only"))
		if ev := bob.nextMessage(); ev.Msg.Cmid != "c1" {
			t.Fatalf("bob: %v", ev)
		}
		call[protocol.SyncResult](alice, protocol.MethodSync, protocol.SyncRequest{Limit: 0})
		if evs := alice.events(0); len(evs) != 0 {
			t.Fatalf("alice received %v", evs)
		}
	})
}

// TestACLConnect: bad credentials are refused at CONNACK [IM-3.1-2],
// [IM-3.1-4]; a client id connected for another user is refused and the
// original device stays [IM-3.1-6]; the same user takes its client id over.
func TestACLConnect(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		badCreds := byte(0x86)
		badID := byte(0x85)
		if !dl.v5() {
			badCreds, badID = 4, 2
		}
		now := time.Now()
		claims := func(sub string, exp, nbf time.Time) authtoken.Claims {
			c := authtoken.Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: sub, IssuedAt: jwt.NewNumericDate(now)}}
			if !exp.IsZero() {
				c.ExpiresAt = jwt.NewNumericDate(exp)
			}
			if !nbf.IsZero() {
				c.NotBefore = jwt.NewNumericDate(nbf)
			}
			return c
		}
		for _, tc := range []struct {
			name, user, tok string
		}{
			{"garbage token", "alice", "not-a-jwt"},
			{"empty token", "alice", ""},
			{"expired token", "alice", signToken(t, secret, claims("alice", now.Add(-time.Minute), time.Time{}))},
			{"token without exp", "alice", signToken(t, secret, claims("alice", time.Time{}, time.Time{}))},
			{"token without iat", "alice", signToken(t, secret, authtoken.Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "alice",
				ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}})},
			{"token not yet valid", "alice", signToken(t, secret, claims("alice", now.Add(time.Hour), now.Add(time.Hour)))},
			{"token for another user", "alice", token(t, "bob")},
			{"token signed with another secret", "alice", signToken(t, []byte("other-secret"), claims("alice", now.Add(time.Hour), time.Time{}))},
			{"invalid user id", "bad:user", token(t, "bad:user")},
		} {
			opts := []dialOpt{withToken(tc.tok)}
			if tc.tok == "" {
				opts = []dialOpt{withToken("\x00")} // paho.mqtt.golang drops an empty password
			}
			d, code, err := dl.tryDial(t, n, tc.user, opts...)
			if err == nil {
				d.disconnect()
				t.Fatalf("%s: connected", tc.name)
			}
			if code != badCreds {
				t.Fatalf("%s: CONNACK %#x (%v), want %#x", tc.name, code, err, badCreds)
			}
		}

		// A client id in use by another user.
		bob := dl.dial(t, n, "bob", withClientID("shared.phone"))
		if _, code, err := dl.tryDial(t, n, "alice", withClientID("shared.phone")); err == nil || code != badID {
			t.Fatalf("client id of another user's device: CONNACK %#x (%v), want %#x", code, err, badID)
		}
		select {
		case <-bob.c.done():
			t.Fatal("bob's device was disconnected")
		default:
		}
		if s := call[protocol.SyncResult](bob, protocol.MethodSync, protocol.SyncRequest{Limit: 0}); s.Latest != 0 {
			t.Fatalf("bob: %+v", s)
		}
		// The same user takes its client id over (MQTT session takeover).
		bob2 := dl.dial(t, n, "bob", withClientID("shared.phone"))
		select {
		case <-bob.c.done():
		case <-time.After(waitTimeout):
			t.Fatal("the taken-over device is still connected")
		}
		if dl.v5() {
			bob.expectServerDisconnect(0x8E)
		}
		call[protocol.SyncResult](bob2, protocol.MethodSync, protocol.SyncRequest{Limit: 0})
	})
}
