// Package storetest is the conformance suite for store.Store: every
// implementation runs it from its own tests.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) func() store.Store {
//			url := testpg.URL(t) // fresh, empty storage for this subtest
//			return func() store.Store {
//				s, err := pgstore.Open(context.Background(), url)
//				if err != nil {
//					t.Fatal(err)
//				}
//				return s
//			}
//		})
//	}
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// Run runs the suite. Subtests run in parallel, each on its own storage.
//
// setup is called once per subtest, on the subtest's goroutine: it prepares
// empty storage for t (releasing it in t.Cleanup) and returns open. open
// opens a Store on that storage and may be called again after the suite has
// closed the previous Store, to check what survives a restart; it reports
// failures with t.Fatal. The suite closes every Store it opens.
func Run(t *testing.T, setup func(t *testing.T) (open func() store.Store)) {
	tests := []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"EnsureUser", testEnsureUser},
		{"EmptyBatch", testEmptyBatch},
		{"SendCreatesConversation", testSendCreatesConversation},
		{"InboxEvents", testInboxEvents},
		{"RetryIsDuplicate", testRetryIsDuplicate},
		{"RetryAfterReopen", testRetryAfterReopen},
		{"Stored", testStored},
		{"CmidConflict", testCmidConflict},
		{"DuplicateInBatch", testDuplicateInBatch},
		{"ConflictBeforeRefusal", testConflictBeforeRefusal},
		{"Refusals", testRefusals},
		{"UnknownRecipient", testUnknownRecipient},
		{"UnknownSenderIsCreated", testUnknownSenderIsCreated},
		{"FailedBatchStoresNothing", testFailedBatchStoresNothing},
		{"EmptyBody", testEmptyBody},
		{"ConcurrentAppend", testConcurrentAppend},
		{"ConcurrentRetry", testConcurrentRetry},
		{"ConcurrentMarkRead", testConcurrentMarkRead},
		{"MarkRead", testMarkRead},
		{"MarkReadNotMember", testMarkReadNotMember},
		{"SendMovesReadSeq", testSendMovesReadSeq},
		{"SyncPaging", testSyncPaging},
		{"History", testHistory},
		{"HistoryNotMember", testHistoryNotMember},
		{"Conversations", testConversations},
		{"ConversationsSameTime", testConversationsSameTime},
	}
	tests = append(tests, groupTests...)
	tests = append(tests, featureTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := &env{ctx: t.Context(), open: setup(t)}
			e.s = e.open()
			t.Cleanup(func() { e.s.Close() })
			tc.fn(t, e)
		})
	}
}

// featureTest is a subtest; an alias, so that featureTests appends to Run's
// list.
type featureTest = struct {
	name string
	fn   func(*testing.T, *env)
}

// featureTests are the subtests of the features in spec §12–§16,
// registered by their files (contacts.go, edits.go, settings.go,
// presence.go).
var featureTests []featureTest

// env is one subtest's store and helpers.
type env struct {
	ctx  context.Context
	s    store.Store
	open func() store.Store
	ids  atomic.Int64
}

func (e *env) reopen() {
	e.s.Close()
	e.s = e.open()
}

// tsBase is the first message timestamp; each request is 1ms later than the
// previous one.
const tsBase = 1_700_000_000_000

// req builds a request with a fresh message id and a later timestamp.
func (e *env) req(from, to, cmid, body string) store.SendRequest {
	id := e.ids.Add(1)
	return store.SendRequest{
		ID:     1000 + id,
		From:   from,
		Cmid:   cmid,
		To:     to,
		Type:   "text",
		Body:   []byte(body),
		Digest: digest(to, "text", body),
		TS:     tsBase + id,
	}
}

func digest(to, typ, body string) []byte {
	h := sha256.Sum256([]byte(to + "\x00" + typ + "\x00" + body))
	return h[:]
}

func (e *env) users(t *testing.T, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := e.s.EnsureUser(e.ctx, id, ""); err != nil {
			t.Fatalf("EnsureUser(%q): %v", id, err)
		}
	}
}

// append appends batch and fails t on a batch error.
func (e *env) append(t *testing.T, batch ...store.SendRequest) []store.SendResult {
	t.Helper()
	res, err := e.s.Append(e.ctx, batch)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if len(res) != len(batch) {
		t.Fatalf("Append returned %d results for %d requests", len(res), len(batch))
	}
	return res
}

// send appends batch and fails t unless every request is stored as new.
func (e *env) send(t *testing.T, batch ...store.SendRequest) []store.SendResult {
	t.Helper()
	res := e.append(t, batch...)
	for i, r := range res {
		if r.Err != nil || r.Duplicate {
			t.Fatalf("request %d (%s): err %v, duplicate %v; want a new message", i, batch[i].Cmid, r.Err, r.Duplicate)
		}
	}
	return res
}

// inbox returns all of user's inbox events, paging through Sync.
func (e *env) inbox(t *testing.T, user string) []store.InboxEvent {
	t.Helper()
	var all []store.InboxEvent
	after := int64(0)
	for {
		p, err := e.s.Sync(e.ctx, user, after, 7)
		if err != nil {
			t.Fatalf("Sync(%q, %d): %v", user, after, err)
		}
		all = append(all, p.Events...)
		if !p.HasMore {
			return all
		}
		if len(p.Events) == 0 {
			t.Fatalf("Sync(%q, %d): HasMore without events", user, after)
		}
		after = p.Events[len(p.Events)-1].Seq
	}
}

func (e *env) latest(t *testing.T, user string) int64 {
	t.Helper()
	p, err := e.s.Sync(e.ctx, user, 0, 0)
	if err != nil {
		t.Fatalf("Sync(%q, 0, 0): %v", user, err)
	}
	return p.Latest
}

func (e *env) history(t *testing.T, user, conv string, q store.HistoryQuery) store.HistoryPage {
	t.Helper()
	p, err := e.s.History(e.ctx, user, conv, q)
	if err != nil {
		t.Fatalf("History(%q, %q, %+v): %v", user, conv, q, err)
	}
	return p
}

func (e *env) conversations(t *testing.T, user string, limit int) []store.Conversation {
	t.Helper()
	cs, err := e.s.Conversations(e.ctx, user, limit)
	if err != nil {
		t.Fatalf("Conversations(%q): %v", user, err)
	}
	return cs
}

func (e *env) conversation(t *testing.T, user, conv string) store.Conversation {
	t.Helper()
	for _, c := range e.conversations(t, user, 0) {
		if c.Conv == conv {
			return c
		}
	}
	t.Fatalf("Conversations(%q) has no %q", user, conv)
	return store.Conversation{}
}

// checkMsg compares a stored message with the request that created it.
func checkMsg(t *testing.T, what string, got store.Message, r store.SendRequest, seq int64) {
	t.Helper()
	want := store.Message{ID: r.ID, Conv: protocol.DirectConv(r.From, r.To), Seq: seq, From: r.From,
		Cmid: r.Cmid, Type: r.Type, Body: r.Body, TS: r.TS}
	if !sameMsg(got, want) {
		t.Errorf("%s: got message %s, want %s", what, fmtMsg(got), fmtMsg(want))
	}
}

func sameMsg(a, b store.Message) bool {
	return a.ID == b.ID && a.Conv == b.Conv && a.Seq == b.Seq && a.From == b.From && a.Cmid == b.Cmid &&
		a.Type == b.Type && bytes.Equal(a.Body, b.Body) && a.TS == b.TS
}

func fmtMsg(m store.Message) string {
	return fmt.Sprintf("{id %d conv %s seq %d from %s cmid %s type %s body %q ts %d}",
		m.ID, m.Conv, m.Seq, m.From, m.Cmid, m.Type, m.Body, m.TS)
}

func seqs(events []store.InboxEvent) []int64 {
	s := make([]int64, len(events))
	for i, e := range events {
		s[i] = e.Seq
	}
	return s
}

func msgSeqs(ms []store.Message) []int64 {
	s := make([]int64, len(ms))
	for i, m := range ms {
		s[i] = m.Seq
	}
	return s
}

// span returns [from, from+1, …, to].
func span(from, to int64) []int64 {
	var s []int64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

// eventFor returns the event of events that is for user; it fails t unless
// there is exactly one.
func eventFor(t *testing.T, events []store.InboxEvent, user string) store.InboxEvent {
	t.Helper()
	var found []store.InboxEvent
	for _, e := range events {
		if e.User == user {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d events for %q in %+v; want 1", len(found), user, events)
	}
	return found[0]
}

func testEnsureUser(t *testing.T, e *env) {
	if ok, err := e.s.UserExists(e.ctx, "alice"); err != nil || ok {
		t.Fatalf("UserExists(alice) before EnsureUser = %v, %v; want false", ok, err)
	}
	for range 2 {
		if err := e.s.EnsureUser(e.ctx, "alice", "phone"); err != nil {
			t.Fatalf("EnsureUser: %v", err)
		}
	}
	if err := e.s.EnsureUser(e.ctx, "alice", ""); err != nil {
		t.Fatalf("EnsureUser without device: %v", err)
	}
	if ok, err := e.s.UserExists(e.ctx, "alice"); err != nil || !ok {
		t.Fatalf("UserExists(alice) = %v, %v; want true", ok, err)
	}
	if ok, err := e.s.UserExists(e.ctx, "bob"); err != nil || ok {
		t.Fatalf("UserExists(bob) = %v, %v; want false", ok, err)
	}
	if got := e.latest(t, "alice"); got != 0 {
		t.Errorf("new user's latest inbox seq = %d; want 0", got)
	}
}

func testEmptyBatch(t *testing.T, e *env) {
	res, err := e.s.Append(e.ctx, nil)
	if err != nil || len(res) != 0 {
		t.Fatalf("Append(nil) = %v, %v; want no results", res, err)
	}
}

func testSendCreatesConversation(t *testing.T, e *env) {
	e.users(t, "alice", "bob")
	conv := protocol.DirectConv("alice", "bob")
	var reqs []store.SendRequest
	for i := range 3 {
		r := e.req("alice", "bob", fmt.Sprint("c", i), fmt.Sprint("hello ", i))
		if i == 1 {
			r = e.req("bob", "alice", "b1", "hi")
		}
		reqs = append(reqs, r)
		res := e.send(t, r)
		checkMsg(t, fmt.Sprint("message ", i), res[0].Msg, r, int64(i+1))
	}
	h := e.history(t, "alice", conv, store.HistoryQuery{})
	if got := msgSeqs(h.Messages); !slices.Equal(got, []int64{1, 2, 3}) || h.HasMore {
		t.Fatalf("history seqs %v, has more %v; want [1 2 3], false", got, h.HasMore)
	}
	for i, m := range h.Messages {
		checkMsg(t, fmt.Sprint("history ", i), m, reqs[i], int64(i+1))
	}
	for _, u := range []string{"alice", "bob"} {
		cs := e.conversations(t, u, 0)
		if len(cs) != 1 || cs[0].Conv != conv || cs[0].Kind != store.ConvDirect || cs[0].LastSeq != 3 {
			t.Fatalf("Conversations(%s) = %+v; want one direct conversation %s at seq 3", u, cs, conv)
		}
	}
}

func testInboxEvents(t *testing.T, e *env) {
	e.users(t, "alice", "bob", "carol")
	var (
		reqs    []store.SendRequest
		results []store.SendResult
	)
	for _, p := range [][2]string{{"alice", "bob"}, {"alice", "bob"}, {"bob", "alice"}, {"carol", "alice"}} {
		r := e.req(p[0], p[1], fmt.Sprint("m", len(reqs)), "x")
		reqs = append(reqs, r)
		results = append(results, e.send(t, r)[0])
	}
	// Inbox seqs each user should have got, request by request.
	want := map[string][]int64{"alice": {1, 2, 3, 4}, "bob": {1, 2, 3}, "carol": {1}}
	got := map[string][]int64{}
	for i, res := range results {
		r := reqs[i]
		if len(res.Events) != 2 {
			t.Fatalf("request %d: %d events; want 2 (recipient and sender)", i, len(res.Events))
		}
		for _, u := range []string{r.To, r.From} {
			ev := eventFor(t, res.Events, u)
			got[u] = append(got[u], ev.Seq)
			if ev.Kind != store.KindMessage || ev.Conv != res.Msg.Conv || ev.ConvSeq != res.Msg.Seq {
				t.Errorf("request %d: event %+v; want a message event at %s/%d", i, ev, res.Msg.Conv, res.Msg.Seq)
			}
			if ev.Msg == nil || !sameMsg(*ev.Msg, res.Msg) {
				t.Errorf("request %d: event for %s carries %v; want %s", i, u, ev.Msg, fmtMsg(res.Msg))
			}
		}
	}
	for u, w := range want {
		if !slices.Equal(got[u], w) {
			t.Errorf("%s's event seqs from Append = %v; want %v", u, got[u], w)
		}
		events := e.inbox(t, u)
		if s := seqs(events); !slices.Equal(s, w) {
			t.Errorf("%s's inbox seqs from Sync = %v; want %v", u, s, w)
		}
		for _, ev := range events {
			if ev.User != u || ev.Kind != store.KindMessage || ev.Msg == nil {
				t.Fatalf("%s's inbox event %+v: want a message event for %s with its message", u, ev, u)
			}
			if ev.Msg.Conv != ev.Conv || ev.Msg.Seq != ev.ConvSeq {
				t.Errorf("%s's inbox event %d points at %s/%d but carries %s", u, ev.Seq, ev.Conv, ev.ConvSeq, fmtMsg(*ev.Msg))
			}
		}
		if l := e.latest(t, u); l != int64(len(w)) {
			t.Errorf("%s's latest = %d; want %d", u, l, len(w))
		}
	}
	// The events Sync returns are the ones Append returned.
	for _, ev := range e.inbox(t, "bob") {
		for i, res := range results {
			if res.Msg.Seq == ev.ConvSeq && res.Msg.Conv == ev.Conv {
				checkMsg(t, fmt.Sprintf("bob's inbox event %d", ev.Seq), *ev.Msg, reqs[i], ev.ConvSeq)
			}
		}
	}
}

func testRetryIsDuplicate(t *testing.T, e *env) {
	e.users(t, "alice", "bob")
	r := e.req("alice", "bob", "c1", "hello")
	first := e.send(t, r)[0]
	retry := r
	retry.ID, retry.TS = r.ID+100, r.TS+100 // a retry carries a new id and time
	res := e.append(t, retry)[0]
	if res.Err != nil || !res.Duplicate || len(res.Events) != 0 {
		t.Fatalf("retry: err %v, duplicate %v, %d events; want a duplicate without events", res.Err, res.Duplicate, len(res.Events))
	}
	if !sameMsg(res.Msg, first.Msg) {
		t.Errorf("retry returned %s; want the stored %s", fmtMsg(res.Msg), fmtMsg(first.Msg))
	}
	for _, u := range []string{"alice", "bob"} {
		if l := e.latest(t, u); l != 1 {
			t.Errorf("%s's latest after retry = %d; want 1", u, l)
		}
	}
	h := e.history(t, "bob", first.Msg.Conv, store.HistoryQuery{})
	if len(h.Messages) != 1 {
		t.Errorf("history after retry has %d messages; want 1", len(h.Messages))
	}
}

func testStored(t *testing.T, e *env) {
	e.users(t, "alice", "bob")
	stored := func(from, cmid string) bool {
		t.Helper()
		ok, err := e.s.Stored(e.ctx, from, cmid)
		if err != nil {
			t.Fatalf("Stored(%s, %s): %v", from, cmid, err)
		}
		return ok
	}
	if stored("alice", "c1") {
		t.Fatal("Stored before the send = true")
	}
	e.send(t, e.req("alice", "bob", "c1", "hello"))
	if !stored("alice", "c1") {
		t.Error("Stored(alice, c1) after the send = false")
	}
	if stored("bob", "c1") || stored("alice", "c2") {
		t.Error("Stored is true for another sender or cmid")
	}
}

func testRetryAfterReopen(t *testing.T, e *env) {
	e.users(t, "alice", "bob")
	r := e.req("alice", "bob", "c1", "hello")
	first := e.send(t, r)[0]
	e.reopen()
	res := e.append(t, r)[0]
	if res.Err != nil || !res.Duplicate || len(res.Events) != 0 || !sameMsg(res.Msg, first.Msg) {
		t.Fatalf("retry after reopen: %+v; want a duplicate of %s without events", res, fmtMsg(first.Msg))
	}
	// Counters survive too: the next message continues both timelines.
	next := e.send(t, e.req("bob", "alice", "b1", "back"))[0]
	if next.Msg.Seq != 2 {
		t.Errorf("next message after reopen has seq %d; want 2", next.Msg.Seq)
	}
	if got := seqs(next.Events); !slices.Equal(got, []int64{2, 2}) {
		t.Errorf("next message's inbox seqs = %v; want [2 2]", got)
	}
}

func testCmidConflict(t *testing.T, e *env) {
	e.users(t, "alice", "bob", "carol")
	r := e.req("alice", "bob", "c1", "hello")
	first := e.send(t, r)[0]

	other := e.req("alice", "bob", "c1", "something else")
	toCarol := e.req("alice", "carol", "c1", "hello")
	for _, c := range []store.SendRequest{other, toCarol} {
		res := e.append(t, c)[0]
		if !errors.Is(res.Err, store.ErrCmidConflict) {
			t.Fatalf("reusing cmid for %q to %s: err %v; want ErrCmidConflict", c.Body, c.To, res.Err)
		}
		if len(res.Events) != 0 {
			t.Errorf("conflict returned events %+v", res.Events)
		}
	}
	h := e.history(t, "alice", first.Msg.Conv, store.HistoryQuery{})
	if len(h.Messages) != 1 || !sameMsg(h.Messages[0], first.Msg) {
		t.Errorf("history after conflicts = %v; want only the first message", h.Messages)
	}
	if l := e.latest(t, "alice"); l != 1 {
		t.Errorf("alice's latest = %d; want 1", l)
	}
	if l := e.latest(t, "carol"); l != 0 {
		t.Errorf("carol's latest = %d; want 0", l)
	}
	if cs := e.conversations(t, "carol", 0); len(cs) != 0 {
		t.Errorf("carol has conversations %+v after a refused message", cs)
	}
}

func testDuplicateInBatch(t *testing.T, e *env) {
	e.users(t, "alice", "bob")
	a := e.req("alice", "bob", "a", "one")
	aRetry := a
	aRetry.ID++
	aOther := e.req("alice", "bob", "a", "other")
	b := e.req("alice", "bob", "b", "two")
	res := e.append(t, a, aRetry, aOther, b)
	if res[0].Err != nil || res[0].Duplicate || len(res[0].Events) != 2 {
		t.Fatalf("first: %+v; want a new message with 2 events", res[0])
	}
	checkMsg(t, "first", res[0].Msg, a, 1)
	if res[1].Err != nil || !res[1].Duplicate || len(res[1].Events) != 0 || !sameMsg(res[1].Msg, res[0].Msg) {
		t.Errorf("retry in batch: %+v; want a duplicate of %s", res[1], fmtMsg(res[0].Msg))
	}
	if !errors.Is(res[2].Err, store.ErrCmidConflict) {
		t.Errorf("other message with the same cmid in batch: err %v; want ErrCmidConflict", res[2].Err)
	}
	if res[3].Err != nil || res[3].Duplicate {
		t.Fatalf("last: %+v; want a new message", res[3])
	}
	checkMsg(t, "last", res[3].Msg, b, 2)
	for _, u := range []string{"alice", "bob"} {
		if s := seqs(e.inbox(t, u)); !slices.Equal(s, []int64{1, 2}) {
			t.Errorf("%s's inbox seqs = %v; want [1 2]", u, s)
		}
	}
}

// testConflictBeforeRefusal: a request reusing the (From, Cmid) of an
// earlier new request of its batch for another to, type or body is a cmid
// conflict, even where it would be refused on its own (unknown recipient,
// blocked), as it is once the first is stored [IM-4.5-3].
func testConflictBeforeRefusal(t *testing.T, e *env) {
	e.users(t, "alice", "bob")
	first := e.req("alice", "bob", "c1", "one")
	toNobody := e.req("alice", "nobody", "c1", "one")
	blocked := e.req("alice", "bob", "c1", "two")
	blocked.Blocked = true
	res := e.append(t, first, toNobody, blocked)
	if res[0].Err != nil || res[0].Duplicate {
		t.Fatalf("first: %+v; want a new message", res[0])
	}
	for i, r := range res[1:] {
		if !errors.Is(r.Err, store.ErrCmidConflict) {
			t.Errorf("request %d of the batch: %v; want ErrCmidConflict", i+1, r.Err)
		}
	}
	for _, r := range e.append(t, toNobody, blocked) {
		if !errors.Is(r.Err, store.ErrCmidConflict) {
			t.Errorf("after the first is stored: %v; want ErrCmidConflict", r.Err)
		}
	}
}

func testUnknownRecipient(t *testing.T, e *env) {
	e.users(t, "alice", "bob")
	r1 := e.req("alice", "bob", "1", "one")
	r2 := e.req("alice", "nobody", "2", "two")
	r3 := e.req("alice", "bob", "3", "three")
	res := e.append(t, r1, r2, r3)
	if !errors.Is(res[1].Err, store.ErrUnknownUser) || len(res[1].Events) != 0 {
		t.Errorf("to unknown user: %+v; want ErrUnknownUser", res[1])
	}
	for i, want := range map[int]int64{0: 1, 2: 2} {
		if res[i].Err != nil {
			t.Fatalf("request %d: %v; want stored", i, res[i].Err)
		}
		checkMsg(t, fmt.Sprint("request ", i), res[i].Msg, []store.SendRequest{r1, r2, r3}[i], want)
	}
	if ok, err := e.s.UserExists(e.ctx, "nobody"); err != nil || ok {
		t.Errorf("UserExists(nobody) = %v, %v; want false", ok, err)
	}
	if s := seqs(e.inbox(t, "alice")); !slices.Equal(s, []int64{1, 2}) {
		t.Errorf("alice's inbox seqs = %v; want [1 2]", s)
	}
	if cs := e.conversations(t, "alice", 0); len(cs) != 1 {
		t.Errorf("alice has %d conversations; want 1", len(cs))
	}
	// Retrying the refused request after the user exists stores it.
	e.users(t, "nobody")
	if res := e.append(t, r2)[0]; res.Err != nil || res.Duplicate {
		t.Errorf("after EnsureUser(nobody): %+v; want a new message", res)
	}
}

func testUnknownSenderIsCreated(t *testing.T, e *env) {
	e.users(t, "bob")
	res := e.send(t, e.req("newbie", "bob", "1", "hi"))[0]
	if res.Msg.Seq != 1 || len(res.Events) != 2 {
		t.Fatalf("send from a user not yet created: %+v", res)
	}
	if ok, err := e.s.UserExists(e.ctx, "newbie"); err != nil || !ok {
		t.Errorf("UserExists(newbie) after sending = %v, %v; want true", ok, err)
	}
	if s := seqs(e.inbox(t, "newbie")); !slices.Equal(s, []int64{1}) {
		t.Errorf("sender's inbox seqs = %v; want [1]", s)
	}
}

func testConcurrentAppend(t *testing.T, e *env) {
	e.users(t, "alice", "bob", "carol")
	pairs := [][2]string{{"alice", "bob"}, {"bob", "alice"}, {"carol", "alice"}, {"bob", "carol"}}
	const workers, rounds = 8, 15
	var (
		mu      sync.Mutex
		results []store.SendResult
		wg      sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			lastSeq := map[string]int64{}
			for k := range rounds {
				var batch []store.SendRequest
				for j := range k%3 + 1 {
					p := pairs[(w+k+j)%len(pairs)]
					batch = append(batch, e.req(p[0], p[1], fmt.Sprintf("w%d-%d-%d", w, k, j), "x"))
				}
				res, err := e.s.Append(e.ctx, batch)
				if err != nil {
					t.Errorf("worker %d: Append: %v", w, err)
					return
				}
				for j, r := range res {
					if r.Err != nil || r.Duplicate || len(r.Events) != 2 {
						t.Errorf("worker %d: request %s: %+v; want a new message", w, batch[j].Cmid, r)
						return
					}
					// A worker's messages are in order within each conversation.
					if r.Msg.Seq <= lastSeq[r.Msg.Conv] {
						t.Errorf("worker %d: seq %d in %s after %d", w, r.Msg.Seq, r.Msg.Conv, lastSeq[r.Msg.Conv])
					}
					lastSeq[r.Msg.Conv] = r.Msg.Seq
				}
				mu.Lock()
				results = append(results, res...)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	convSeqs := map[string][]int64{}
	userSeqs := map[string][]int64{}
	for _, r := range results {
		convSeqs[r.Msg.Conv] = append(convSeqs[r.Msg.Conv], r.Msg.Seq)
		for _, ev := range r.Events {
			userSeqs[ev.User] = append(userSeqs[ev.User], ev.Seq)
		}
	}
	if len(convSeqs) != len(pairs)-1 { // alice-bob in both directions
		t.Errorf("%d conversations; want %d", len(convSeqs), len(pairs)-1)
	}
	for c, s := range convSeqs {
		slices.Sort(s)
		if !slices.Equal(s, span(1, int64(len(s)))) {
			t.Errorf("%s: seqs %v; want 1..%d without gap or duplicate", c, s, len(s))
		}
		member, _, _ := protocol.DirectPeers(c)
		if h := e.history(t, member, c, store.HistoryQuery{Limit: 200}); len(h.Messages) != len(s) {
			t.Errorf("%s: history has %d messages; want %d", c, len(h.Messages), len(s))
		}
	}
	for u, s := range userSeqs {
		slices.Sort(s)
		if !slices.Equal(s, span(1, int64(len(s)))) {
			t.Errorf("%s: inbox seqs from Append %v; want 1..%d", u, s, len(s))
		}
		events := e.inbox(t, u)
		if got := seqs(events); !slices.Equal(got, s) {
			t.Errorf("%s: inbox seqs from Sync %v; want %v", u, got, s)
		}
		// Within a conversation, the inbox lists messages in seq order.
		last := map[string]int64{}
		for _, ev := range events {
			if ev.ConvSeq <= last[ev.Conv] {
				t.Errorf("%s: inbox event %d has %s/%d after %d", u, ev.Seq, ev.Conv, ev.ConvSeq, last[ev.Conv])
			}
			last[ev.Conv] = ev.ConvSeq
		}
	}
}

func testConcurrentRetry(t *testing.T, e *env) {
	e.users(t, "alice", "bob")
	r := e.req("alice", "bob", "same", "hello")
	const n = 8
	res := make([]store.SendResult, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			out, err := e.s.Append(e.ctx, []store.SendRequest{r})
			if err != nil {
				t.Errorf("Append: %v", err)
				return
			}
			res[i] = out[0]
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	fresh := 0
	for i, x := range res {
		if x.Err != nil {
			t.Fatalf("copy %d: %v", i, x.Err)
		}
		if !x.Duplicate {
			fresh++
		}
		checkMsg(t, fmt.Sprint("copy ", i), x.Msg, r, 1)
	}
	if fresh != 1 {
		t.Errorf("%d of %d concurrent copies stored as new; want 1", fresh, n)
	}
	if s := seqs(e.inbox(t, "bob")); !slices.Equal(s, []int64{1}) {
		t.Errorf("bob's inbox seqs = %v; want [1]", s)
	}
}

func testMarkRead(t *testing.T, e *env) {
	e.users(t, "alice", "bob")
	conv := protocol.DirectConv("alice", "bob")
	for i := range 3 {
		e.send(t, e.req("alice", "bob", fmt.Sprint(i), "x"))
	}
	if c := e.conversation(t, "bob", conv); c.ReadSeq != 0 || c.Unread != 3 || c.PeerReadSeq != 3 {
		t.Errorf("bob before reading: %+v; want read 0, unread 3, peer read 3", c)
	}

	check := func(what string, st store.ReadState, events []store.InboxEvent, read, unread int64, inboxSeq int64) {
		t.Helper()
		if st.Conv != conv || st.ReadSeq != read || st.Unread != unread {
			t.Errorf("%s: state %+v; want read %d, unread %d", what, st, read, unread)
		}
		if inboxSeq == 0 {
			if len(events) != 0 {
				t.Errorf("%s: events %+v; want none", what, events)
			}
			return
		}
		if len(events) != 2 {
			t.Fatalf("%s: %d events; want 2 (reader and peer)", what, len(events))
		}
		for _, u := range []string{"alice", "bob"} {
			ev := eventFor(t, events, u)
			if ev.Kind != store.KindRead || ev.Conv != conv || ev.ConvSeq != read || ev.Actor != "bob" ||
				ev.Seq != inboxSeq || ev.Msg != nil {
				t.Errorf("%s: event for %s %+v; want read by bob up to %d at inbox seq %d", what, u, ev, read, inboxSeq)
			}
		}
	}
	st, events, err := e.s.MarkRead(e.ctx, "bob", conv, 2)
	if err != nil {
		t.Fatalf("MarkRead(2): %v", err)
	}
	check("forward to 2", st, events, 2, 1, 4)
	if c := e.conversation(t, "bob", conv); c.ReadSeq != 2 || c.Unread != 1 {
		t.Errorf("bob after reading 2: %+v; want read 2, unread 1", c)
	}
	if c := e.conversation(t, "alice", conv); c.PeerReadSeq != 2 || c.ReadSeq != 3 || c.Unread != 0 {
		t.Errorf("alice after bob read 2: %+v; want peer read 2, read 3, unread 0", c)
	}

	st, events, err = e.s.MarkRead(e.ctx, "bob", conv, 1)
	if err != nil {
		t.Fatalf("MarkRead(1): %v", err)
	}
	check("backward to 1", st, events, 2, 1, 0)

	st, events, err = e.s.MarkRead(e.ctx, "bob", conv, 100)
	if err != nil {
		t.Fatalf("MarkRead(100): %v", err)
	}
	check("past the end", st, events, 3, 0, 5)

	st, events, err = e.s.MarkRead(e.ctx, "bob", conv, 3)
	if err != nil {
		t.Fatalf("MarkRead(3) again: %v", err)
	}
	check("same again", st, events, 3, 0, 0)

	// Both inboxes hold the read events after the messages, with no gap.
	for _, u := range []string{"alice", "bob"} {
		inbox := e.inbox(t, u)
		if s := seqs(inbox); !slices.Equal(s, span(1, 5)) {
			t.Fatalf("%s's inbox seqs = %v; want 1..5", u, s)
		}
		for i, ev := range inbox[3:] {
			if ev.Kind != store.KindRead || ev.Actor != "bob" || ev.ConvSeq != int64(2+i) {
				t.Errorf("%s's inbox event %d = %+v; want bob's read up to %d", u, ev.Seq, ev, 2+i)
			}
		}
	}
	// The sender has read up to its own message already.
	st, events, err = e.s.MarkRead(e.ctx, "alice", conv, 3)
	if err != nil || st.ReadSeq != 3 || st.Unread != 0 || len(events) != 0 {
		t.Errorf("alice MarkRead(3) = %+v, %v, %v; want read 3 without events", st, events, err)
	}
}

func testMarkReadNotMember(t *testing.T, e *env) {
	e.users(t, "alice", "bob", "carol")
	conv := protocol.DirectConv("alice", "bob")
	e.send(t, e.req("alice", "bob", "1", "x"))
	if _, _, err := e.s.MarkRead(e.ctx, "carol", conv, 1); !errors.Is(err, store.ErrNotMember) {
		t.Errorf("MarkRead by a non-member: %v; want ErrNotMember", err)
	}
	if _, _, err := e.s.MarkRead(e.ctx, "alice", protocol.DirectConv("alice", "carol"), 1); !errors.Is(err, store.ErrNotMember) {
		t.Errorf("MarkRead of a conversation that does not exist: %v; want ErrNotMember", err)
	}
	if l := e.latest(t, "carol"); l != 0 {
		t.Errorf("carol's latest = %d; want 0", l)
	}
}

func testSendMovesReadSeq(t *testing.T, e *env) {
	e.users(t, "alice", "bob")
	conv := protocol.DirectConv("alice", "bob")
	e.send(t, e.req("alice", "bob", "a1", "x"), e.req("alice", "bob", "a2", "x"))
	if c := e.conversation(t, "alice", conv); c.ReadSeq != 2 || c.Unread != 0 {
		t.Errorf("alice after sending 2: %+v; want read 2, unread 0", c)
	}
	e.send(t, e.req("bob", "alice", "b1", "x"))
	if c := e.conversation(t, "bob", conv); c.ReadSeq != 3 || c.Unread != 0 || c.PeerReadSeq != 2 {
		t.Errorf("bob after replying: %+v; want read 3, unread 0, peer read 2", c)
	}
	if c := e.conversation(t, "alice", conv); c.ReadSeq != 2 || c.Unread != 1 || c.PeerReadSeq != 3 {
		t.Errorf("alice after bob's reply: %+v; want read 2, unread 1, peer read 3", c)
	}
	// Sending emits no read event: each inbox has only the three messages.
	for _, u := range []string{"alice", "bob"} {
		if l := e.latest(t, u); l != 3 {
			t.Errorf("%s's latest = %d; want 3", u, l)
		}
	}
}

func testSyncPaging(t *testing.T, e *env) {
	e.users(t, "alice", "bob")
	var reqs []store.SendRequest
	for i := range 5 {
		r := e.req("alice", "bob", fmt.Sprint(i), fmt.Sprint("body ", i))
		reqs = append(reqs, r)
		e.send(t, r)
	}
	for _, tc := range []struct {
		after   int64
		limit   int
		want    []int64
		hasMore bool
	}{
		{0, 2, []int64{1, 2}, true},
		{2, 2, []int64{3, 4}, true},
		{4, 2, []int64{5}, false},
		{3, 2, []int64{4, 5}, false},
		{0, 5, []int64{1, 2, 3, 4, 5}, false},
		{0, 100, []int64{1, 2, 3, 4, 5}, false},
		{5, 2, nil, false},
		{9, 2, nil, false},
		{0, 0, nil, true},
		{5, 0, nil, false},
		{2, -1, nil, true},
	} {
		p, err := e.s.Sync(e.ctx, "bob", tc.after, tc.limit)
		if err != nil {
			t.Fatalf("Sync(after %d, limit %d): %v", tc.after, tc.limit, err)
		}
		if got := seqs(p.Events); !slices.Equal(got, tc.want) || p.HasMore != tc.hasMore || p.Latest != 5 {
			t.Errorf("Sync(after %d, limit %d) = seqs %v, has more %v, latest %d; want %v, %v, 5",
				tc.after, tc.limit, got, p.HasMore, p.Latest, tc.want, tc.hasMore)
		}
		for _, ev := range p.Events {
			if ev.User != "bob" || ev.Msg == nil {
				t.Fatalf("event %+v: want bob's message event with its message", ev)
			}
			checkMsg(t, fmt.Sprint("event ", ev.Seq), *ev.Msg, reqs[ev.Seq-1], ev.Seq)
		}
	}
	p, err := e.s.Sync(e.ctx, "nobody", 0, 10)
	if err != nil || len(p.Events) != 0 || p.HasMore || p.Latest != 0 {
		t.Errorf("Sync of an unknown user = %+v, %v; want empty, latest 0", p, err)
	}
}

func testHistory(t *testing.T, e *env) {
	e.users(t, "alice", "bob")
	conv := protocol.DirectConv("alice", "bob")
	var reqs []store.SendRequest
	for i := range 7 {
		r := e.req("alice", "bob", fmt.Sprint(i), fmt.Sprint("body ", i))
		if i%2 == 1 {
			r = e.req("bob", "alice", fmt.Sprint(i), fmt.Sprint("reply ", i))
		}
		reqs = append(reqs, r)
	}
	e.send(t, reqs[:4]...)
	e.send(t, reqs[4:]...)
	for _, tc := range []struct {
		q       store.HistoryQuery
		want    []int64
		hasMore bool
	}{
		{store.HistoryQuery{Limit: 3}, []int64{5, 6, 7}, true},
		{store.HistoryQuery{Before: 5, Limit: 3}, []int64{2, 3, 4}, true},
		{store.HistoryQuery{Before: 2, Limit: 3}, []int64{1}, false},
		{store.HistoryQuery{Before: 4, Limit: 3}, []int64{1, 2, 3}, false},
		{store.HistoryQuery{Before: 1, Limit: 3}, nil, false},
		{store.HistoryQuery{After: 4, Limit: 2}, []int64{5, 6}, true},
		{store.HistoryQuery{After: 5, Limit: 2}, []int64{6, 7}, false},
		{store.HistoryQuery{After: 7, Limit: 2}, nil, false},
		// Both bounds: forward from After, up to Before.
		{store.HistoryQuery{After: 2, Before: 6, Limit: 2}, []int64{3, 4}, true},
		{store.HistoryQuery{After: 2, Before: 5, Limit: 2}, []int64{3, 4}, false},
		{store.HistoryQuery{After: 2, Before: 6}, []int64{3, 4, 5}, false},
		{store.HistoryQuery{After: 3, Before: 4}, nil, false},
		{store.HistoryQuery{Limit: 7}, span(1, 7), false},
		{store.HistoryQuery{}, span(1, 7), false},
		{store.HistoryQuery{Limit: 1000}, span(1, 7), false},
	} {
		for _, u := range []string{"alice", "bob"} {
			p := e.history(t, u, conv, tc.q)
			if got := msgSeqs(p.Messages); !slices.Equal(got, tc.want) || p.HasMore != tc.hasMore {
				t.Errorf("History(%s, %+v) = %v, has more %v; want %v, %v", u, tc.q, got, p.HasMore, tc.want, tc.hasMore)
			}
			for _, m := range p.Messages {
				checkMsg(t, fmt.Sprint("history ", m.Seq), m, reqs[m.Seq-1], m.Seq)
			}
		}
	}
}

func testHistoryNotMember(t *testing.T, e *env) {
	e.users(t, "alice", "bob", "carol")
	conv := protocol.DirectConv("alice", "bob")
	e.send(t, e.req("alice", "bob", "1", "secret"))
	for _, q := range []store.HistoryQuery{{}, {After: 1}, {Before: 5}} {
		if p, err := e.s.History(e.ctx, "carol", conv, q); !errors.Is(err, store.ErrNotMember) || len(p.Messages) != 0 {
			t.Errorf("History by a non-member (%+v) = %d messages, %v; want ErrNotMember", q, len(p.Messages), err)
		}
	}
	if _, err := e.s.History(e.ctx, "alice", protocol.DirectConv("alice", "carol"), store.HistoryQuery{}); !errors.Is(err, store.ErrNotMember) {
		t.Errorf("History of a conversation that does not exist: %v; want ErrNotMember", err)
	}
}

func testConversations(t *testing.T, e *env) {
	e.users(t, "alice", "bob", "carol", "dave")
	ab, ac := protocol.DirectConv("alice", "bob"), protocol.DirectConv("alice", "carol")
	e.send(t, e.req("alice", "bob", "1", "to bob"))
	r := e.req("alice", "carol", "2", "to carol")
	e.send(t, r)
	cs := e.conversations(t, "alice", 0)
	if len(cs) != 2 || cs[0].Conv != ac || cs[1].Conv != ab {
		t.Fatalf("alice's conversations = %+v; want %s then %s", cs, ac, ab)
	}
	c := cs[0]
	if c.Kind != store.ConvDirect || c.Peer != "carol" || c.LastSeq != 1 || c.ReadSeq != 1 || c.PeerReadSeq != 0 ||
		c.Unread != 0 || c.Last == nil {
		t.Fatalf("alice's view of %s = %+v", ac, c)
	}
	checkMsg(t, "last message", *c.Last, r, 1)
	if c := e.conversation(t, "carol", ac); c.Peer != "alice" || c.ReadSeq != 0 || c.PeerReadSeq != 1 || c.Unread != 1 {
		t.Errorf("carol's view = %+v; want peer alice, read 0, peer read 1, unread 1", c)
	}

	// A new message moves its conversation first.
	reply := e.req("bob", "alice", "3", "from bob")
	e.send(t, reply)
	cs = e.conversations(t, "alice", 0)
	if len(cs) != 2 || cs[0].Conv != ab || cs[1].Conv != ac {
		t.Fatalf("alice's conversations after bob's reply = %+v; want %s then %s", cs, ab, ac)
	}
	c = cs[0]
	if c.Peer != "bob" || c.LastSeq != 2 || c.ReadSeq != 1 || c.PeerReadSeq != 2 || c.Unread != 1 || c.Last == nil {
		t.Fatalf("alice's view of %s = %+v", ab, c)
	}
	checkMsg(t, "last message", *c.Last, reply, 2)

	if cs := e.conversations(t, "alice", 1); len(cs) != 1 || cs[0].Conv != ab {
		t.Errorf("alice's conversations with limit 1 = %+v; want only %s", cs, ab)
	}
	if cs := e.conversations(t, "bob", 0); len(cs) != 1 || cs[0].Conv != ab || cs[0].Peer != "alice" {
		t.Errorf("bob's conversations = %+v; want only %s with alice", cs, ab)
	}
	if cs := e.conversations(t, "dave", 0); len(cs) != 0 {
		t.Errorf("dave's conversations = %+v; want none", cs)
	}
	if cs := e.conversations(t, "nobody", 0); len(cs) != 0 {
		t.Errorf("an unknown user's conversations = %+v; want none", cs)
	}
}

// testFailedBatchStoresNothing makes a batch fail (a message id already
// used) and checks that none of it was stored and no seq was taken
// [IM-3.3-3].
func testFailedBatchStoresNothing(t *testing.T, e *env) {
	e.users(t, "alice", "bob")
	conv := protocol.DirectConv("alice", "bob")
	first := e.send(t, e.req("alice", "bob", "1", "x"))[0]
	ok := e.req("bob", "alice", "2", "y")
	clash := e.req("alice", "bob", "3", "z")
	clash.ID = first.Msg.ID
	if res, err := e.s.Append(e.ctx, []store.SendRequest{ok, clash}); err == nil {
		t.Fatalf("Append of a batch reusing message id %d = %+v; want an error", clash.ID, res)
	}
	if h := e.history(t, "alice", conv, store.HistoryQuery{}); len(h.Messages) != 1 {
		t.Errorf("history after the failed batch has %d messages; want 1", len(h.Messages))
	}
	for _, u := range []string{"alice", "bob"} {
		if l := e.latest(t, u); l != 1 {
			t.Errorf("%s's latest after the failed batch = %d; want 1", u, l)
		}
	}
	if c := e.conversation(t, "bob", conv); c.ReadSeq != 0 || c.LastSeq != 1 {
		t.Errorf("bob's view after the failed batch = %+v; want read 0, last 1", c)
	}
	// The requests of the failed batch are new when sent again.
	res := e.send(t, ok)[0]
	checkMsg(t, "resent", res.Msg, ok, 2)
	if got := seqs(res.Events); !slices.Equal(got, []int64{2, 2}) {
		t.Errorf("resent message's inbox seqs = %v; want [2 2]", got)
	}
}

// testEmptyBody stores a message without body and digest.
func testEmptyBody(t *testing.T, e *env) {
	e.users(t, "alice", "bob")
	r := e.req("alice", "bob", "1", "")
	r.Body, r.Digest = nil, nil
	res := e.send(t, r)[0]
	checkMsg(t, "stored", res.Msg, r, 1)
	h := e.history(t, "bob", res.Msg.Conv, store.HistoryQuery{})
	if len(h.Messages) != 1 {
		t.Fatalf("history has %d messages; want 1", len(h.Messages))
	}
	checkMsg(t, "history", h.Messages[0], r, 1)
	if got := e.append(t, r)[0]; got.Err != nil || !got.Duplicate {
		t.Errorf("retry of a message without body: %+v; want a duplicate", got)
	}
}

// testConcurrentMarkRead marks read while messages are appended: every inbox
// stays continuous and each reader's read events only move forward.
func testConcurrentMarkRead(t *testing.T, e *env) {
	e.users(t, "alice", "bob")
	conv := protocol.DirectConv("alice", "bob")
	e.send(t, e.req("alice", "bob", "first", "x"))
	const rounds = 30
	var wg sync.WaitGroup
	for w, p := range [][2]string{{"alice", "bob"}, {"bob", "alice"}} {
		wg.Go(func() {
			for k := range rounds {
				if _, err := e.s.Append(e.ctx, []store.SendRequest{e.req(p[0], p[1], fmt.Sprintf("w%d-%d", w, k), "x")}); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
			}
		})
	}
	for _, u := range []string{"alice", "bob"} {
		wg.Go(func() {
			for k := range rounds {
				if _, _, err := e.s.MarkRead(e.ctx, u, conv, int64(k+2)); err != nil {
					t.Errorf("MarkRead(%s, %d): %v", u, k+2, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, u := range []string{"alice", "bob"} {
		events := e.inbox(t, u)
		if s := seqs(events); !slices.Equal(s, span(1, int64(len(events)))) || e.latest(t, u) != int64(len(events)) {
			t.Fatalf("%s's inbox seqs = %v; want 1..%d", u, s, len(events))
		}
		lastMsg, lastRead := int64(0), map[string]int64{}
		for _, ev := range events {
			switch ev.Kind {
			case store.KindMessage:
				if ev.ConvSeq != lastMsg+1 {
					t.Errorf("%s's inbox event %d: message %d after %d", u, ev.Seq, ev.ConvSeq, lastMsg)
				}
				lastMsg = ev.ConvSeq
			case store.KindRead:
				if ev.ConvSeq <= lastRead[ev.Actor] || ev.ConvSeq > lastMsg {
					t.Errorf("%s's inbox event %d: %s read up to %d after %d, with %d messages", u, ev.Seq,
						ev.Actor, ev.ConvSeq, lastRead[ev.Actor], lastMsg)
				}
				lastRead[ev.Actor] = ev.ConvSeq
			}
		}
		if lastMsg != 2*rounds+1 {
			t.Errorf("%s's inbox has %d messages; want %d", u, lastMsg, 2*rounds+1)
		}
	}
}

// testConversationsSameTime checks the order of conversations whose last
// messages have the same time: by conversation id, in byte order [IM-3.2-1].
func testConversationsSameTime(t *testing.T, e *env) {
	e.users(t, "carol", "bob", "Bob", "dave")
	var batch []store.SendRequest
	for _, to := range []string{"dave", "bob", "Bob"} {
		r := e.req("carol", to, to, "x")
		r.TS = tsBase
		batch = append(batch, r)
	}
	e.send(t, batch...)
	var got []string
	for _, c := range e.conversations(t, "carol", 0) {
		got = append(got, c.Conv)
	}
	// Byte order puts "Bob" before "bob"; most collations do not.
	want := []string{"d:Bob:carol", "d:bob:carol", "d:carol:dave"}
	if !slices.Equal(got, want) {
		t.Errorf("carol's conversations = %v; want %v", got, want)
	}
}

// testRefusals: every refusal is a *store.Error with a detail for the
// requester, and maps to the protocol code of its rule [IM-6.1]
// (store.ProtocolError), in every store alike.
func testRefusals(t *testing.T, e *env) {
	e.users(t, "alice", "bob", "carol", "dave")
	e.change(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpCreate, Users: []string{"bob", "carol"}})
	e.change(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpMute, Users: []string{"carol"}, Muted: true})
	m := e.send(t, e.req("alice", "bob", "c1", "one"))[0].Msg
	blocked := e.req("alice", "bob", "c2", "two")
	blocked.Blocked = true
	sends := e.append(t, e.req("alice", "nobody", "c3", "x"), blocked, e.req("alice", "bob", "c1", "other"))
	gsends := e.gsend(t, e.greq("dave", g1, "d1", "x"), e.greq("carol", g1, "c1", "x"), e.greq("bob", "g:none", "b1", "x"),
		e.greq("bob", g1, "b2", "x", "dave"))
	change := func(c store.GroupChange) error {
		id := e.ids.Add(1)
		c.ID, c.TS = 1000+id, tsBase+id
		_, err := e.s.ChangeGroup(e.ctx, c)
		return err
	}
	_, _, readErr := e.s.MarkRead(e.ctx, "carol", m.Conv, 1)
	_, historyErr := e.s.History(e.ctx, "dave", g1, store.HistoryQuery{})
	_, infoErr := e.s.Group(e.ctx, "dave", g1, 10)
	_, noGroupErr := e.s.Group(e.ctx, "alice", "g:none", 10)
	_, _, notFoundErr := split(e.s.Recall(e.ctx, "carol", m.ID, e.at(m.TS), window))
	_, _, recallErr := split(e.s.Recall(e.ctx, "bob", m.ID, e.at(m.TS), window))
	_, _, editErr := split(e.s.Edit(e.ctx, "bob", m.ID, e.at(m.TS), func(string) ([]byte, error) { return nil, nil }))
	_, contactErr := e.s.UpdateContact(e.ctx, "alice", "nobody", store.ContactAdd, 1)
	for _, c := range []struct {
		what string
		err  error
		code string
	}{
		{"send to an unknown user", sends[0].Err, protocol.CodeUnknownUser},
		{"blocked send", sends[1].Err, protocol.CodeBlocked},
		{"cmid reuse", sends[2].Err, protocol.CodeCmidConflict},
		{"group send by a non-member", gsends[0].Err, protocol.CodeNotMember},
		{"muted group send", gsends[1].Err, protocol.CodeMuted},
		{"send to an unknown group", gsends[2].Err, protocol.CodeUnknownGroup},
		{"mention of a non-member", gsends[3].Err, protocol.CodeBadRequest},
		{"add by a member", change(store.GroupChange{Group: g1, Actor: "bob", Op: store.OpAdd, Users: []string{"dave"}}), protocol.CodeForbidden},
		{"change by a non-member", change(store.GroupChange{Group: g1, Actor: "dave", Op: store.OpLeave}), protocol.CodeNotMember},
		{"change of an unknown group", change(store.GroupChange{Group: "g:none", Actor: "alice", Op: store.OpLeave}), protocol.CodeUnknownGroup},
		{"add of an unknown user", change(store.GroupChange{Group: g1, Actor: "alice", Op: store.OpAdd, Users: []string{"nobody"}}), protocol.CodeUnknownUser},
		{"owner leaving", change(store.GroupChange{Group: g1, Actor: "alice", Op: store.OpLeave}), protocol.CodeBadRequest},
		{"mark read by a non-member", readErr, protocol.CodeNotMember},
		{"history of a non-member", historyErr, protocol.CodeNotMember},
		{"group info for a non-member", infoErr, protocol.CodeNotMember},
		{"group info of an unknown group", noGroupErr, protocol.CodeUnknownGroup},
		{"recall by a non-member", notFoundErr, protocol.CodeNotFound},
		{"recall by the recipient", recallErr, protocol.CodeNotAllowed},
		{"edit by the recipient", editErr, protocol.CodeNotAllowed},
		{"contact of an unknown user", contactErr, protocol.CodeUnknownUser},
	} {
		var se *store.Error
		if !errors.As(c.err, &se) || se.Detail == "" {
			t.Errorf("%s: %v; want a *store.Error with a detail", c.what, c.err)
			continue
		}
		if pe := store.ProtocolError(c.err); pe == nil || pe.Code != c.code || pe.Message != se.Detail {
			t.Errorf("%s: protocol error %v; want %s: %s", c.what, pe, c.code, se.Detail)
		}
	}
}
