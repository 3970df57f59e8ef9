package e2e

import (
	"testing"

	"github.com/mqim/mqim/protocol"
)

// TestRetryDedup: a retry with the same cmid returns the stored message and
// creates no event [IM-4.5-1], [IM-4.5-2], also after a node restart; the
// same cmid for another message is cmid_conflict [IM-4.5-3].
func TestRetryDedup(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		alice := dl.dial(t, n, "alice")
		bob := dl.dial(t, n, "bob")
		dl.dial(t, n, "carol", noSubscribe())

		orig := text("dup-1", "bob", "only once")
		first := alice.sendOK(orig)
		r := alice.send(orig)
		if r.Err != nil {
			t.Fatalf("retry: %v", r.Err)
		}
		if dl.v5() {
			retry := r.sent(t)
			if r.Code != 0 || retry.ID != first.ID || retry.Conv != first.Conv || retry.Seq != first.Seq ||
				retry.InboxSeq != 0 && retry.InboxSeq != first.InboxSeq {
				t.Fatalf("retry PUBACK %#x %v, first %+v", r.Code, r.Props, first)
			}
		}
		// A new message is the next event everywhere: the retry made none.
		second := alice.sendOK(text("new-1", "bob", "second"))
		if second.Seq != 2 {
			t.Fatalf("second message has conv seq %d, want 2", second.Seq)
		}
		expectOnly := func(d *device, from int, cmids ...string) {
			t.Helper()
			last := cmids[len(cmids)-1]
			d.waitFrom(from, "message "+last, func(e event) bool { return e.Kind == protocol.KindMessage && e.Msg.Cmid == last })
			var got []string
			for _, e := range d.events(from) {
				got = append(got, e.String())
				if len(got) == len(cmids) {
					break
				}
			}
			evs := d.events(from)
			if len(evs) < len(cmids) {
				t.Fatalf("%s: events %v, want messages %v", d.id, got, cmids)
			}
			for i, c := range cmids {
				if evs[i].Kind != protocol.KindMessage || evs[i].Msg.Cmid != c {
					t.Fatalf("%s: events %v, want messages %v", d.id, got, cmids)
				}
			}
		}
		expectOnly(bob, 0, "dup-1", "new-1")
		expectOnly(alice, 0, "dup-1", "new-1")

		// Restart the node on the same database; the retry still finds the
		// message [IM-4.5-1].
		n.stop(t)
		n2 := startNodeOn(t, n.DB)
		alice = dl.dial(t, n2, "alice")
		bob = dl.dial(t, n2, "bob")
		r = alice.send(orig)
		if r.Err != nil {
			t.Fatalf("retry after restart: %v", r.Err)
		}
		if dl.v5() {
			retry := r.sent(t)
			if r.Code != 0 || retry.ID != first.ID || retry.Seq != first.Seq || retry.Conv != first.Conv {
				t.Fatalf("retry after restart: PUBACK %#x %v, first %+v", r.Code, r.Props, first)
			}
		}
		third := alice.sendOK(text("new-2", "bob", "third"))
		if third.Seq != 3 {
			t.Fatalf("third message has conv seq %d, want 3", third.Seq)
		}
		expectOnly(bob, 0, "new-2")
		expectOnly(alice, 0, "new-2")
		if bob.events(0)[0].Seq != 3 {
			t.Fatalf("bob's event after restart has inbox seq %d, want 3", bob.events(0)[0].Seq)
		}

		// The cmid used for something else: cmid_conflict, nothing stored.
		for _, s := range []protocol.Send{
			text("dup-1", "bob", "another body"),
			text("dup-1", "carol", "only once"),
			{Cmid: "dup-1", To: "bob", Type: protocol.TypeCustom, Body: map[string]any{"text": "only once"}},
		} {
			mark := alice.mark()
			alice.expectRefused(mark, alice.send(s), protocol.CodeCmidConflict, "dup-1")
		}
		// Concurrent duplicates on one connection (likely in one batch).
		dup := text("dup-2", "bob", "twice at once")
		results := make(chan pubResult, 2)
		for range 2 {
			payload := alice.encode(&dup)
			go func() { results <- alice.c.publish(protocol.SendTopic("alice"), payload, pubOpts{qos: 1}) }()
		}
		r1, r2 := <-results, <-results
		if r1.Err != nil || r2.Err != nil || r1.Code != 0 || r2.Code != 0 {
			t.Fatalf("concurrent duplicates: %+v %+v", r1, r2)
		}
		if dl.v5() && (r1.Props["id"] != r2.Props["id"] || r1.Props["seq"] != r2.Props["seq"]) {
			t.Fatalf("concurrent duplicates stored twice: %v %v", r1.Props, r2.Props)
		}
		alice.sendOK(text("new-3", "bob", "fifth"))
		expectOnly(bob, 1, "dup-2", "new-3")

		msgs := alice.historyAll("d:alice:bob")
		want := []string{"dup-1", "new-1", "new-2", "dup-2", "new-3"}
		if len(msgs) != len(want) {
			t.Fatalf("history has %d messages, want %d: %+v", len(msgs), len(want), msgs)
		}
		for i, m := range msgs {
			if m.Cmid != want[i] {
				t.Fatalf("history[%d] = %s, want %s", i, m.Cmid, want[i])
			}
		}
		if msgs[0].ID != first.ID || msgs[0].Body["text"] != "only once" || msgs[0].Type != protocol.TypeText {
			t.Fatalf("the original message changed: %+v", msgs[0])
		}
	})
}
