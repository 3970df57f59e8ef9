package e2e

import (
	"testing"
	"time"

	"github.com/mqim/mqim/protocol"
)

func withQoS(q byte) pubOpt { return func(o *pubOpts) { o.qos = q } }

// TestTyping: a typing signal reaches the peer's online devices as an
// ephemeral event without seq, is never stored, and is dropped when the
// peer blocked the sender [IM-15.1], [IM-13.2-3].
func TestTyping(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		alice := dl.dial(t, n, "alice")
		bob1 := dl.dial(t, n, "bob")
		bob2 := dl.dial(t, n, "bob")

		typing := func(d *device, to, state string, opts ...pubOpt) pubResult {
			return d.publish(protocol.TypingTopic(d.user), d.encode(protocol.Typing{To: to, State: state}), opts...)
		}
		isTyping := func(e event) bool { return e.Kind == protocol.KindTyping }
		typing(alice, "bob", "", withQoS(0))
		for _, b := range []*device{bob1, bob2} {
			ev := b.waitFrom(0, "typing", isTyping)
			if ev.Seq != 0 || ev.User != "alice" || ev.Conv != "d:alice:bob" || ev.State != protocol.StateTyping || ev.TS == 0 {
				t.Fatalf("%s: typing event %v (%q)", b.id, ev, ev.In.Payload)
			}
		}
		if res := call[protocol.SyncResult](bob1, protocol.MethodSync, protocol.SyncRequest{Limit: 0}); res.Latest != 0 {
			t.Fatalf("typing stored %d inbox events", res.Latest)
		}

		// Bad signals: refused, nothing relayed.
		for _, c := range []struct {
			to, state, code string
		}{{"alice", "", protocol.CodeBadRequest}, {"bo/b", "", protocol.CodeBadRequest}, {"bob", "shouting", protocol.CodeBadRequest}} {
			mark := alice.mark()
			alice.expectRefused(mark, typing(alice, c.to, c.state), c.code, "")
		}
		mark := alice.mark()
		alice.expectRefused(mark, alice.publish(protocol.TypingTopic("bob"), alice.encode(protocol.Typing{To: "alice"})), protocol.CodeNotAuthorized, "")

		// Blocked: dropped. The PUBACK of a signal comes after its block
		// check, so the unblock is ordered after it.
		call[protocol.Contact](bob1, protocol.MethodContactBlock, protocol.ContactRequest{User: "alice"})
		from := bob1.mark()
		if r := typing(alice, "bob", protocol.StateTyping); r.Err != nil || r.Code != 0 {
			t.Fatalf("typing while blocked: %+v", r)
		}
		call[protocol.Contact](bob1, protocol.MethodContactUnblock, protocol.ContactRequest{User: "alice"})
		typing(alice, "bob", protocol.StatePaused)
		if ev := bob1.waitFrom(from, "typing after unblock", isTyping); ev.State != protocol.StatePaused {
			t.Fatalf("first typing event after the block: %v, want the paused one (the blocked one must be dropped)", ev)
		}
		// Alice's own devices got none of it.
		for _, ev := range alice.events(0) {
			if ev.Kind == protocol.KindTyping {
				t.Fatalf("alice got %v", ev)
			}
		}
	})
}

// TestTypingRateLimit: beyond the burst, signals are dropped [IM-15.1-3].
func TestTypingRateLimit(t *testing.T) {
	forEachStore(t, func(t *testing.T, be backend) {
		n := startNode(t, be)
		dl := dialer{5}
		alice := dl.dial(t, n, "alice")
		bob := dl.dial(t, n, "bob")
		start := time.Now()
		for range 50 {
			if r := alice.publish(protocol.TypingTopic("alice"), alice.encode(protocol.Typing{To: "bob"})); r.Code != 0 {
				t.Fatalf("PUBACK %#x", r.Code)
			}
		}
		// A message after the signals arrives after every relayed one: each
		// signal is in bob's delivery queue before its PUBACK.
		took := time.Since(start)
		alice.sendOK(text("after", "bob", "done"))
		bob.waitFrom(0, "message", func(e event) bool { return e.Kind == protocol.KindMessage })
		got := 0
		for _, ev := range bob.events(0) {
			if ev.Kind == protocol.KindTyping {
				got++
			}
		}
		// 5 at once, plus at most one per second the loop took.
		if limit := 5 + int(took/time.Second) + 1; got < 5 || got > limit {
			t.Fatalf("%d of 50 typing signals relayed, want about 5", got)
		}
	})
}
