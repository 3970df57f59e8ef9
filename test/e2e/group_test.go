package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mqim/mqim/delivery/cluster"
	"github.com/mqim/mqim/internal/testnode"
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/server"
)

// gtext builds a text send to a group [IM-11.5-1].
func gtext(cmid, group, body string, mentions ...string) protocol.Send {
	return protocol.Send{Cmid: cmid, Group: group, Type: protocol.TypeText, Body: map[string]any{"text": body}, Mentions: mentions}
}

// waitInbox waits for the inbox event of conv at convSeq.
func (d *device) waitInbox(conv string, convSeq int64) event {
	d.t.Helper()
	return d.waitFrom(0, fmt.Sprintf("inbox event %s/%d", conv, convSeq), func(e event) bool {
		return e.Kind == protocol.KindMessage && e.Conv == conv && e.ConvSeq == convSeq
	})
}

// groupEvents returns the events received on group topics so far.
func (d *device) groupEvents() []event {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]event(nil), d.glog...)
}

// waitGroup waits for the group topic event of conv at convSeq.
func (d *device) waitGroup(conv string, convSeq int64) event {
	d.t.Helper()
	deadline := time.After(waitTimeout)
	for {
		d.mu.Lock()
		for _, ev := range d.glog {
			if ev.Err != nil {
				d.mu.Unlock()
				d.t.Fatalf("%s: %v", d.id, ev)
			}
			if ev.Conv == conv && ev.ConvSeq == convSeq {
				d.mu.Unlock()
				return ev
			}
		}
		grew := d.grew
		d.mu.Unlock()
		select {
		case <-grew:
		case <-deadline:
			d.t.Fatalf("%s: no group event %s/%d within %v; got %v", d.id, conv, convSeq, waitTimeout, d.groupEvents())
		}
	}
}

// bodyOp is the op of a group event message.
func bodyOp(m *protocol.Message) string {
	if m == nil || m.Type != protocol.TypeGroup {
		return ""
	}
	op, _ := m.Body["op"].(string)
	return op
}

// TestGroupWriteFanout: a small group [IM-11]: create, send with every
// member's devices getting the message on their inboxes, mentions, history,
// conversations and unread, group read state, and the documented errors
// for non-members, members without the role, muted and removed members.
func TestGroupWriteFanout(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		alice := dl.dial(t, n, "alice")
		bob := dl.dial(t, n, "bob")
		carol := dl.dial(t, n, "carol")
		dave := dl.dial(t, n, "dave")

		cr := call[protocol.GroupChangeResult](alice, protocol.MethodGroupCreate,
			protocol.GroupRequest{Members: []string{"bob", "carol"}, Name: ptr("team")})
		g := cr.Group
		if !protocol.IsGroupConv(g) || cr.ConvSeq != 1 || cr.Fanout != "write" {
			t.Fatalf("create: %+v", cr)
		}
		for _, d := range []*device{alice, bob, carol} {
			if ev := d.waitInbox(g, 1); bodyOp(ev.Msg) != "create" || ev.Msg.From != "alice" || ev.Msg.Cmid != "" {
				t.Fatalf("%s: create event %v", d.id, ev)
			}
		}

		s := bob.sendOK(gtext("b1", g, "hi all", "carol"))
		if s.Conv != g || s.Seq != 2 {
			t.Fatalf("send: %+v", s)
		}
		for _, d := range []*device{alice, bob, carol} {
			ev := d.waitInbox(g, 2)
			if ev.Msg.From != "bob" || ev.Msg.Cmid != "b1" || !slices.Equal(ev.Msg.Mentions, []string{"carol"}) {
				t.Fatalf("%s: %v (mentions %v)", d.id, ev, ev.Msg.Mentions)
			}
		}
		carol.sendOK(gtext("c1", g, "everyone", "*"))
		alice.waitInbox(g, 3)

		// Refusals change nothing [IM-11.5-2].
		mark := dave.mark()
		dave.expectRefused(mark, dave.send(gtext("d1", g, "let me in")), protocol.CodeNotMember, "d1")
		mark = bob.mark()
		bob.expectRefused(mark, bob.send(gtext("b2", "g:nope", "?")), protocol.CodeUnknownGroup, "b2")
		mark = bob.mark()
		bob.expectRefused(mark, bob.send(gtext("b3", g, "?", "dave")), protocol.CodeBadRequest, "b3")
		mark = bob.mark()
		bob.expectRefused(mark, bob.send(protocol.Send{Cmid: "b4", Group: g, To: "carol", Type: "text", Body: map[string]any{"text": "x"}}),
			protocol.CodeBadRequest, "b4")
		many := make([]string, 101)
		for i := range many {
			many[i] = "bob"
		}
		for _, bad := range []struct {
			payload map[string]any
			code    string
		}{
			{map[string]any{"cmid": "x1", "group": 5, "type": "text", "body": map[string]any{"text": "x"}}, protocol.CodeBadPayload},
			{map[string]any{"cmid": "x2", "group": g, "type": "text", "body": map[string]any{"text": "x"}, "mentions": "bob"}, protocol.CodeBadPayload},
			{map[string]any{"cmid": "x3", "group": g, "type": "text", "body": map[string]any{"text": "x"}, "mentions": []string{"b/b"}}, protocol.CodeBadRequest},
			{map[string]any{"cmid": "x4", "group": g, "type": "text", "body": map[string]any{"text": "x"}, "mentions": many}, protocol.CodeBadRequest},
			{map[string]any{"cmid": "x5", "to": "alice", "type": "text", "body": map[string]any{"text": "x"}, "mentions": []string{"alice"}}, protocol.CodeBadRequest},
			{map[string]any{"cmid": "x6", "group": g, "type": "group", "body": map[string]any{"op": "add"}}, protocol.CodeUnknownType},
			{map[string]any{"cmid": "x7", "group": "g:a/b", "type": "text", "body": map[string]any{"text": "x"}}, protocol.CodeBadRequest},
		} {
			mark := bob.mark()
			bob.expectRefused(mark, bob.publish(protocol.SendTopic("bob"), bob.encode(bad.payload)), bad.code, anyCmid)
		}
		dave.rpcErr(protocol.MethodHistory, protocol.HistoryRequest{Conv: g}, protocol.CodeNotMember)
		dave.rpcErr(protocol.MethodRead, protocol.ReadRequest{Conv: g, Seq: 1}, protocol.CodeNotMember)
		dave.rpcErr(protocol.MethodGroupInfo, protocol.GroupRequest{Group: g}, protocol.CodeNotMember)
		bob.rpcErr(protocol.MethodGroupAdd, protocol.GroupRequest{Group: g, Users: []string{"dave"}}, protocol.CodeForbidden)
		bob.rpcErr(protocol.MethodGroupRemove, protocol.GroupRequest{Group: g, User: "carol"}, protocol.CodeForbidden)
		alice.rpcErr(protocol.MethodGroupAdd, protocol.GroupRequest{Group: g, Users: []string{"nobody"}}, protocol.CodeUnknownUser)
		alice.rpcErr(protocol.MethodGroupLeave, protocol.GroupRequest{Group: g}, protocol.CodeBadRequest)
		alice.rpcErr(protocol.MethodGroupAdd, protocol.GroupRequest{Group: "g:nope", Users: []string{"dave"}}, protocol.CodeUnknownGroup)

		// History shows the membership change and the messages, with read
		// counts [IM-11.7-2].
		h := call[protocol.HistoryResult](carol, protocol.MethodHistory, protocol.HistoryRequest{Conv: g, ReadBy: true})
		if len(h.Messages) != 3 || bodyOp(&h.Messages[0]) != "create" || h.Messages[1].Cmid != "b1" || h.Messages[2].Cmid != "c1" {
			t.Fatalf("history: %+v", h.Messages)
		}
		// seq 2 (bob's) is read by carol (who sent 3) but not by alice.
		if h.Messages[1].ReadBy != 1 || h.Messages[2].ReadBy != 0 {
			t.Fatalf("read_by: %d, %d", h.Messages[1].ReadBy, h.Messages[2].ReadBy)
		}

		// Unread per conversation and in total [IM-11.7-1].
		conv := call[protocol.ConversationsResult](alice, protocol.MethodConversations, protocol.ConversationsRequest{})
		if conv.TotalUnread != 2 || len(conv.Conversations) != 1 {
			t.Fatalf("alice's conversations %+v", conv)
		}
		if c := conv.Conversations[0]; c.Kind != "group" || c.Name != "team" || c.LastSeq != 3 || c.ReadSeq != 1 || c.Unread != 2 {
			t.Fatalf("alice's group %+v", c)
		}
		rr := call[protocol.ReadResult](alice, protocol.MethodRead, protocol.ReadRequest{Conv: g, Seq: 3})
		if rr.ReadSeq != 3 || rr.Unread != 0 {
			t.Fatalf("read: %+v", rr)
		}
		alice.waitFrom(0, "read event", func(e event) bool { return e.Kind == protocol.KindRead && e.Conv == g && e.ConvSeq == 3 })
		if c := call[protocol.ConversationsResult](alice, protocol.MethodConversations, protocol.ConversationsRequest{}); c.TotalUnread != 0 {
			t.Fatalf("alice's unread after read: %+v", c)
		}

		// Mute: the muted member's sends are refused, nothing is stored.
		call[protocol.GroupChangeResult](alice, protocol.MethodGroupMute, protocol.GroupRequest{Group: g, User: "carol"})
		carol.waitInbox(g, 4)
		mark = carol.mark()
		carol.expectRefused(mark, carol.send(gtext("c2", g, "shh")), protocol.CodeMuted, "c2")

		// Remove: carol learns it on her inbox, then gets nothing more and
		// cannot read the group [IM-11.4-4].
		rm := call[protocol.GroupChangeResult](alice, protocol.MethodGroupRemove, protocol.GroupRequest{Group: g, User: "carol"})
		if ev := carol.waitInbox(g, rm.ConvSeq); bodyOp(ev.Msg) != "remove" {
			t.Fatalf("carol's remove event %v", ev)
		}
		mark = carol.mark()
		bob.sendOK(gtext("b5", g, "after carol"))
		alice.waitInbox(g, rm.ConvSeq+1)
		carol.rpcErr(protocol.MethodHistory, protocol.HistoryRequest{Conv: g}, protocol.CodeNotMember)
		for _, ev := range carol.events(mark) {
			if ev.Conv == g {
				t.Fatalf("carol got %v after removal", ev)
			}
		}
		all := alice.historyAll(g)
		if len(all) != int(rm.ConvSeq+1) {
			t.Fatalf("history has %d messages, want %d", len(all), rm.ConvSeq+1)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// TestGroupReadFanoutSwitch: a group that crosses the threshold (3 here)
// mid-conversation [IM-11.3]: the switch event reaches every member on the
// inbox with read_from; devices then subscribe to the group topic and
// fill the gap with history, and every device ends with every event once,
// in order. Non-members may not subscribe to the topic [IM-2.2-4]; a
// removed member stops receiving it at once [IM-11.4-4].
func TestGroupReadFanoutSwitch(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be, func(c *server.Config) { c.GroupReadFanout = 3 })
		alice := dl.dial(t, n, "alice")
		bob := dl.dial(t, n, "bob")
		carol := dl.dial(t, n, "carol")
		dave := dl.dial(t, n, "dave")
		erin := dl.dial(t, n, "erin")

		g := call[protocol.GroupChangeResult](alice, protocol.MethodGroupCreate,
			protocol.GroupRequest{Members: []string{"bob", "carol"}}).Group
		topic := protocol.GroupTopic(g)
		if code := erin.subscribe(topic); code < 0x80 {
			t.Fatalf("non-member subscribed to %s: %#x", topic, code)
		}
		bob.sendOK(gtext("b1", g, "small"))
		for _, d := range []*device{alice, bob, carol} {
			d.waitInbox(g, 2)
		}

		sw := call[protocol.GroupChangeResult](alice, protocol.MethodGroupAdd, protocol.GroupRequest{Group: g, Users: []string{"dave"}})
		if sw.Fanout != "read" || sw.ReadFrom != 3 || sw.ConvSeq != 3 {
			t.Fatalf("switch: %+v", sw)
		}
		members := []*device{alice, bob, carol, dave}
		for _, d := range members {
			ev := d.waitInbox(g, 3)
			if bodyOp(ev.Msg) != "add" || ev.Msg.Body["fanout"] != "read" {
				t.Fatalf("%s: switch event %v", d.id, ev)
			}
		}
		// A message committed before the devices subscribe: they find it
		// with history after read_from.
		send := func(d *device, cmid, body string) int64 {
			t.Helper()
			if d.v5 {
				return d.sendOK(gtext(cmid, g, body)).Seq
			}
			if r := d.send(gtext(cmid, g, body)); r.Err != nil {
				t.Fatalf("%s: send %s: %v", d.id, cmid, r.Err)
			}
			return 0
		}
		send(bob, "b2", "before subscribing")
		for _, d := range members {
			if code := d.subscribe(topic); code >= 0x80 {
				t.Fatalf("%s: subscribe %s refused: %#x", d.id, topic, code)
			}
		}
		send(carol, "c1", "live")
		// Each device: the inbox up to read_from, then history after it,
		// then the topic, deduplicated by conv seq [IM-11.3-5].
		for _, d := range members {
			d.waitGroup(g, 5)
			seen := map[int64]int{}
			for _, ev := range d.events(0) {
				if ev.Conv == g && ev.Kind == protocol.KindMessage {
					seen[ev.ConvSeq]++
				}
			}
			h := call[protocol.HistoryResult](d, protocol.MethodHistory, protocol.HistoryRequest{Conv: g, After: sw.ReadFrom})
			for _, m := range h.Messages {
				seen[m.Seq]++
			}
			first := int64(1)
			if d == dave {
				first = sw.ConvSeq // dave joined with the switch event
			}
			for s := first; s <= 5; s++ {
				if seen[s] == 0 {
					t.Fatalf("%s: conv seq %d missing (seen %v)", d.id, s, seen)
				}
			}
			for s := range seen {
				if s <= sw.ReadFrom && seen[s] != 1 {
					t.Fatalf("%s: conv seq %d on the inbox %d times", d.id, s, seen[s])
				}
			}
			// No read-fan-out message went to an inbox.
			for _, ev := range d.events(0) {
				if ev.Conv == g && ev.ConvSeq > sw.ReadFrom {
					t.Fatalf("%s: inbox event after the switch: %v", d.id, ev)
				}
			}
		}
		if ev := erin.groupEvents(); len(ev) != 0 {
			t.Fatalf("non-member got %v", ev)
		}
		// Nobody publishes on a group topic but the server [IM-2.2-1].
		mark := alice.mark()
		alice.expectRefused(mark, alice.publish(topic, alice.encode(gtext("x", g, "spoof"))), protocol.CodeNotAuthorized, "")
		// The topic carries events in conv seq order, no inbox seq.
		for i := 6; i <= 8; i++ {
			send(alice, fmt.Sprintf("a%d", i), "burst")
		}
		for _, d := range members {
			d.waitGroup(g, 8)
			var seqs []int64
			for _, ev := range d.groupEvents() {
				if ev.Seq != 0 {
					t.Fatalf("%s: group topic event with an inbox seq: %v", d.id, ev)
				}
				seqs = append(seqs, ev.ConvSeq)
			}
			if !slices.IsSorted(seqs) {
				t.Fatalf("%s: group events out of order: %v", d.id, seqs)
			}
		}

		// Remove dave: he learns it on his inbox (he no longer reads the
		// topic), and the topic stops at once.
		rm := call[protocol.GroupChangeResult](alice, protocol.MethodGroupRemove, protocol.GroupRequest{Group: g, User: "dave"})
		if ev := dave.waitInbox(g, rm.ConvSeq); bodyOp(ev.Msg) != "remove" {
			t.Fatalf("dave's remove event %v", ev)
		}
		send(bob, "b10", "after dave")
		send(bob, "b11", "after dave, again")
		alice.waitGroup(g, rm.ConvSeq+2)
		call[protocol.ConversationsResult](dave, protocol.MethodConversations, protocol.ConversationsRequest{}) // a round trip on dave's connection
		for _, ev := range dave.groupEvents() {
			if ev.ConvSeq > rm.ConvSeq {
				t.Fatalf("dave got %v after removal", ev)
			}
		}
		dave.rpcErr(protocol.MethodHistory, protocol.HistoryRequest{Conv: g, After: rm.ConvSeq}, protocol.CodeNotMember)
		if code := dave.subscribe(topic); code < 0x80 {
			t.Fatalf("removed member subscribed again: %#x", code)
		}
		// Unread of a read-fan-out group, from the member's read seq.
		c := call[protocol.ConversationsResult](carol, protocol.MethodConversations, protocol.ConversationsRequest{})
		if len(c.Conversations) != 1 || c.Conversations[0].Unread != c.Conversations[0].LastSeq-c.Conversations[0].ReadSeq ||
			c.TotalUnread != c.Conversations[0].Unread || c.Conversations[0].LastSeq != rm.ConvSeq+2 {
			t.Fatalf("carol's conversations %+v", c)
		}
		info := call[protocol.GroupInfo](carol, protocol.MethodGroupInfo, protocol.GroupRequest{Group: g})
		if info.Fanout != "read" || info.ReadFrom != sw.ReadFrom || info.MemberCount != 3 {
			t.Fatalf("group.info %+v", info)
		}
	})
}

// TestGroupRoles: roles, transfer, mute, settings and leave through the
// group RPCs [IM-11.1], [IM-11.4], each an event in the timeline, and
// malformed group requests answered with bad_request or bad_payload.
func TestGroupRoles(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		alice := dl.dial(t, n, "alice")
		bob := dl.dial(t, n, "bob")
		carol := dl.dial(t, n, "carol")

		g := call[protocol.GroupChangeResult](alice, protocol.MethodGroupCreate,
			protocol.GroupRequest{Members: []string{"bob", "carol"}}).Group
		call[protocol.GroupChangeResult](alice, protocol.MethodGroupRole, protocol.GroupRequest{Group: g, User: "bob", Role: "admin"})
		bob.rpcErr(protocol.MethodGroupRole, protocol.GroupRequest{Group: g, User: "carol", Role: "admin"}, protocol.CodeForbidden)
		bob.rpcErr(protocol.MethodGroupTransfer, protocol.GroupRequest{Group: g, User: "carol"}, protocol.CodeForbidden)
		bob.rpcErr(protocol.MethodGroupMute, protocol.GroupRequest{Group: g, User: "alice"}, protocol.CodeForbidden)
		call[protocol.GroupChangeResult](bob, protocol.MethodGroupMute, protocol.GroupRequest{Group: g, User: "carol"})
		mark := carol.mark()
		carol.expectRefused(mark, carol.send(gtext("c1", g, "x")), protocol.CodeMuted, "c1")
		call[protocol.GroupChangeResult](bob, protocol.MethodGroupMute, protocol.GroupRequest{Group: g, User: "carol", Muted: ptr(false)})
		carol.sendOK(gtext("c1", g, "x")) // the refused cmid stored nothing, so it is free
		call[protocol.GroupChangeResult](bob, protocol.MethodGroupUpdate, protocol.GroupRequest{Group: g, Name: ptr("renamed"), Notice: ptr("hello")})
		call[protocol.GroupChangeResult](alice, protocol.MethodGroupTransfer, protocol.GroupRequest{Group: g, User: "bob"})
		bob.rpcErr(protocol.MethodGroupLeave, protocol.GroupRequest{Group: g}, protocol.CodeBadRequest)
		lv := call[protocol.GroupChangeResult](alice, protocol.MethodGroupLeave, protocol.GroupRequest{Group: g})
		if ev := alice.waitInbox(g, lv.ConvSeq); bodyOp(ev.Msg) != "leave" {
			t.Fatalf("alice's leave event %v", ev)
		}
		alice.rpcErr(protocol.MethodGroupInfo, protocol.GroupRequest{Group: g}, protocol.CodeNotMember)

		info := call[protocol.GroupInfo](carol, protocol.MethodGroupInfo, protocol.GroupRequest{Group: g})
		if info.Name != "renamed" || info.Notice != "hello" || info.MemberCount != 2 || len(info.Members) != 2 ||
			info.Members[0].User != "bob" || info.Members[0].Role != "owner" || info.Members[1].Role != "member" || info.Members[1].Muted {
			t.Fatalf("group.info %+v", info)
		}
		var ops []string
		for _, m := range carol.historyAll(g) {
			if op := bodyOp(&m); op != "" {
				ops = append(ops, op)
			}
		}
		if want := []string{"create", "role", "mute", "mute", "update", "transfer", "leave"}; !slices.Equal(ops, want) {
			t.Fatalf("timeline ops %v, want %v", ops, want)
		}
		// Every member's devices saw the same changes on their inboxes.
		for _, d := range []*device{bob, carol} {
			d.waitInbox(g, lv.ConvSeq)
		}

		// Malformed requests.
		for _, tc := range []struct {
			method string
			req    any
			code   string
		}{
			{protocol.MethodGroupCreate, protocol.GroupRequest{Members: []string{"bad/id"}}, protocol.CodeBadRequest},
			{protocol.MethodGroupCreate, protocol.GroupRequest{Group: "g:mine"}, protocol.CodeBadRequest},
			{protocol.MethodGroupCreate, map[string]any{"members": "bob"}, protocol.CodeBadPayload},
			{protocol.MethodGroupAdd, protocol.GroupRequest{Group: g}, protocol.CodeBadRequest},
			{protocol.MethodGroupAdd, protocol.GroupRequest{Group: "d:bob:carol", Users: []string{"alice"}}, protocol.CodeBadRequest},
			{protocol.MethodGroupRole, protocol.GroupRequest{Group: g, User: "carol", Role: "owner"}, protocol.CodeBadRequest},
			{protocol.MethodGroupRemove, protocol.GroupRequest{Group: g}, protocol.CodeBadRequest},
			{protocol.MethodGroupUpdate, protocol.GroupRequest{Group: g}, protocol.CodeBadRequest},
			{protocol.MethodGroupUpdate, protocol.GroupRequest{Group: g, Name: ptr(string(make([]byte, 200)))}, protocol.CodeBadRequest},
			{protocol.MethodGroupRemove, protocol.GroupRequest{Group: g, User: "bob"}, protocol.CodeBadRequest}, // oneself
			{protocol.MethodGroupInfo, protocol.GroupRequest{Group: "nope"}, protocol.CodeBadRequest},
		} {
			bob.rpcErr(tc.method, tc.req, tc.code)
		}
		if got := call[protocol.GroupInfo](bob, protocol.MethodGroupInfo, protocol.GroupRequest{Group: g}).LastSeq; got != info.LastSeq {
			t.Fatalf("refused requests changed the group: last seq %d, want %d", got, info.LastSeq)
		}
	})
}

// TestGroupAcrossNodes: two nodes sharing PostgreSQL and NATS. A
// read-fan-out group's events committed on one node reach member devices
// on the other on the group topic, and a removal committed on one node
// stops deliveries on the other at once [IM-11.3-6], [IM-2.2-4].
//
// PostgreSQL only: nodes share a database only there (a SQLite file belongs
// to one node).
func TestGroupAcrossNodes(t *testing.T) {
	forEachVersion(t, func(t *testing.T, dl dialer) {
		nc, err := cluster.ConnectNATS(context.Background(), cluster.NATSConfig{StoreDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		db := testnode.NewDB(t, testnode.Postgres)
		node := func(id int) *testNode {
			return startNodeOn(t, db, func(c *server.Config) {
				c.NATS, c.NodeID, c.GroupReadFanout = nc.Conn, id, 2
			})
		}
		n1, n2 := node(1), node(2)
		alice := dl.dial(t, n1, "alice")
		bob := dl.dial(t, n2, "bob")
		carol := dl.dial(t, n2, "carol")

		// The bus consumers start in the background: wait until n2 gets
		// n1's events.
		for i := 0; ; i++ {
			alice.sendOK(text(fmt.Sprintf("probe%d", i), "bob", "probe"))
			got := false
			deadline := time.Now().Add(500 * time.Millisecond)
			for !got && time.Now().Before(deadline) {
				got = len(bob.events(0)) > 0
				time.Sleep(10 * time.Millisecond) // polling the device's log
			}
			if got {
				break
			}
			if i == 60 {
				t.Fatal("node 2 never got node 1's events")
			}
		}

		cr := call[protocol.GroupChangeResult](alice, protocol.MethodGroupCreate, protocol.GroupRequest{Members: []string{"bob", "carol"}})
		if cr.Fanout != "read" {
			t.Fatalf("create: %+v", cr)
		}
		g, topic := cr.Group, protocol.GroupTopic(cr.Group)
		for _, d := range []*device{alice, bob, carol} {
			d.waitInbox(g, 1)
			if code := d.subscribe(topic); code >= 0x80 {
				t.Fatalf("%s: subscribe refused %#x", d.id, code)
			}
		}
		call[protocol.GroupChangeResult](alice, protocol.MethodGroupUpdate, protocol.GroupRequest{Group: g, Name: ptr("x")})
		for _, d := range []*device{alice, bob, carol} {
			d.waitGroup(g, 2)
		}
		rm := call[protocol.GroupChangeResult](alice, protocol.MethodGroupRemove, protocol.GroupRequest{Group: g, User: "carol"})
		carol.waitInbox(g, rm.ConvSeq)
		call[protocol.GroupChangeResult](alice, protocol.MethodGroupUpdate, protocol.GroupRequest{Group: g, Name: ptr("y")})
		call[protocol.GroupChangeResult](alice, protocol.MethodGroupUpdate, protocol.GroupRequest{Group: g, Name: ptr("z")})
		bob.waitGroup(g, rm.ConvSeq+2)
		call[protocol.ConversationsResult](carol, protocol.MethodConversations, protocol.ConversationsRequest{}) // a round trip on carol's connection
		for _, ev := range carol.groupEvents() {
			if ev.ConvSeq > rm.ConvSeq {
				t.Fatalf("carol got %v on node 2 after her removal on node 1", ev)
			}
		}
	})
}

// TestReadBatch: a device reports reads in a batch; the server coalesces
// entries of one conversation to the highest seq and stores one read event
// per conversation that moved [IM-7.6-4], [IM-11.7-1].
func TestReadBatch(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		alice := dl.dial(t, n, "alice")
		alice2 := dl.dial(t, n, "alice")
		bob := dl.dial(t, n, "bob")
		g := call[protocol.GroupChangeResult](bob, protocol.MethodGroupCreate, protocol.GroupRequest{Members: []string{"alice"}}).Group
		bob.sendOK(gtext("b1", g, "one"))
		bob.sendOK(gtext("b2", g, "two"))
		bob.sendOK(text("d1", "alice", "direct"))
		alice.waitInbox("d:alice:bob", 1)
		mark := alice2.mark()

		res := call[protocol.ReadBatchResult](alice, protocol.MethodRead, protocol.ReadRequest{Reads: []protocol.ReadItem{
			{Conv: g, Seq: 1}, {Conv: "d:alice:bob", Seq: 1}, {Conv: g, Seq: 3}, {Conv: "d:alice:carol", Seq: 5}}})
		want := []protocol.ReadResult{{Conv: g, ReadSeq: 3}, {Conv: "d:alice:bob", ReadSeq: 1}, {Conv: "d:alice:carol"}}
		if !slices.Equal(res.Reads, want) {
			t.Fatalf("reads %+v, want %+v", res.Reads, want)
		}
		// alice's other device: one read event per conversation.
		alice2.waitFrom(mark, "read of the direct conversation", func(e event) bool {
			return e.Kind == protocol.KindRead && e.Conv == "d:alice:bob"
		})
		alice2.waitFrom(mark, "read of the group", func(e event) bool { return e.Kind == protocol.KindRead && e.Conv == g })
		var reads []string
		for _, ev := range alice2.events(mark) {
			if ev.Kind == protocol.KindRead {
				reads = append(reads, fmt.Sprintf("%s@%d", ev.Conv, ev.ConvSeq))
			}
		}
		if len(reads) != 2 {
			t.Fatalf("read events %v, want one per conversation", reads)
		}
		if c := call[protocol.ConversationsResult](alice, protocol.MethodConversations, protocol.ConversationsRequest{}); c.TotalUnread != 0 {
			t.Fatalf("unread after the batch: %+v", c)
		}
		alice.rpcErr(protocol.MethodRead, protocol.ReadRequest{Conv: g, Seq: 1, Reads: []protocol.ReadItem{{Conv: g, Seq: 1}}}, protocol.CodeBadRequest)
		alice.rpcErr(protocol.MethodRead, protocol.ReadRequest{Reads: []protocol.ReadItem{{Conv: "d:bob:carol", Seq: 1}}}, protocol.CodeNotMember)
		alice.rpcErr(protocol.MethodRead, protocol.ReadRequest{Reads: make([]protocol.ReadItem, 101)}, protocol.CodeBadRequest)
	})
}
