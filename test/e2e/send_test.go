package e2e

import (
	"testing"
	"time"

	"github.com/mqim/mqim/protocol"
)

// TestSendReceive: a message from alice reaches bob [IM-4.1-1] as a message
// event with his inbox seq [IM-5.1-2]; the MQTT 5 success PUBACK carries id,
// conv, seq and inbox_seq [IM-4.4-2]; alice's devices get it too.
func TestSendReceive(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		bob := dl.dial(t, n, "bob")
		alice := dl.dial(t, n, "alice")

		body := map[string]any{"text": "hi bob ✓", "lang": "en", "n": 42, "nested": map[string]any{"a": []any{1, "x", true, nil}}}
		before := time.Now().UnixMilli()
		res := alice.sendOK(protocol.Send{Cmid: "c1", To: "bob", Type: protocol.TypeText, Body: body})
		if res.Conv != "d:alice:bob" || res.Seq != 1 || res.InboxSeq != 1 {
			t.Fatalf("stored as %+v, want conv d:alice:bob seq 1 inbox_seq 1", res)
		}

		ev := bob.nextMessage()
		m := ev.Msg
		if ev.Seq != 1 || ev.Conv != "d:alice:bob" || ev.ConvSeq != 1 {
			t.Fatalf("bob's event: %v, want inbox seq 1, conv d:alice:bob, conv_seq 1", ev)
		}
		if m.ID != res.ID || m.Conv != "d:alice:bob" || m.Seq != 1 || m.From != "alice" || m.Cmid != "c1" || m.Type != protocol.TypeText {
			t.Fatalf("bob's message %+v, want id %d", m, res.ID)
		}
		if !sameBody(m.Body, body) {
			t.Fatalf("body %v, sent %v", m.Body, body)
		}
		after := time.Now().UnixMilli()
		if m.TS < before-5000 || m.TS > after+5000 || ev.TS == 0 {
			t.Fatalf("ts %d (event ts %d) not near [%d, %d]", m.TS, ev.TS, before, after)
		}

		// The sender's devices receive their own message [IM-5.1-2].
		own := alice.nextMessage()
		if own.Seq != 1 || own.Msg.ID != res.ID || own.ConvSeq != 1 || own.Msg.From != "alice" {
			t.Fatalf("alice's own event: %v", own)
		}
	})
}

// TestMultiDevice: every device of both users gets the message, each user
// with its own inbox seq [IM-2.1-2], [IM-3.3-2].
func TestMultiDevice(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		alice1 := dl.dial(t, n, "alice")
		alice2 := dl.dial(t, n, "alice")
		bob1 := dl.dial(t, n, "bob")
		bob2 := dl.dial(t, n, "bob")
		carol := dl.dial(t, n, "carol")

		// Give alice an event first, so that her inbox seqs differ from bob's.
		toCarol := alice1.sendOK(text("m0", "carol", "hello carol"))
		fromAlice := alice1.sendOK(text("m1", "bob", "hello bob"))
		reply := bob2.sendOK(text("m2", "alice", "hello alice"))
		if toCarol.Seq != 1 || fromAlice.Seq != 1 || reply.Seq != 2 || fromAlice.Conv != reply.Conv {
			t.Fatalf("conv seqs: %+v %+v %+v", toCarol, fromAlice, reply)
		}

		type want struct {
			seq     int64
			conv    string
			convSeq int64
			cmid    string
		}
		check := func(d *device, wants ...want) {
			t.Helper()
			for _, w := range wants {
				ev := d.nextMessage()
				if ev.Seq != w.seq || ev.Conv != w.conv || ev.ConvSeq != w.convSeq || ev.Msg.Cmid != w.cmid {
					t.Fatalf("%s: got %v, want seq %d conv %s conv_seq %d cmid %s", d.id, ev, w.seq, w.conv, w.convSeq, w.cmid)
				}
			}
		}
		for _, a := range []*device{alice1, alice2} {
			check(a, want{1, "d:alice:carol", 1, "m0"}, want{2, "d:alice:bob", 1, "m1"}, want{3, "d:alice:bob", 2, "m2"})
		}
		for _, b := range []*device{bob1, bob2} {
			check(b, want{1, "d:alice:bob", 1, "m1"}, want{2, "d:alice:bob", 2, "m2"})
		}
		check(carol, want{1, "d:alice:carol", 1, "m0"})
		if dl.v5() && (fromAlice.InboxSeq != 2 || reply.InboxSeq != 2) {
			t.Fatalf("PUBACK inbox_seq: alice %d (want 2), bob %d (want 2)", fromAlice.InboxSeq, reply.InboxSeq)
		}
	})
}
