package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqim/mqim/store"
)

func init() {
	featureTests = append(featureTests,
		featureTest{"Recall", testRecall},
		featureTest{"RecallByGroupAdmin", testRecallByGroupAdmin},
		featureTest{"ChangeInReadFanoutGroup", testChangeInReadFanoutGroup},
		featureTest{"Edit", testEdit},
		featureTest{"DeleteForMe", testDeleteForMe},
		featureTest{"ConcurrentExt", testConcurrentExt},
	)
}

const window = 2 * time.Minute

// checkEvents checks that events go to users, one each, of kind about m.
func checkEvents(t *testing.T, events []store.InboxEvent, kind string, m store.Message, actor string, users ...string) {
	t.Helper()
	if len(events) != len(users) {
		t.Fatalf("%d %s events, want one for each of %v: %+v", len(events), kind, users, events)
	}
	for _, u := range users {
		ev := eventFor(t, events, u)
		if ev.Kind != kind || ev.Conv != m.Conv || ev.ConvSeq != m.Seq || ev.Actor != actor || ev.Msg == nil || !sameMsg(*ev.Msg, m) {
			t.Fatalf("%s event for %s: %+v, want about %s", kind, u, ev, fmtMsg(m))
		}
	}
}

// lastInbox checks that user's last inbox event (from Sync) is ev.
func lastInbox(t *testing.T, e *env, user string, ev store.InboxEvent) {
	t.Helper()
	all := e.inbox(t, user)
	got := all[len(all)-1]
	if got.Seq != ev.Seq || got.Kind != ev.Kind || got.ConvSeq != ev.ConvSeq || got.Actor != ev.Actor || got.Msg == nil || !sameMsg(*got.Msg, *ev.Msg) {
		t.Fatalf("%s's last synced event %+v, want %+v", user, got, ev)
	}
}

// testChangeInReadFanoutGroup: editing or recalling in a read-fan-out group
// writes an event to the actor's inbox only, not one per member
// [IM-11.3-3], and the change shows in history.
func testChangeInReadFanoutGroup(t *testing.T, e *env) {
	e.users(t, "alice", "bob", "carol", "dave")
	e.change(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpCreate, Users: []string{"bob", "carol", "dave"}, Threshold: 2})
	m := e.gsend(t, e.greq("bob", g1, "b1", "typo"))[0].Msg
	carolBefore := e.latest(t, "carol")
	_, events, err := e.s.Edit(e.ctx, "bob", m.ID, m.TS+1, func(string) ([]byte, error) { return []byte{0x81, 0xa4, 't', 'e', 'x', 't', 0xa2, 'o', 'k'}, nil })
	if err != nil || !slices.Equal(eventUsers(events), []string{"bob"}) {
		t.Fatalf("edit in a read-fan-out group: %d events for %v, %v", len(events), eventUsers(events), err)
	}
	_, events, err = e.s.Recall(e.ctx, "bob", m.ID, m.TS+2, window)
	if err != nil || !slices.Equal(eventUsers(events), []string{"bob"}) {
		t.Fatalf("recall in a read-fan-out group: %v, %v", eventUsers(events), err)
	}
	if got := e.latest(t, "carol"); got != carolBefore {
		t.Fatalf("carol's inbox grew from %d to %d", carolBefore, got)
	}
	h := e.history(t, "carol", g1, store.HistoryQuery{})
	if last := h.Messages[len(h.Messages)-1]; last.ID != m.ID || last.Type != store.TypeRecalled {
		t.Fatalf("history after the recall: %+v", last)
	}
}

// testRecallByGroupAdmin: in a group, the owner and admins may recall any
// message at any time; a plain member only its own, within the window
// [IM-14.1-1].
func testRecallByGroupAdmin(t *testing.T, e *env) {
	e.users(t, "alice", "bob", "carol")
	e.change(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpCreate, Users: []string{"bob", "carol"}})
	r := e.gsend(t, e.greq("bob", g1, "b1", "spam"), e.greq("carol", g1, "c1", "hello"))
	spam, hello := r[0].Msg, r[1].Msg
	late := spam.TS + window.Milliseconds() + 1
	if _, ev, err := e.s.Recall(e.ctx, "carol", spam.ID, spam.TS+1, window); !errors.Is(err, store.ErrNotAllowed) || len(ev) != 0 {
		t.Fatalf("recall of another's message by a member: %v, %d events", err, len(ev))
	}
	m, events, err := e.s.Recall(e.ctx, "alice", spam.ID, late, window)
	if err != nil || m.Type != store.TypeRecalled || len(events) == 0 {
		t.Fatalf("recall by the owner after the window: %+v, %d events, %v", m, len(events), err)
	}
	created := e.history(t, "alice", g1, store.HistoryQuery{Before: 2, Limit: 1}).Messages[0]
	if created.Type != store.TypeGroup {
		t.Fatalf("first message of the group: %+v", created)
	}
	if _, ev, err := e.s.Recall(e.ctx, "alice", created.ID, created.TS+1, window); !errors.Is(err, store.ErrNotAllowed) || len(ev) != 0 {
		t.Fatalf("recall of a group event by the owner: %v, %d events", err, len(ev))
	}
	e.change(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpRole, Users: []string{"bob"}, Role: store.RoleAdmin})
	if m, _, err := e.s.Recall(e.ctx, "bob", hello.ID, late, window); err != nil || m.Type != store.TypeRecalled {
		t.Fatalf("recall by an admin: %+v, %v", m, err)
	}
}

func testRecall(t *testing.T, e *env) {
	e.users(t, "alice", "bob", "carol")
	r1, r2 := e.req("alice", "bob", "c1", "one"), e.req("alice", "bob", "c2", "two")
	res := e.send(t, r1, r2)
	m1 := res[0].Msg

	for _, c := range []struct {
		name, user string
		id         int64
		ts         int64
		want       error
	}{
		{"by the recipient", "bob", m1.ID, m1.TS + 1, store.ErrNotAllowed},
		{"by a non-member", "carol", m1.ID, m1.TS + 1, store.ErrNotFound},
		{"of an unknown id", "alice", 999_999, m1.TS + 1, store.ErrNotFound},
		{"after the window", "alice", m1.ID, m1.TS + window.Milliseconds() + 1, store.ErrNotAllowed},
	} {
		if _, ev, err := e.s.Recall(e.ctx, c.user, c.id, c.ts, window); !errors.Is(err, c.want) || len(ev) != 0 {
			t.Errorf("recall %s: %v, %d events; want %v", c.name, err, len(ev), c.want)
		}
	}
	if h := e.history(t, "bob", m1.Conv, store.HistoryQuery{}); !sameMsg(h.Messages[0], m1) {
		t.Fatalf("refused recalls changed the message: %s", fmtMsg(h.Messages[0]))
	}
	latest := e.latest(t, "bob")

	m, events, err := e.s.Recall(e.ctx, "alice", m1.ID, m1.TS+window.Milliseconds(), window)
	if err != nil {
		t.Fatal(err)
	}
	want := m1
	want.Type, want.Body = store.TypeRecalled, []byte{0x80}
	if !sameMsg(m, want) {
		t.Fatalf("recalled message %s, want %s", fmtMsg(m), fmtMsg(want))
	}
	checkEvents(t, events, store.KindRecall, want, "alice", "alice", "bob")
	if ev := eventFor(t, events, "bob"); ev.Seq != latest+1 {
		t.Fatalf("bob's recall event has seq %d, want %d", ev.Seq, latest+1)
	}
	e.reopen()
	lastInbox(t, e, "bob", eventFor(t, events, "bob"))
	lastInbox(t, e, "alice", eventFor(t, events, "alice"))
	h := e.history(t, "bob", m1.Conv, store.HistoryQuery{})
	if len(h.Messages) != 2 || !sameMsg(h.Messages[0], want) || !sameMsg(h.Messages[1], res[1].Msg) {
		t.Fatalf("history after recall: %v", h.Messages)
	}
	// Again: nothing changes.
	if _, ev, err := e.s.Recall(e.ctx, "alice", m1.ID, m1.TS+1, window); err != nil || len(ev) != 0 {
		t.Fatalf("second recall: %v, %d events", err, len(ev))
	}
	// A retry of the recalled message's cmid is still a duplicate.
	if got := e.append(t, r1)[0]; !got.Duplicate || got.Msg.ID != m1.ID {
		t.Fatalf("retry of a recalled cmid: %+v", got)
	}
}

func testEdit(t *testing.T, e *env) {
	e.users(t, "alice", "bob")
	res := e.send(t, e.req("alice", "bob", "c1", "one"))
	m1 := res[0].Msg
	body := func(b string) store.EditBody {
		return func(typ string) ([]byte, error) {
			if typ != "text" {
				return nil, errors.New("wrong type " + typ)
			}
			return []byte(b), nil
		}
	}
	if _, ev, err := e.s.Edit(e.ctx, "bob", m1.ID, 1, body("x")); !errors.Is(err, store.ErrNotAllowed) || len(ev) != 0 {
		t.Fatalf("edit by the recipient: %v", err)
	}
	refuse := errors.New("refused body")
	if _, _, err := e.s.Edit(e.ctx, "alice", m1.ID, 1, func(string) ([]byte, error) { return nil, refuse }); !errors.Is(err, refuse) {
		t.Fatalf("edit with a refused body: %v", err)
	}
	m, events, err := e.s.Edit(e.ctx, "alice", m1.ID, m1.TS+1, body("uno"))
	if err != nil {
		t.Fatal(err)
	}
	want := m1
	want.Body = []byte("uno")
	if !sameMsg(m, want) {
		t.Fatalf("edited %s", fmtMsg(m))
	}
	checkEvents(t, events, store.KindEdit, want, "alice", "alice", "bob")
	lastInbox(t, e, "bob", eventFor(t, events, "bob"))
	if h := e.history(t, "alice", m1.Conv, store.HistoryQuery{}); !bytes.Equal(h.Messages[0].Body, []byte("uno")) {
		t.Fatalf("history after edit: %s", fmtMsg(h.Messages[0]))
	}
	if _, _, err := e.s.Recall(e.ctx, "alice", m1.ID, m1.TS+2, window); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.s.Edit(e.ctx, "alice", m1.ID, m1.TS+3, body("dos")); !errors.Is(err, store.ErrNotAllowed) {
		t.Fatalf("edit of a recalled message: %v", err)
	}
}

func testDeleteForMe(t *testing.T, e *env) {
	e.users(t, "alice", "bob", "carol")
	res := e.send(t, e.req("alice", "bob", "c1", "one"), e.req("alice", "bob", "c2", "two"), e.req("bob", "alice", "c3", "three"))
	m2 := res[1].Msg
	aliceLatest := e.latest(t, "alice")
	if _, _, err := e.s.DeleteForMe(e.ctx, "carol", m2.ID, 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete by a non-member: %v", err)
	}
	m, events, err := e.s.DeleteForMe(e.ctx, "bob", m2.ID, 5)
	if err != nil || !sameMsg(m, m2) {
		t.Fatalf("delete: %v %s", err, fmtMsg(m))
	}
	checkEvents(t, events, store.KindDelete, m2, "bob", "bob")
	lastInbox(t, e, "bob", events[0])
	if e.latest(t, "alice") != aliceLatest {
		t.Fatal("delete for me added an event for the peer")
	}
	if _, ev, err := e.s.DeleteForMe(e.ctx, "bob", m2.ID, 6); err != nil || len(ev) != 0 {
		t.Fatalf("second delete: %v, %d events", err, len(ev))
	}
	// Bob's history skips it, in both directions and across pages.
	if got := msgSeqs(e.history(t, "bob", m2.Conv, store.HistoryQuery{}).Messages); !equalSeqs(got, []int64{1, 3}) {
		t.Fatalf("bob's history %v, want [1 3]", got)
	}
	if p := e.history(t, "bob", m2.Conv, store.HistoryQuery{After: 1, Limit: 1}); !equalSeqs(msgSeqs(p.Messages), []int64{3}) || p.HasMore {
		t.Fatalf("bob's history after 1: %v has_more %v", msgSeqs(p.Messages), p.HasMore)
	}
	if got := msgSeqs(e.history(t, "alice", m2.Conv, store.HistoryQuery{}).Messages); !equalSeqs(got, []int64{1, 2, 3}) {
		t.Fatalf("alice's history %v, want [1 2 3]", got)
	}
}

func equalSeqs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// testConcurrentExt runs sends, edits, recalls, deletes and settings
// changes of the same users at once: nothing deadlocks, and every inbox
// stays continuous with one event per change.
func testConcurrentExt(t *testing.T, e *env) {
	e.users(t, "alice", "bob", "carol")
	first := e.send(t, e.req("alice", "bob", "c0", "zero"))[0].Msg
	const n = 20
	var (
		wg     sync.WaitGroup
		errs   = make(chan error, 8*n)
		events atomic.Int64 // events created for alice and bob, besides the sends'
	)
	count := func(evs []store.InboxEvent) {
		for _, ev := range evs {
			if ev.User != "carol" {
				events.Add(1)
			}
		}
	}
	run := func(f func(i int) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				if err := f(i); err != nil {
					errs <- err
				}
			}
		}()
	}
	run(func(i int) error {
		_, err := e.s.Append(e.ctx, []store.SendRequest{e.req("alice", "bob", fmt.Sprintf("a%d", i), "x")})
		return err
	})
	run(func(i int) error {
		_, err := e.s.Append(e.ctx, []store.SendRequest{e.req("bob", "alice", fmt.Sprintf("b%d", i), "y")})
		return err
	})
	run(func(i int) error {
		_, err := e.s.Append(e.ctx, []store.SendRequest{e.req("carol", "bob", fmt.Sprintf("c%d", i), "z")})
		return err
	})
	run(func(i int) error {
		_, evs, err := e.s.Edit(e.ctx, "alice", first.ID, first.TS+1, func(string) ([]byte, error) { return []byte{byte(i)}, nil })
		count(evs)
		return err
	})
	run(func(i int) error {
		v := i%2 == 0
		_, evs, err := e.s.UpdateSettings(e.ctx, "bob", first.Conv, store.SettingsChange{Pinned: &v}, int64(i+1))
		count(evs)
		return err
	})
	run(func(i int) error {
		_, evs, err := e.s.MarkRead(e.ctx, "bob", first.Conv, int64(i+1))
		count(evs)
		return err
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	_, evs, err := e.s.Recall(e.ctx, "alice", first.ID, first.TS+1, window)
	if err != nil {
		t.Fatal(err)
	}
	count(evs)
	total := int64(0)
	for _, u := range []string{"alice", "bob"} {
		all := e.inbox(t, u)
		if got, want := seqs(all), span(1, e.latest(t, u)); !equalSeqs(got, want) {
			t.Fatalf("%s's inbox seqs %v, want 1..%d", u, got, len(want))
		}
		total += int64(len(all))
	}
	// 1 + 2n messages in alice and bob's conversation (2 events each), n
	// from carol to bob (1 for bob), and the counted events.
	if want := 2*(1+2*n) + n + events.Load(); total != want {
		t.Fatalf("%d events in alice's and bob's inboxes, want %d", total, want)
	}
}
