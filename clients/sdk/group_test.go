package sdk_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mqim/mqim/clients/sdk"
	"github.com/mqim/mqim/internal/testnode"
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/server"
)

// next reads one event of a followed group.
func next(t *testing.T, ch <-chan sdk.Event) sdk.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("group stream closed")
		}
		return ev
	case <-time.After(waitTimeout):
		t.Fatal("no group event")
	}
	return sdk.Event{}
}

// TestFollowGroup: group helpers, SendGroup, and FollowGroup on a group
// that fans out on read [IM-11.3-5]: events from history first, then live,
// in conv seq order and once, across a cut connection (missed events come
// from history); a non-member is refused; a removed member's stream ends
// with not_member.
func TestFollowGroup(t *testing.T) {
	testnode.ForEachBackend(t, testFollowGroup)
}

func testFollowGroup(t *testing.T, be testnode.Backend) {
	n := testnode.Start(t, testnode.NewDB(t, be), secret, nodeLog(), func(c *server.Config) { c.GroupReadFanout = 2 })
	p := newProxy(t, n.MQTTAddr())
	alice := dial(t, n.MQTTAddr(), "alice")
	bob := dial(t, p.Addr(), "bob")
	dave := dial(t, n.MQTTAddr(), "dave")
	dial(t, n.MQTTAddr(), "carol")

	cr, err := alice.CreateGroup(ctx(t), "team", []string{"bob", "carol"})
	if err != nil || cr.Fanout != "read" || cr.ReadFrom != 1 {
		t.Fatalf("CreateGroup: %+v, %v", cr, err)
	}
	g := cr.Group
	if _, err := dave.FollowGroup(ctx(t), g, 0); !errors.Is(err, sdk.ErrNotMember) {
		t.Fatalf("non-member FollowGroup: %v", err)
	}
	ch, err := bob.FollowGroup(t.Context(), g, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(t, ch); ev.ConvSeq != 1 || ev.Msg == nil || ev.Msg.Type != protocol.TypeGroup {
		t.Fatalf("first event %+v", ev)
	}
	for i := 2; i <= 4; i++ {
		s, err := alice.SendGroup(ctx(t), g, protocol.TypeText, map[string]any{"text": fmt.Sprint(i)}, sdk.WithMentions("bob"))
		if err != nil || s.Seq != int64(i) || s.InboxSeq != 0 {
			t.Fatalf("SendGroup: %+v, %v", s, err)
		}
	}
	for i := 2; i <= 4; i++ {
		if ev := next(t, ch); ev.ConvSeq != int64(i) || textOf(ev) != fmt.Sprint(i) || len(ev.Msg.Mentions) != 1 {
			t.Fatalf("event %d: %+v", i, ev)
		}
	}
	// Cut bob off while two messages are sent: they come from history
	// after the reconnect, then live ones, with no duplicate.
	p.setRefuse(true)
	p.cutAll()
	for i := 5; i <= 6; i++ {
		if _, err := alice.SendGroup(ctx(t), g, protocol.TypeText, map[string]any{"text": fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	p.setRefuse(false)
	for i := 5; i <= 6; i++ {
		if ev := next(t, ch); ev.ConvSeq != int64(i) {
			t.Fatalf("after reconnect: %+v, want conv seq %d", ev, i)
		}
	}
	if _, err := alice.SendText(ctx(t), "bob", "direct"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendGroup(ctx(t), g, protocol.TypeText, map[string]any{"text": "7"}); err != nil {
		t.Fatal(err)
	}
	if ev := next(t, ch); ev.ConvSeq != 7 {
		t.Fatalf("live after reconnect: %+v", ev)
	}

	rs, err := bob.ReadMany(ctx(t), protocol.ReadItem{Conv: g, Seq: 3}, protocol.ReadItem{Conv: g, Seq: 7})
	if err != nil || len(rs) != 1 || rs[0].ReadSeq != 7 || rs[0].Unread != 0 {
		t.Fatalf("ReadMany: %+v, %v", rs, err)
	}
	if _, err := bob.AddToGroup(ctx(t), g, "dave"); !errors.Is(err, sdk.ErrForbidden) {
		t.Fatalf("AddToGroup by a member: %v", err)
	}
	info, err := bob.Group(ctx(t), g)
	if err != nil || info.Name != "team" || info.MemberCount != 3 {
		t.Fatalf("Group: %+v, %v", info, err)
	}
	if _, err := alice.RemoveFromGroup(ctx(t), g, "bob"); err != nil {
		t.Fatal(err)
	}
	// bob's next connection is refused the topic: the stream ends.
	p.cutAll()
	for {
		ev, ok := <-ch
		if !ok {
			t.Fatal("stream closed without an error event")
		}
		if ev.Kind == sdk.KindError {
			if ev.Error == nil || ev.Error.Code != protocol.CodeNotMember {
				t.Fatalf("error event %+v", ev)
			}
			break
		}
		if ev.ConvSeq != 8 { // the remove event may still come first
			t.Fatalf("unexpected %+v", ev)
		}
	}
	if _, ok := <-ch; ok {
		t.Fatal("stream not closed after the error")
	}
}

// TestFollowGroupChanges: FollowGroup hands over a recall and an edit in a
// read-fan-out group as timeline events, live and from history, and
// ChangeOf reads them [IM-14.4-3]; a mentioned member that follows nothing
// gets the mention on its event stream [IM-11.6-2].
func TestFollowGroupChanges(t *testing.T) {
	testnode.ForEachBackend(t, testFollowGroupChanges)
}

func testFollowGroupChanges(t *testing.T, be testnode.Backend) {
	n := testnode.Start(t, testnode.NewDB(t, be), secret, nodeLog(), func(c *server.Config) { c.GroupReadFanout = 2 })
	alice := dial(t, n.MQTTAddr(), "alice")
	bob := dial(t, n.MQTTAddr(), "bob")
	carol := dial(t, n.MQTTAddr(), "carol")
	cr, err := alice.CreateGroup(ctx(t), "team", []string{"bob", "carol"})
	if err != nil || cr.Fanout != "read" {
		t.Fatalf("CreateGroup: %+v, %v", cr, err)
	}
	g := cr.Group
	ch, err := bob.FollowGroup(t.Context(), g, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(t, ch); ev.ConvSeq != 1 {
		t.Fatalf("first event %+v", ev)
	}
	s, err := alice.SendGroup(ctx(t), g, protocol.TypeText, map[string]any{"text": "lunch?"}, sdk.WithMentions("carol"))
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(t, ch); ev.ConvSeq != s.Seq || textOf(ev) != "lunch?" {
		t.Fatalf("message %+v", ev)
	}
	if _, ok := sdk.ChangeOf(&protocol.Message{Type: protocol.TypeText}); ok {
		t.Fatal("ChangeOf a text message")
	}
	if _, err := alice.Edit(ctx(t), s.ID, map[string]any{"text": "lunch at 1?"}); err != nil {
		t.Fatal(err)
	}
	ev := next(t, ch)
	if c, ok := sdk.ChangeOf(ev.Msg); !ok || c.Recall || c.MsgID != s.ID || c.ConvSeq != s.Seq || c.Body["text"] != "lunch at 1?" ||
		ev.ConvSeq != s.Seq+1 || ev.Msg.From != "alice" {
		t.Fatalf("edit event %+v: %+v", ev, c)
	}
	if _, err := alice.Recall(ctx(t), s.ID); err != nil {
		t.Fatal(err)
	}
	ev = next(t, ch)
	if c, ok := sdk.ChangeOf(ev.Msg); !ok || !c.Recall || c.MsgID != s.ID || c.ConvSeq != s.Seq || ev.ConvSeq != s.Seq+2 {
		t.Fatalf("recall event %+v: %+v", ev, c)
	}
	// From history: the message recalled, the edit without its text.
	ch2, err := carol.FollowGroup(t.Context(), g, 0)
	if err != nil {
		t.Fatal(err)
	}
	for seq := int64(1); seq <= s.Seq+2; seq++ {
		ev := next(t, ch2)
		c, isChange := sdk.ChangeOf(ev.Msg)
		switch {
		case ev.ConvSeq != seq:
			t.Fatalf("from history: %+v, want conv seq %d", ev, seq)
		case seq == s.Seq && ev.Msg.Type != protocol.TypeRecalled,
			seq == s.Seq+1 && (!isChange || c.Recall || c.Body != nil),
			seq == s.Seq+2 && (!isChange || !c.Recall):
			t.Fatalf("from history, conv seq %d: %+v (%+v)", seq, ev.Msg, c)
		}
	}
	// carol's inbox: the create event, then the mention.
	evs := collect(t, carol, 2)
	if m := evs[1]; m.Kind != sdk.KindMention || m.Conv != g || m.ConvSeq != s.Seq || m.User != "alice" || m.Msg == nil {
		t.Fatalf("carol's events %+v", evs)
	}
}
