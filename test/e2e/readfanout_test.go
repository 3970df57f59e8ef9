package e2e

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/server"
)

// TestReadFanoutChanges: in a group that fans out on read, an edit and a
// recall become timeline events with the next conv seqs [IM-14.4-3]: a
// member device following the group topic sees them live, one that pages
// history after its group cursor finds them there (the edit without its
// text once the message is recalled), and the requester's inbox gets its
// edit and recall events as before [IM-14.4-2]. A mentioned member whose
// device follows no group topic gets a mention event on its inbox and in
// sync; "*" and other members get none [IM-11.6-2].
func TestReadFanoutChanges(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be, func(c *server.Config) { c.GroupReadFanout = 2 })
		alice := dl.dial(t, n, "alice")
		bob := dl.dial(t, n, "bob")     // follows the group topic
		carol := dl.dial(t, n, "carol") // pages history after her cursor
		dave := dl.dial(t, n, "dave")   // mentioned; follows nothing

		cr := call[protocol.GroupChangeResult](alice, protocol.MethodGroupCreate,
			protocol.GroupRequest{Members: []string{"bob", "carol", "dave"}})
		if cr.Fanout != "read" || cr.ReadFrom != 1 {
			t.Fatalf("create: %+v", cr)
		}
		g := cr.Group
		for _, d := range []*device{alice, bob, carol, dave} {
			d.waitInbox(g, 1)
		}
		if code := bob.subscribe(protocol.GroupTopic(g)); code >= 0x80 {
			t.Fatalf("subscribe: %#x", code)
		}
		cursor := cr.ReadFrom // carol's group cursor

		// Devices may not send the timeline types [IM-14.4-3].
		for _, typ := range []string{protocol.TypeRecall, protocol.TypeEdit} {
			mark := alice.mark()
			cmid := "x-" + typ
			alice.expectRefused(mark, alice.send(protocol.Send{Cmid: cmid, Group: g, Type: typ, Body: map[string]any{}}),
				protocol.CodeUnknownType, cmid)
		}

		if r := alice.send(gtext("a1", g, "lunch?", "dave", "*")); r.Err != nil || r.Code != 0 {
			t.Fatalf("send: %+v", r)
		}
		m := bob.waitGroup(g, 2).Msg
		if m == nil || m.Body["text"] != "lunch?" {
			t.Fatalf("bob's group event: %+v", m)
		}
		ev := dave.waitFrom(0, "mention event", func(e event) bool { return e.Kind == protocol.KindMention })
		if ev.Seq == 0 || ev.Conv != g || ev.ConvSeq != m.Seq || ev.User != "alice" || ev.Msg == nil || ev.Msg.ID != m.ID {
			t.Fatalf("dave's mention event %v %+v", ev, ev.Msg)
		}

		edited := map[string]any{"text": "lunch at 1?"}
		res := call[protocol.MessageResult](alice, protocol.MethodEdit, protocol.MessageRequest{MsgID: m.ID, Body: edited})
		if res.Msg == nil || res.Msg.Body["text"] != "lunch at 1?" {
			t.Fatalf("edit result %+v", res.Msg)
		}
		checkChange(t, bob.waitGroup(g, 3), protocol.TypeEdit, m, "lunch at 1?")
		call[protocol.MessageResult](alice, protocol.MethodRecall, msgReq(m.ID))
		checkChange(t, bob.waitGroup(g, 4), protocol.TypeRecall, m, "")
		for _, kind := range []string{protocol.KindEdit, protocol.KindRecall} {
			e := alice.waitFrom(0, kind+" event", func(e event) bool { return e.Kind == kind })
			if e.Conv != g || e.ConvSeq != m.Seq || e.User != "alice" || e.Seq == 0 {
				t.Fatalf("alice's %s event %v", kind, e)
			}
		}

		// carol pages history after her cursor: the message recalled, the
		// edit without its text, the recall.
		h := call[protocol.HistoryResult](carol, protocol.MethodHistory, protocol.HistoryRequest{Conv: g, After: cursor})
		if len(h.Messages) != 3 || h.HasMore {
			t.Fatalf("carol's history after %d: %+v", cursor, h)
		}
		if h.Messages[0].Seq != m.Seq || h.Messages[0].Type != protocol.TypeRecalled {
			t.Fatalf("the message in history: %+v", h.Messages[0])
		}
		checkChange(t, event{Event: protocol.Event{ConvSeq: h.Messages[1].Seq, Msg: &h.Messages[1]}}, protocol.TypeEdit, m, "")
		checkChange(t, event{Event: protocol.Event{ConvSeq: h.Messages[2].Seq, Msg: &h.Messages[2]}}, protocol.TypeRecall, m, "")

		// Inboxes: dave's mention in sync, with the message as it is now;
		// no event of the group after the create for carol and bob.
		var mentions []protocol.Event
		for _, e := range dave.syncAll(0) {
			if e.Kind == protocol.KindMention {
				mentions = append(mentions, e)
			}
		}
		if len(mentions) != 1 || mentions[0].ConvSeq != m.Seq || mentions[0].Msg == nil || mentions[0].Msg.Type != protocol.TypeRecalled {
			t.Fatalf("dave's synced mentions %+v", mentions)
		}
		for _, d := range []*device{bob, carol} {
			for _, e := range d.syncAll(0) {
				if e.Conv == g && e.ConvSeq > cr.ReadFrom {
					t.Fatalf("%s: inbox event %+v", d.id, e)
				}
			}
		}
		if ev := dave.groupEvents(); len(ev) != 0 {
			t.Fatalf("dave, not subscribed, got group events %v", ev)
		}
	})
}

// checkChange checks a group timeline event of a recall or an edit of m:
// its type, the message it names and, for an edit, its new text ("" for
// none).
func checkChange(t *testing.T, ev event, typ string, m *protocol.Message, text string) {
	t.Helper()
	e := ev.Msg
	if e == nil || ev.Seq != 0 || e.Type != typ || e.Conv != m.Conv || e.Seq != ev.ConvSeq || e.From != "alice" || e.Cmid != "" {
		t.Fatalf("%s event %v %+v", typ, ev, e)
	}
	got, _ := e.Body["body"].(map[string]any)
	if e.Body["msg_id"] != strconv.FormatInt(m.ID, 10) || fmt.Sprint(e.Body["conv_seq"]) != fmt.Sprint(m.Seq) ||
		text == "" && got != nil || text != "" && got["text"] != text {
		t.Fatalf("%s event body %v, want msg_id %d conv_seq %d text %q", typ, e.Body, m.ID, m.Seq, text)
	}
}
