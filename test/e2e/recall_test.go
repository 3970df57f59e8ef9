package e2e

import (
	"testing"
	"time"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/server"
)

func msgReq(id int64) protocol.MessageRequest { return protocol.MessageRequest{MsgID: id} }

// TestRecallEditDelete: edit and recall by the sender reach every device of
// both users as events [IM-14.4]; a device that syncs later converges and
// history shows the recalled marker [IM-14.1-2]; delete for me changes only
// the deleter's view [IM-14.3]; the bad cases change nothing [IM-14.5].
func TestRecallEditDelete(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		a1 := dl.dial(t, n, "alice")
		a2 := dl.dial(t, n, "alice")
		bob := dl.dial(t, n, "bob")
		carol := dl.dial(t, n, "carol")

		m1 := a1.sendOK(text("r-1", "bob", "helo"))
		m2 := a1.sendOK(text("r-2", "bob", "second"))
		for _, d := range []*device{a1, a2, bob} {
			d.nextMessage()
			d.nextMessage()
		}

		// Bad cases first: nothing changes.
		bob.rpcErr(protocol.MethodRecall, msgReq(m1.ID), protocol.CodeNotAllowed)
		bob.rpcErr(protocol.MethodEdit, protocol.MessageRequest{MsgID: m1.ID, Body: map[string]any{"text": "mine"}}, protocol.CodeNotAllowed)
		carol.rpcErr(protocol.MethodRecall, msgReq(m1.ID), protocol.CodeNotFound)
		carol.rpcErr(protocol.MethodDelete, msgReq(m1.ID), protocol.CodeNotFound)
		a1.rpcErr(protocol.MethodRecall, msgReq(m1.ID+12345), protocol.CodeNotFound)
		a1.rpcErr(protocol.MethodRecall, msgReq(0), protocol.CodeBadRequest)
		// JSON msg_id: a malformed decimal string is bad_request, a number the wrong type [IM-14.5-1].
		expectErrResponse(t, "recall", a1.rpcRaw(protocol.MethodRecall, []byte(`{"msg_id":"12x"}`)), protocol.CodeBadRequest)
		expectErrResponse(t, "recall", a1.rpcRaw(protocol.MethodRecall, []byte(`{"msg_id":12}`)), protocol.CodeBadPayload)
		a1.rpcErr(protocol.MethodEdit, msgReq(m1.ID), protocol.CodeBadRequest)
		a1.rpcErr(protocol.MethodEdit, protocol.MessageRequest{MsgID: m1.ID, Body: map[string]any{"text": ""}}, protocol.CodeBadRequest)
		if h := bob.historyAll(m1.Conv); len(h) != 2 || h[0].Body["text"] != "helo" {
			t.Fatalf("history after refused changes: %v", h)
		}

		// Edit.
		res := call[protocol.MessageResult](a1, protocol.MethodEdit, protocol.MessageRequest{MsgID: m1.ID, Body: map[string]any{"text": "hello"}})
		if res.Msg == nil || res.Msg.ID != m1.ID || res.Msg.Body["text"] != "hello" || res.Msg.Type != protocol.TypeText {
			t.Fatalf("edit result %+v", res.Msg)
		}
		for _, d := range []*device{a1, a2, bob} {
			ev := d.next()
			if ev.Kind != protocol.KindEdit || ev.User != "alice" || ev.ConvSeq != m1.Seq || ev.Msg == nil || ev.Msg.Body["text"] != "hello" {
				t.Fatalf("%s: edit event %v", d.id, ev)
			}
		}

		// Recall.
		res = call[protocol.MessageResult](a1, protocol.MethodRecall, msgReq(m1.ID))
		if res.Msg.Type != protocol.TypeRecalled || len(res.Msg.Body) != 0 {
			t.Fatalf("recall result %+v", res.Msg)
		}
		for _, d := range []*device{a1, a2, bob} {
			ev := d.next()
			if ev.Kind != protocol.KindRecall || ev.User != "alice" || ev.ConvSeq != m1.Seq || ev.Msg == nil || ev.Msg.Type != protocol.TypeRecalled {
				t.Fatalf("%s: recall event %v", d.id, ev)
			}
		}
		a1.rpcErr(protocol.MethodEdit, protocol.MessageRequest{MsgID: m1.ID, Body: map[string]any{"text": "back"}}, protocol.CodeNotAllowed)

		// Delete for me: bob's devices only.
		call[protocol.MessageResult](bob, protocol.MethodDelete, msgReq(m2.ID))
		if ev := bob.next(); ev.Kind != protocol.KindDelete || ev.ConvSeq != m2.Seq || ev.User != "bob" {
			t.Fatalf("delete event %v", ev)
		}

		// A device that syncs later converges.
		late := dl.dial(t, n, "bob")
		evs := late.syncAll(0)
		kinds := ""
		for _, ev := range evs {
			kinds += ev.Kind + " "
		}
		if kinds != "message message edit recall delete " {
			t.Fatalf("bob's synced kinds: %s", kinds)
		}
		if evs[0].Msg.Type != protocol.TypeRecalled || evs[3].Msg.Type != protocol.TypeRecalled {
			t.Fatalf("synced events show %v", evs)
		}
		if h := late.historyAll(m1.Conv); len(h) != 1 || h[0].Seq != m1.Seq || h[0].Type != protocol.TypeRecalled {
			t.Fatalf("bob's history %v: want only the recalled marker", h)
		}
		if h := a2.historyAll(m1.Conv); len(h) != 2 || h[0].Type != protocol.TypeRecalled || h[1].Body["text"] != "second" {
			t.Fatalf("alice's history %v", h)
		}
		// alice got no event for bob's delete: her next event is her own next send.
		a1.sendOK(text("r-3", "bob", "third"))
		if ev := a2.next(); ev.Kind != protocol.KindMessage || ev.Msg.Cmid != "r-3" {
			t.Fatalf("alice's next event %v, want message r-3", ev)
		}
	})
}

// TestRecallWindow: after the window a recall is not_allowed and changes
// nothing [IM-14.1-1].
func TestRecallWindow(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be, func(c *server.Config) { c.RecallWindow = time.Millisecond })
		alice := dl.dial(t, n, "alice")
		dl.dial(t, n, "bob")
		m := alice.sendOK(text("w-1", "bob", "too late"))
		// The window is 1 ms: wait until the message is older than that.
		eventually(t, waitTimeout, "the message to age", func() bool { return time.Now().UnixMilli() > m.ID>>22+msEpoch+1 })
		alice.rpcErr(protocol.MethodRecall, msgReq(m.ID), protocol.CodeNotAllowed)
		if h := alice.historyAll(m.Conv); len(h) != 1 || h[0].Type != protocol.TypeText {
			t.Fatalf("history %v", h)
		}
	})
}

// msEpoch is the snowflake epoch, 2026-01-01T00:00:00Z [IM-3.3-4].
var msEpoch = func() int64 {
	t, _ := time.Parse(time.RFC3339, "2026-01-01T00:00:00Z")
	return t.UnixMilli()
}()
