package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/protocol/authtoken"
	"github.com/mqim/mqim/server"
)

// bridgeToken is a token of user with role bridge [IM-3.1-3].
func bridgeToken(t testing.TB, user string) string {
	t.Helper()
	tok, err := authtoken.Mint(secret, user, authtoken.RoleBridge, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// sysGroup builds a system notification to a group [IM-4.6-5].
func sysGroup(cmid, group, text string) protocol.Send {
	return protocol.Send{Cmid: cmid, Group: group, Type: protocol.TypeSystem, Body: map[string]any{"text": text}}
}

// notify publishes s on the notification topic [IM-4.6-1].
func (d *device) notify(s protocol.Send) pubResult {
	d.t.Helper()
	return d.publish(protocol.SysNotifyTopic, d.encode(&s))
}

// notifyOK publishes a notification that must be stored. MQTT 5: the
// PUBACK is a success without inbox_seq (the bridge is no member, so it has
// no inbox event) [IM-4.6-6]; 3.1.1: the PUBACK says nothing and success
// shows on the members' devices, which the caller waits for.
func (d *device) notifyOK(s protocol.Send, wantSeq int64) {
	d.t.Helper()
	r := d.notify(s)
	if r.Err != nil {
		d.t.Fatalf("%s: notify %s: %v", d.id, s.Cmid, r.Err)
	}
	if !d.v5 {
		return
	}
	if r.Code != 0 {
		d.t.Fatalf("%s: notify %s: PUBACK %#x %q %v", d.id, s.Cmid, r.Code, r.Reason, r.Props)
	}
	if got := r.sent(d.t); got.Conv != s.Group || got.Seq != wantSeq || got.InboxSeq != 0 {
		d.t.Fatalf("%s: notify %s stored as %+v, want %s/%d without inbox_seq", d.id, s.Cmid, got, s.Group, wantSeq)
	}
}

// isSystemFrom checks a delivered notification.
func isSystemFrom(t *testing.T, who string, ev event, from, cmid, text string) {
	t.Helper()
	m := ev.Msg
	if m == nil || m.From != from || m.Type != protocol.TypeSystem || m.Cmid != cmid || m.Body["text"] != text {
		t.Fatalf("%s: got %v, want the system message %s from %s", who, ev, cmid, from)
	}
}

// marker has the bridge notify alice directly and waits until the bridge
// and alice see it: an inbox event of the bridge, so that any group event
// the bridge would have got before it has arrived too.
func marker(t *testing.T, ci, alice *device, cmid string) {
	t.Helper()
	mark := ci.mark()
	if r := ci.notify(protocol.Send{Cmid: cmid, To: "alice", Type: protocol.TypeSystem, Body: map[string]any{"text": cmid}}); r.Err != nil || r.Code != 0 {
		t.Fatalf("marker %s: %+v", cmid, r)
	}
	ci.waitFrom(mark, "marker "+cmid, func(e event) bool { return e.Msg != nil && e.Msg.Cmid == cmid })
	alice.waitFrom(0, "marker "+cmid, func(e event) bool { return e.Msg != nil && e.Msg.Cmid == cmid })
}

// gsend sends to a read-fan-out group; a 3.1.1 sender learns the outcome
// from the group topic [IM-11.5-2], where the caller waits.
func gsend(t *testing.T, d *device, s protocol.Send) {
	t.Helper()
	if d.v5 {
		d.sendOK(s)
	} else if r := d.send(s); r.Err != nil {
		t.Fatalf("%s: send %s: %v", d.id, s.Cmid, r.Err)
	}
}

// TestBridgeNotifyGroup: a bridge account that is no member notifies a
// group [IM-4.6-5] while it fans out on write (every member's inbox) and
// after it switched to read fan-out (the group topic): the notification is
// a system message from the bridge in the group's timeline, counts as
// unread, is idempotent by cmid, and never reaches the bridge, not even
// the members' answers [IM-4.6-7]; refusals per [IM-4.6-8].
func TestBridgeNotifyGroup(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be, func(c *server.Config) { c.GroupReadFanout = 3 })
		alice := dl.dial(t, n, "alice")
		bob := dl.dial(t, n, "bob")
		carol := dl.dial(t, n, "carol")
		dl.dial(t, n, "dave")
		ci := dl.dial(t, n, "ci", withToken(bridgeToken(t, "ci")))

		g := call[protocol.GroupChangeResult](alice, protocol.MethodGroupCreate,
			protocol.GroupRequest{Members: []string{"bob"}}).Group
		alice.waitInbox(g, 1)
		bob.waitInbox(g, 1)

		// Write fan-out: an inbox event for every member.
		ci.notifyOK(sysGroup("n1", g, "build 1 passed"), 2)
		for _, d := range []*device{alice, bob} {
			isSystemFrom(t, d.id, d.waitInbox(g, 2), "ci", "n1", "build 1 passed")
		}
		// A retry stores nothing new: the next notification takes seq 3.
		ci.notifyOK(sysGroup("n1", g, "build 1 passed"), 2)
		ci.notifyOK(sysGroup("n2", g, "build 2 passed"), 3)
		bob.waitInbox(g, 3)
		count := 0
		for _, ev := range bob.events(0) {
			if ev.Conv == g && ev.Msg != nil && ev.Msg.Cmid == "n1" {
				count++
			}
		}
		if count != 1 {
			t.Fatalf("bob got n1 %d times", count)
		}
		// It counts as unread like any message [IM-4.6-6].
		cs := call[protocol.ConversationsResult](bob, protocol.MethodConversations, protocol.ConversationsRequest{})
		if len(cs.Conversations) != 1 || cs.Conversations[0].Conv != g || cs.Conversations[0].Unread != 3 ||
			cs.Conversations[0].Last == nil || cs.Conversations[0].Last.From != "ci" {
			t.Fatalf("bob's conversations: %+v", cs)
		}
		// A member's answer goes to the group, not to the bridge [IM-4.6-7].
		bob.sendOK(gtext("b1", g, "thanks, ci"))
		alice.waitInbox(g, 4)

		// Refusals [IM-4.6-8].
		mark := ci.mark()
		ci.expectRefused(mark, ci.notify(sysGroup("n3", "g:404", "?")), protocol.CodeUnknownGroup, "n3")
		mark = ci.mark()
		both := sysGroup("n4", g, "?")
		both.To = "alice"
		ci.expectRefused(mark, ci.notify(both), protocol.CodeBadRequest, "n4")
		mark = ci.mark()
		ci.expectRefused(mark, ci.notify(sysGroup("n5", "team", "?")), protocol.CodeBadRequest, "n5")
		mark = ci.mark()
		ci.expectRefused(mark, ci.notify(sysGroup("n1", g, "another body")), protocol.CodeCmidConflict, "n1")
		mark = alice.mark()
		alice.expectRefused(mark, alice.notify(sysGroup("a1", g, "as a bridge")), protocol.CodeNotAuthorized, "")
		mark = alice.mark()
		alice.expectRefused(mark, alice.send(sysGroup("a2", g, "system")), protocol.CodeUnknownType, "a2")

		// Read fan-out: carol and dave make 4 members > 3.
		sw := call[protocol.GroupChangeResult](alice, protocol.MethodGroupAdd, protocol.GroupRequest{Group: g, Users: []string{"carol", "dave"}})
		if sw.Fanout != "read" || sw.ConvSeq != 5 {
			t.Fatalf("switch: %+v", sw)
		}
		members := []*device{alice, bob, carol}
		for _, d := range members {
			d.waitInbox(g, 5)
			if code := d.subscribe(protocol.GroupTopic(g)); code >= 0x80 {
				t.Fatalf("%s: subscribe refused: %#x", d.id, code)
			}
		}
		if code := ci.subscribe(protocol.GroupTopic(g)); code < 0x80 {
			t.Fatalf("the bridge, no member, subscribed to the group topic: %#x", code)
		}
		ci.notifyOK(sysGroup("n6", g, "deployed"), 6)
		for _, d := range members {
			isSystemFrom(t, d.id, d.waitGroup(g, 6), "ci", "n6", "deployed")
		}
		gsend(t, carol, gtext("c1", g, "nice"))
		for _, d := range members {
			d.waitGroup(g, 7)
			for _, ev := range d.events(0) {
				if ev.Conv == g && ev.ConvSeq > sw.ConvSeq {
					t.Fatalf("%s: inbox event after the switch: %v", d.id, ev)
				}
			}
		}
		h := call[protocol.HistoryResult](carol, protocol.MethodHistory, protocol.HistoryRequest{Conv: g, After: 5})
		if len(h.Messages) != 2 || h.Messages[0].From != "ci" || h.Messages[0].Type != protocol.TypeSystem {
			t.Fatalf("history after the switch: %+v", h.Messages)
		}
		ci.rpcErr(protocol.MethodHistory, protocol.HistoryRequest{Conv: g}, protocol.CodeNotMember)

		// The bridge got nothing of the group, neither notifications nor
		// answers.
		marker(t, ci, alice, "m1")
		for _, ev := range ci.events(0) {
			if ev.Conv == g {
				t.Fatalf("the bridge got a group event: %v", ev)
			}
		}
		if ev := ci.groupEvents(); len(ev) != 0 {
			t.Fatalf("the bridge got group topic events: %v", ev)
		}
	})
}

// postNotification posts body to POST /v1/notifications with tok and
// returns the status and decoded answer [IM-8.1-6].
func postNotification(t *testing.T, n *testNode, tok string, body any) (int, map[string]any) {
	t.Helper()
	return httpDo(t, n, tok, "POST", "/v1/notifications", body)
}

// TestBridgeNotifyGroupHTTP: the same over HTTP [IM-8.1-6], to a group
// that fans out on write and to one that fans out on read: 201 then 200
// for a retry, delivered to every member as over MQTT, and the errors.
func TestBridgeNotifyGroupHTTP(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be, func(c *server.Config) { c.GroupReadFanout = 3 })
		alice := dl.dial(t, n, "alice")
		bob := dl.dial(t, n, "bob")
		carol := dl.dial(t, n, "carol")
		dave := dl.dial(t, n, "dave")
		tok := bridgeToken(t, "ci")

		small := call[protocol.GroupChangeResult](alice, protocol.MethodGroupCreate,
			protocol.GroupRequest{Members: []string{"bob"}}).Group
		large := call[protocol.GroupChangeResult](alice, protocol.MethodGroupCreate,
			protocol.GroupRequest{Members: []string{"bob", "carol", "dave"}})
		if large.Fanout != "read" {
			t.Fatalf("large group: %+v", large)
		}
		all := []*device{alice, bob, carol, dave}
		for _, d := range all {
			d.waitInbox(large.Group, 1)
			if code := d.subscribe(protocol.GroupTopic(large.Group)); code >= 0x80 {
				t.Fatalf("%s: subscribe refused: %#x", d.id, code)
			}
		}

		// Write fan-out.
		req := map[string]any{"group": small, "cmid": "h1", "body": map[string]any{"text": "build 1 passed"}}
		status, res := postNotification(t, n, tok, req)
		if status != http.StatusCreated || res["conv"] != small || res["seq"] != 2.0 || res["duplicate"] != false {
			t.Fatalf("POST to the small group: %d %v", status, res)
		}
		for _, d := range []*device{alice, bob} {
			isSystemFrom(t, d.id, d.waitInbox(small, 2), "ci", "h1", "build 1 passed")
		}
		if status, again := postNotification(t, n, tok, req); status != http.StatusOK || again["id"] != res["id"] || again["duplicate"] != true {
			t.Fatalf("retry: %d %v, first %v", status, again, res)
		}
		// The same cmid over MQTT is the same notification [IM-4.5-2].
		ci := dl.dial(t, n, "ci", withToken(tok))
		ci.notifyOK(sysGroup("h1", small, "build 1 passed"), 2)

		// Read fan-out: the group topic, on the committer's order.
		status, res = postNotification(t, n, tok, map[string]any{"group": large.Group, "cmid": "h2", "type": "system",
			"body": map[string]any{"text": "deployed"}, "mentions": []string{"*"}})
		if status != http.StatusCreated || res["seq"] != 2.0 {
			t.Fatalf("POST to the large group: %d %v", status, res)
		}
		for _, d := range all {
			ev := d.waitGroup(large.Group, 2)
			isSystemFrom(t, d.id, ev, "ci", "h2", "deployed")
			if len(ev.Msg.Mentions) != 1 || ev.Msg.Mentions[0] != "*" {
				t.Fatalf("%s: mentions %v", d.id, ev.Msg.Mentions)
			}
		}
		gsend(t, bob, gtext("b1", large.Group, "after"))
		carol.waitGroup(large.Group, 3)

		for _, c := range []struct {
			name   string
			tok    string
			body   map[string]any
			status int
			code   string
		}{
			{"unknown group", tok, map[string]any{"group": "g:404", "body": map[string]any{}}, 404, protocol.CodeUnknownGroup},
			{"to and group", tok, map[string]any{"group": small, "to": "bob", "body": map[string]any{}}, 400, protocol.CodeBadRequest},
			{"not a group id", tok, map[string]any{"group": "team", "body": map[string]any{}}, 400, protocol.CodeBadRequest},
			{"cmid conflict", tok, map[string]any{"group": small, "cmid": "h1", "body": map[string]any{"text": "other"}}, 409, protocol.CodeCmidConflict},
			{"mention of a non-member", tok, map[string]any{"group": small, "mentions": []string{"carol"}, "body": map[string]any{}}, 400, protocol.CodeBadRequest},
			{"user token", token(t, "alice"), map[string]any{"group": small, "body": map[string]any{}}, 403, protocol.CodeNotAuthorized},
			// Refused as over MQTT (the same validation, issue 11).
			{"body nested too deep", tok, map[string]any{"group": small, "body": deepBody(40)}, 400, protocol.CodeBadRequest},
			{"cmid with a control character", tok, map[string]any{"group": small, "cmid": "h\u0001", "body": map[string]any{}}, 400, protocol.CodeBadRequest},
		} {
			status, res := postNotification(t, n, c.tok, c.body)
			e, _ := res["error"].(map[string]any)
			if status != c.status || e == nil || e["code"] != c.code {
				t.Fatalf("%s: %d %v, want %d %s", c.name, status, res, c.status, c.code)
			}
		}
		// Nothing more was stored: seq 3 is the next.
		status, res = postNotification(t, n, tok, map[string]any{"group": small, "cmid": "h3", "body": map[string]any{"text": "x"}})
		if status != http.StatusCreated || res["seq"] != 3.0 {
			t.Fatalf("after the refusals: %d %v", status, res)
		}
		bob.waitInbox(small, 3)
	})
}

// TestBridgeNotifyUserHTTP: a notification to a user over HTTP goes through
// the send pipeline: delivered, idempotent by cmid, and refused (nothing
// stored) once the user blocks the bridge [IM-8.1-6], [IM-13.2-1].
func TestBridgeNotifyUserHTTP(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		bob := dl.dial(t, n, "bob")
		tok := bridgeToken(t, "ci")
		body := map[string]any{"to": "bob", "cmid": "n1", "body": map[string]any{"text": "build 1 passed"}}
		if st, res := postNotification(t, n, tok, body); st != 201 || res["conv"] != protocol.DirectConv("bob", "ci") {
			t.Fatalf("notification: %d %v", st, res)
		}
		isSystemFrom(t, "bob", bob.waitInbox(protocol.DirectConv("bob", "ci"), 1), "ci", "n1", "build 1 passed")
		if st, res := postNotification(t, n, tok, body); st != 200 || res["duplicate"] != true {
			t.Fatalf("retry: %d %v", st, res)
		}
		call[protocol.Contact](bob, protocol.MethodContactBlock, protocol.ContactRequest{User: "ci"})
		body["cmid"] = "n2"
		if st, res := postNotification(t, n, tok, body); st != 403 || res["error"] == nil {
			t.Fatalf("notification to a user who blocks the bridge: %d %v", st, res)
		}
		if h := call[protocol.HistoryResult](bob, protocol.MethodHistory, protocol.HistoryRequest{With: "ci"}); len(h.Messages) != 1 {
			t.Fatalf("history after the refused notification: %d messages", len(h.Messages))
		}
	})
}

// deepBody is a body nested n maps deep.
func deepBody(n int) map[string]any {
	b := map[string]any{"text": "deep"}
	for range n {
		b = map[string]any{"n": b}
	}
	return b
}
