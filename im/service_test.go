package im

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/protocol/authtoken"
	"github.com/mqim/mqim/store"
	"github.com/mqim/mqim/store/sqlitestore"
)

// The core's unit tests: a real store (SQLite in a temporary folder), fake
// sessions and recording consumers; no MQTT, no network.

// recorder is a consumer, the group dispatcher and the signaler at once.
type recorder struct {
	mu        sync.Mutex
	events    []store.InboxEvent
	broadcast []*store.Message
	members   []string // "conv +added -removed"
	signals   []string // "user:state"
}

func (r *recorder) Deliver(evs []store.InboxEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, evs...)
}

func (r *recorder) Broadcast(m *store.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.broadcast = append(r.broadcast, m)
}

func (r *recorder) MembersChanged(conv string, added, removed []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.members = append(r.members, fmt.Sprintf("%s +%v -%v", conv, added, removed))
}

func (r *recorder) Signal(user string, ev *protocol.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.signals = append(r.signals, user+":"+ev.State)
}

// eventsOf returns the delivered events in user's inbox.
func (r *recorder) eventsOf(user string) []store.InboxEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []store.InboxEvent
	for _, ev := range r.events {
		if ev.User == user {
			out = append(out, ev)
		}
	}
	return out
}

type core struct {
	*Service
	rec   *recorder
	store store.Store
	reg   *prometheus.Registry
}

func newCore(t *testing.T, start bool, users ...string) *core {
	t.Helper()
	return newCoreWith(t, start, nil, users...)
}

// newCoreWith is newCore with more configuration, set by with.
func newCoreWith(t *testing.T, start bool, with func(*Config), users ...string) *core {
	t.Helper()
	ctx := context.Background()
	st, err := sqlitestore.Open(ctx, t.TempDir()+"/im.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, u := range users {
		if err := st.EnsureUser(ctx, u, u+"-phone"); err != nil {
			t.Fatal(err)
		}
	}
	rec := &recorder{}
	reg := prometheus.NewRegistry()
	cfg := Config{Store: st, Consumers: []Consumer{rec}, Groups: rec, Signal: rec, Registerer: reg, GroupReadFanout: 3}
	if with != nil {
		with(&cfg)
	}
	s := New(cfg)
	if start {
		_ = s.Start(context.Background())
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return &core{Service: s, rec: rec, store: st, reg: reg}
}

func session(user string) *Session {
	return &Session{User: user, Client: user + "-phone", Format: protocol.JSON}
}

func encode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := protocol.Encode(protocol.JSON, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func text(cmid, to, s string) protocol.Send {
	return protocol.Send{Cmid: cmid, To: to, Type: protocol.TypeText, Body: map[string]any{"text": s}}
}

// send sends msg as sess and waits for the outcome.
func (c *core) send(t *testing.T, sess *Session, msg any) SendOutcome {
	t.Helper()
	ch := make(chan SendOutcome, 1)
	c.Send(sess, protocol.JSON, encode(t, msg), func(o SendOutcome) { ch <- o })
	select {
	case o := <-ch:
		return o
	case <-time.After(30 * time.Second):
		t.Fatal("no answer to a send")
		return SendOutcome{}
	}
}

// call calls method as sess and waits for the response.
func (c *core) call(t *testing.T, sess *Session, method string, req any) *protocol.Response {
	t.Helper()
	ch := make(chan *protocol.Response, 1)
	c.Call(sess, method, protocol.JSON, encode(t, req), func(r *protocol.Response) { ch <- r })
	select {
	case r := <-ch:
		return r
	case <-time.After(30 * time.Second):
		t.Fatalf("no response to %s", method)
		return nil
	}
}

func mustOK(t *testing.T, r *protocol.Response) any {
	t.Helper()
	if !r.OK {
		t.Fatalf("response: %v", r.Error)
	}
	return r.Result
}

func code(r *protocol.Response) string {
	if r.Error == nil {
		return ""
	}
	return r.Error.Code
}

// A send is committed, answered, then handed to the consumers — never
// handed on before it is answered [IM-5.2-1] — with the recipient's and
// the sender's inbox events.
func TestSendCommitsAnswersThenDelivers(t *testing.T) {
	c := newCore(t, true, "alice", "bob")
	ch := make(chan SendOutcome, 1)
	var deliveredAtAnswer int
	c.Send(session("alice"), protocol.JSON, encode(t, text("c1", "bob", "hi")), func(o SendOutcome) {
		deliveredAtAnswer = len(c.rec.eventsOf("bob"))
		ch <- o
	})
	o := <-ch
	if o.Err != nil || o.Msg == nil || o.Msg.Conv != "d:alice:bob" || o.Msg.Seq != 1 || o.Msg.ID == 0 || o.Cmid != "c1" || o.Duplicate {
		t.Fatalf("outcome %+v", o)
	}
	if deliveredAtAnswer != 0 {
		t.Fatal("the event was handed on before the send was answered")
	}
	waitFor(t, "bob's event", func() bool { return len(c.rec.eventsOf("bob")) == 1 })
	if evs := c.rec.eventsOf("alice"); len(evs) != 1 || evs[0].Seq != o.InboxSeq || o.InboxSeq == 0 {
		t.Fatalf("alice's events %+v, inbox seq %d", evs, o.InboxSeq)
	}
	res := mustOK(t, c.call(t, session("bob"), protocol.MethodSync, map[string]any{"after": 0})).(*protocol.SyncResult)
	if len(res.Events) != 1 || res.Events[0].Msg == nil || res.Events[0].Msg.ID != o.Msg.ID {
		t.Fatalf("bob's sync: %+v", res)
	}
}

// Every refusal of a send has its code, names the cmid when it can be
// read [IM-4.4-6], stores nothing and delivers nothing.
func TestSendRefusals(t *testing.T) {
	c := newCore(t, true, "alice", "bob")
	big := strings.Repeat("x", 17<<10)
	deep := map[string]any{"text": "deep"}
	for v, i := deep, 0; i < 40; i++ {
		n := map[string]any{}
		v["n"] = n
		v = n
	}
	for _, tc := range []struct {
		name string
		msg  any
		code string
		cmid string
	}{
		{"no cmid", text("", "bob", "hi"), protocol.CodeBadRequest, ""},
		{"control character in cmid", text("c\x01", "bob", "hi"), protocol.CodeBadRequest, "c\x01"},
		{"to oneself", text("c2", "alice", "hi"), protocol.CodeBadRequest, "c2"},
		{"no recipient", protocol.Send{Cmid: "c3", Type: protocol.TypeText, Body: map[string]any{"text": "x"}}, protocol.CodeBadRequest, "c3"},
		{"to and group", protocol.Send{Cmid: "c4", To: "bob", Group: "g:1", Type: protocol.TypeText, Body: map[string]any{"text": "x"}}, protocol.CodeBadRequest, "c4"},
		{"no type", protocol.Send{Cmid: "c5", To: "bob", Body: map[string]any{"text": "x"}}, protocol.CodeBadRequest, "c5"},
		{"no body", protocol.Send{Cmid: "c6", To: "bob", Type: protocol.TypeText}, protocol.CodeBadRequest, "c6"},
		{"too large", text("c7", "bob", big), protocol.CodeTooLarge, "c7"},
		{"too deep", protocol.Send{Cmid: "c8", To: "bob", Type: protocol.TypeText, Body: deep}, protocol.CodeBadRequest, "c8"},
		{"system from a user", protocol.Send{Cmid: "c9", To: "bob", Type: protocol.TypeSystem, Body: map[string]any{"text": "x"}}, protocol.CodeUnknownType, "c9"},
		{"mentions in a direct message", protocol.Send{Cmid: "c10", To: "bob", Type: protocol.TypeText, Body: map[string]any{"text": "x"}, Mentions: []string{"bob"}}, protocol.CodeBadRequest, "c10"},
		{"unknown recipient", text("c11", "carol", "hi"), protocol.CodeUnknownUser, "c11"},
		{"wrongly typed field", map[string]any{"cmid": "c12", "to": 7, "type": "text", "body": map[string]any{"text": "x"}}, protocol.CodeBadPayload, "c12"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := c.send(t, session("alice"), tc.msg)
			if o.Err == nil || o.Err.Code != tc.code {
				t.Fatalf("got %+v, want %s", o.Err, tc.code)
			}
			if want := tc.cmid; o.Cmid != want || o.Msg != nil {
				t.Fatalf("outcome %+v, want cmid %q and no message", o, tc.cmid)
			}
		})
	}
	if evs := c.rec.eventsOf("bob"); len(evs) != 0 {
		t.Fatalf("refused sends delivered %+v", evs)
	}
	res := mustOK(t, c.call(t, session("alice"), protocol.MethodHistory, map[string]any{"with": "bob"})).(*protocol.HistoryResult)
	if len(res.Messages) != 0 {
		t.Fatalf("refused sends stored: %+v", res.Messages)
	}
}

// A retry of a stored (sender, cmid) gets the stored message back, also
// after a block; the same cmid with another message is a conflict [IM-4.5].
func TestRetriesAndBlocks(t *testing.T) {
	c := newCore(t, true, "alice", "bob")
	alice := session("alice")
	first := c.send(t, alice, text("r1", "bob", "hello"))
	if first.Err != nil {
		t.Fatal(first.Err)
	}
	again := c.send(t, alice, text("r1", "bob", "hello"))
	if again.Err != nil || !again.Duplicate || again.Msg.ID != first.Msg.ID {
		t.Fatalf("retry: %+v", again)
	}
	if o := c.send(t, alice, text("r1", "bob", "another text")); o.Err == nil || o.Err.Code != protocol.CodeCmidConflict {
		t.Fatalf("reused cmid: %+v", o)
	}
	mustOK(t, c.call(t, session("bob"), protocol.MethodContactBlock, map[string]any{"user": "alice"}))
	if o := c.send(t, alice, text("r2", "bob", "after the block")); o.Err == nil || o.Err.Code != protocol.CodeBlocked {
		t.Fatalf("send to a blocker: %+v", o)
	}
	if o := c.send(t, alice, text("r1", "bob", "hello")); o.Err != nil || o.Msg.ID != first.Msg.ID {
		t.Fatalf("retry after the block: %+v", o)
	}
	if n := len(c.rec.eventsOf("bob")); n != 1 {
		t.Fatalf("bob got %d events, want 1", n)
	}
}

// Sends that queue up while a commit runs are committed as one batch
// (group commit) and answered in queue order, a refusal in their middle
// included.
func TestGroupCommitBatchesAndKeepsOrder(t *testing.T) {
	c := newCore(t, false, "alice", "bob") // not started: the sends queue up
	const n = 40
	var (
		mu    sync.Mutex
		order []string
		wg    sync.WaitGroup
	)
	for i := range n {
		msg := text(fmt.Sprintf("b%02d", i), "bob", "batched")
		if i == n/2 {
			msg.To = "nobody" // refused by the store, inside the batch
		}
		wg.Add(1)
		c.Send(session("alice"), protocol.JSON, encode(t, msg), func(o SendOutcome) {
			mu.Lock()
			order = append(order, o.Cmid)
			mu.Unlock()
			wg.Done()
		})
	}
	_ = c.Start(context.Background())
	wg.Wait()
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprintf("b%02d", i)
	}
	if !slices.Equal(order, want) {
		t.Fatalf("answered in order %v", order)
	}
	count, sum := histogram(t, c.reg, "mqim_commit_batch_size")
	if count != 1 || sum != n {
		t.Fatalf("%v commits of %v sends in all, want 1 of %d", count, sum, n)
	}
	// Handed on after the answers: wait for them.
	waitFor(t, fmt.Sprintf("bob's %d events", n-1), func() bool { return len(c.rec.eventsOf("bob")) == n-1 })
}

// After Shutdown began, commands are answered "unavailable"; what was
// queued before is committed.
func TestShutdownRefusesNewWork(t *testing.T) {
	c := newCore(t, false, "alice", "bob")
	ch := make(chan SendOutcome, 1)
	c.Send(session("alice"), protocol.JSON, encode(t, text("s1", "bob", "queued before")), func(o SendOutcome) { ch <- o })
	_ = c.Start(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if o := <-ch; o.Err != nil {
		t.Fatalf("queued before Shutdown: %+v", o)
	}
	if o := c.send(t, session("alice"), text("s2", "bob", "after")); o.Err == nil || o.Err.Code != protocol.CodeUnavailable {
		t.Fatalf("send after Shutdown: %+v", o)
	}
	if r := c.call(t, session("alice"), protocol.MethodRead, map[string]any{"conv": "d:alice:bob", "seq": 1}); code(r) != protocol.CodeUnavailable {
		t.Fatalf("read after Shutdown: %+v", r)
	}
}

// The RPC envelope: unknown methods, long ids and undecodable requests get
// their codes, and every response carries the request's id [IM-7.1].
func TestCallEnvelope(t *testing.T) {
	c := newCore(t, true, "alice")
	alice := session("alice")
	if r := c.call(t, alice, "no.such", map[string]any{"id": "q1"}); code(r) != protocol.CodeUnknownMethod || r.ID != "q1" {
		t.Fatalf("unknown method: %+v", r)
	}
	if r := c.call(t, alice, protocol.MethodSync, map[string]any{"id": strings.Repeat("i", 65)}); code(r) != protocol.CodeBadRequest {
		t.Fatalf("long id: %+v", r)
	}
	ch := make(chan *protocol.Response, 1)
	c.Call(alice, protocol.MethodSync, protocol.JSON, []byte(`{"after":`), func(r *protocol.Response) { ch <- r })
	if r := <-ch; code(r) != protocol.CodeBadPayload {
		t.Fatalf("undecodable request: %+v", r)
	}
	if r := c.call(t, alice, protocol.MethodSync, map[string]any{"id": "q2", "limit": -1}); code(r) != protocol.CodeBadRequest || r.ID != "q2" {
		t.Fatalf("bad limit: %+v", r)
	}
}

// Groups: create, send, read fan-out above the threshold (3 here), info,
// membership changes handed to the group dispatcher before their events.
func TestGroups(t *testing.T) {
	c := newCore(t, true, "alice", "bob", "carol", "dave")
	alice := session("alice")
	res := mustOK(t, c.call(t, alice, protocol.MethodGroupCreate, map[string]any{"name": "team", "members": []string{"bob"}})).(*protocol.GroupChangeResult)
	g := res.Group
	if !protocol.IsGroupConv(g) || res.Fanout != store.FanoutWrite {
		t.Fatalf("group.create: %+v", res)
	}
	waitFor(t, "the membership change", func() bool {
		c.rec.mu.Lock()
		defer c.rec.mu.Unlock()
		return len(c.rec.members) == 1 && strings.HasPrefix(c.rec.members[0], g+" +[bob]")
	})
	o := c.send(t, alice, protocol.Send{Cmid: "g1", Group: g, Type: protocol.TypeText, Body: map[string]any{"text": "hi team"}})
	if o.Err != nil || o.Msg.Conv != g {
		t.Fatalf("group send: %+v", o)
	}
	waitFor(t, "bob's group message", func() bool {
		for _, ev := range c.rec.eventsOf("bob") {
			if ev.Kind == store.KindMessage && ev.Msg != nil && ev.Msg.ID == o.Msg.ID {
				return true
			}
		}
		return false
	})
	if o := c.send(t, session("carol"), protocol.Send{Cmid: "g2", Group: g, Type: protocol.TypeText, Body: map[string]any{"text": "not a member"}}); o.Err == nil || o.Err.Code != protocol.CodeNotMember {
		t.Fatalf("non-member send: %+v", o)
	}
	res = mustOK(t, c.call(t, alice, protocol.MethodGroupAdd, map[string]any{"group": g, "users": []string{"carol", "dave"}})).(*protocol.GroupChangeResult)
	if res.Fanout != store.FanoutRead {
		t.Fatalf("4 members, threshold 3: fanout %q", res.Fanout)
	}
	o = c.send(t, alice, protocol.Send{Cmid: "g3", Group: g, Type: protocol.TypeText, Body: map[string]any{"text": "read fan-out"}})
	if o.Err != nil {
		t.Fatal(o.Err)
	}
	waitFor(t, "the broadcast of the read-fan-out message", func() bool {
		c.rec.mu.Lock()
		defer c.rec.mu.Unlock()
		return slices.ContainsFunc(c.rec.broadcast, func(m *store.Message) bool { return m.ID == o.Msg.ID })
	})
	info := mustOK(t, c.call(t, session("dave"), protocol.MethodGroupInfo, map[string]any{"group": g})).(*protocol.GroupInfo)
	if info.MemberCount != 4 || info.Name != "team" {
		t.Fatalf("group.info: %+v", info)
	}
	if r := c.call(t, session("bob"), protocol.MethodGroupRemove, map[string]any{"group": g, "user": "carol"}); code(r) != protocol.CodeForbidden {
		t.Fatalf("a member removes another: %+v", r)
	}
	if r := c.call(t, alice, protocol.MethodGroupAdd, map[string]any{"group": g}); code(r) != protocol.CodeBadRequest {
		t.Fatalf("group.add without users: %+v", r)
	}
}

// read, settings, recall, edit, contacts and presence go through the
// committer or the readers with their events handed on.
func TestOrderedMethods(t *testing.T) {
	c := newCore(t, true, "alice", "bob", "carol")
	alice, bob := session("alice"), session("bob")
	o := c.send(t, alice, text("m1", "bob", "to be edited"))
	if o.Err != nil {
		t.Fatal(o.Err)
	}
	read := mustOK(t, c.call(t, bob, protocol.MethodRead, map[string]any{"conv": o.Msg.Conv, "seq": o.Msg.Seq})).(*protocol.ReadResult)
	if read.ReadSeq != 1 || read.Unread != 0 {
		t.Fatalf("read: %+v", read)
	}
	waitFor(t, "alice's read receipt", func() bool {
		return slices.ContainsFunc(c.rec.eventsOf("alice"), func(ev store.InboxEvent) bool { return ev.Kind == store.KindRead })
	})
	if r := c.call(t, bob, protocol.MethodRead, map[string]any{"conv": "d:alice:carol", "seq": 1}); code(r) != protocol.CodeNotMember {
		t.Fatalf("read of another's conversation: %+v", r)
	}
	id := fmt.Sprint(o.Msg.ID)
	if r := c.call(t, bob, protocol.MethodEdit, map[string]any{"msg_id": id, "body": map[string]any{"text": "bob's"}}); r.OK {
		t.Fatalf("bob edited alice's message: %+v", r)
	}
	edited := mustOK(t, c.call(t, alice, protocol.MethodEdit, map[string]any{"msg_id": id, "body": map[string]any{"text": "edited"}})).(*protocol.MessageResult)
	if edited.Msg.Body["text"] != "edited" {
		t.Fatalf("edit: %+v", edited.Msg)
	}
	if r := c.call(t, alice, protocol.MethodRecall, map[string]any{"msg_id": "12x"}); code(r) != protocol.CodeBadRequest {
		t.Fatalf("malformed msg_id: %+v", r)
	}
	mustOK(t, c.call(t, alice, protocol.MethodRecall, map[string]any{"msg_id": id}))
	waitFor(t, "bob's edit and recall events", func() bool {
		var kinds []string
		for _, ev := range c.rec.eventsOf("bob") {
			kinds = append(kinds, ev.Kind)
		}
		return slices.Contains(kinds, store.KindEdit) && slices.Contains(kinds, store.KindRecall)
	})
	st := mustOK(t, c.call(t, bob, protocol.MethodSettings, map[string]any{"conv": o.Msg.Conv, "muted": true})).(*protocol.SettingsResult)
	if st.Settings == nil || !st.Settings.Muted {
		t.Fatalf("settings: %+v", st)
	}
	pr := mustOK(t, c.call(t, carolSession(), protocol.MethodPresence, map[string]any{"users": []string{"alice", "carol"}})).(*protocol.PresenceResult)
	if pr.Presence[0].Error == nil || pr.Presence[0].Error.Code != protocol.CodeNotAllowed || pr.Presence[1].Error != nil {
		t.Fatalf("presence of a stranger and of oneself: %+v", pr.Presence)
	}
	mustOK(t, c.call(t, alice, protocol.MethodContactAdd, map[string]any{"user": "carol"}))
	list := mustOK(t, c.call(t, alice, protocol.MethodContactList, map[string]any{})).(*protocol.ContactsResult)
	if len(list.Contacts) != 1 || list.Contacts[0].User != "carol" {
		t.Fatalf("contact.list: %+v", list)
	}
}

func carolSession() *Session { return session("carol") }

// Notifications are for bridges [IM-4.6]; typing signals are rate limited
// per session and not relayed to a blocker [IM-15.1].
func TestNotifyAndTyping(t *testing.T) {
	c := newCore(t, true, "alice", "bob", "carol", "news")
	note := map[string]any{"cmid": "n1", "to": "bob", "body": map[string]any{"text": "system news"}}
	if o := c.send(t, session("alice"), note); o.Err == nil {
		t.Fatal("a user's send without type was accepted")
	}
	ch := make(chan SendOutcome, 2)
	c.Notify(session("alice"), protocol.JSON, encode(t, note), func(o SendOutcome) { ch <- o })
	if o := <-ch; o.Err == nil || o.Err.Code != protocol.CodeNotAuthorized {
		t.Fatalf("notification from a user: %+v", o)
	}
	bridge := &Session{User: "news", Role: authtoken.RoleBridge, Format: protocol.JSON}
	c.Notify(bridge, protocol.JSON, encode(t, note), func(o SendOutcome) { ch <- o })
	if o := <-ch; o.Err != nil || o.Msg.Type != protocol.TypeSystem {
		t.Fatalf("bridge notification: %+v", o)
	}

	alice := session("alice")
	for range typingBurst + 3 {
		if err := c.Typing(alice, protocol.JSON, encode(t, map[string]any{"to": "bob"})); err != nil {
			t.Fatal(err)
		}
	}
	c.rec.mu.Lock()
	n := len(c.rec.signals)
	c.rec.mu.Unlock()
	if n != typingBurst {
		t.Fatalf("%d signals relayed of a burst of %d, want %d", n, typingBurst+3, typingBurst)
	}
	if err := c.Typing(alice, protocol.JSON, encode(t, map[string]any{"to": "alice"})); err == nil || err.Code != protocol.CodeBadRequest {
		t.Fatalf("typing to oneself: %v", err)
	}
	mustOK(t, c.call(t, session("bob"), protocol.MethodContactBlock, map[string]any{"user": "carol"}))
	mustOK(t, c.call(t, session("alice"), protocol.MethodContactBlock, map[string]any{"user": "bob"}))
	bob := session("bob")
	if err := c.Typing(bob, protocol.JSON, encode(t, map[string]any{"to": "alice"})); err != nil {
		t.Fatal(err)
	}
	c.rec.mu.Lock()
	defer c.rec.mu.Unlock()
	if slices.Contains(c.rec.signals, "alice:typing") {
		t.Fatalf("a blocker got the blocked user's typing: %v", c.rec.signals)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for delay := time.Millisecond; !cond(); delay = min(2*delay, 50*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(delay) // a poll interval
	}
}

func histogram(t *testing.T, reg *prometheus.Registry, name string) (count uint64, sum float64) {
	t.Helper()
	h := metric(t, reg, name).GetHistogram()
	return h.GetSampleCount(), h.GetSampleSum()
}

// metric returns the first series of the metric name.
func metric(t *testing.T, reg *prometheus.Registry, name string) *dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0]
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}
