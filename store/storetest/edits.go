package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

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
// [IM-11.3-3], and stores a timeline event with the group's next conv seq,
// which members find in history after their cursor [IM-14.4-3]; the
// message itself shows the change in history, and a recall takes the text
// out of the message's earlier edit events.
func testChangeInReadFanoutGroup(t *testing.T, e *env) {
	e.users(t, "alice", "bob", "carol", "dave")
	e.change(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpCreate, Users: []string{"bob", "carol", "dave"}, Threshold: 2})
	m := e.gsend(t, e.greq("bob", g1, "b1", "typo"))[0].Msg
	cursor := m.Seq // carol's group cursor: she has every event up to m
	carolBefore := e.latest(t, "carol")
	okBody := []byte{0x81, 0xa4, 't', 'e', 'x', 't', 0xa2, 'o', 'k'} // {"text":"ok"}
	edit, err := e.s.Edit(e.ctx, "bob", m.ID, e.at(m.TS+1), func(string) ([]byte, error) { return okBody, nil })
	if err != nil || !slices.Equal(eventUsers(edit.Events), []string{"bob"}) || edit.Events[0].ConvSeq != m.Seq {
		t.Fatalf("edit in a read-fan-out group: %+v, %v", edit.Events, err)
	}
	checkChangeEvent(t, edit.Timeline, store.TypeEdit, "bob", m, cursor+1, okBody)
	recall, err := e.s.Recall(e.ctx, "bob", m.ID, e.at(m.TS+2), window)
	if err != nil || !slices.Equal(eventUsers(recall.Events), []string{"bob"}) {
		t.Fatalf("recall in a read-fan-out group: %v, %v", eventUsers(recall.Events), err)
	}
	checkChangeEvent(t, recall.Timeline, store.TypeRecall, "bob", m, cursor+2, nil)
	if got := e.latest(t, "carol"); got != carolBefore {
		t.Fatalf("carol's inbox grew from %d to %d", carolBefore, got)
	}
	e.reopen()
	// History after carol's cursor: the two events, the edit's text gone
	// with the recall; the message itself is the recalled marker.
	h := e.history(t, "carol", g1, store.HistoryQuery{After: cursor})
	if len(h.Messages) != 2 || h.HasMore {
		t.Fatalf("history after %d: %v", cursor, msgSeqs(h.Messages))
	}
	checkChangeEvent(t, &h.Messages[0], store.TypeEdit, "bob", m, cursor+1, nil)
	if !sameMsg(h.Messages[1], *recall.Timeline) {
		t.Fatalf("recall event in history %s, want %s", fmtMsg(h.Messages[1]), fmtMsg(*recall.Timeline))
	}
	if got := e.history(t, "carol", g1, store.HistoryQuery{Before: cursor + 1, Limit: 1}).Messages[0]; got.ID != m.ID ||
		got.Type != store.TypeRecalled {
		t.Fatalf("the recalled message in history: %s", fmtMsg(got))
	}
	// They count like any event of the group; the actor has read them.
	if c := e.conversation(t, "bob", g1); c.LastSeq != cursor+2 || c.Unread != 0 {
		t.Fatalf("bob's conversation after the changes: %+v", c)
	}
	if w, err := recall.Timeline.Wire(); err != nil || w.Cmid != "" || w.Type != store.TypeRecall {
		t.Fatalf("recall event as devices see it: %+v, %v", w, err)
	}
	// The server's records cannot be recalled or edited, even by the owner.
	for _, ev := range h.Messages {
		if _, _, err := split(e.s.Recall(e.ctx, "alice", ev.ID, e.at(ev.TS+1), window)); !errors.Is(err, store.ErrNotAllowed) {
			t.Fatalf("recall of a %s event: %v", ev.Type, err)
		}
		if _, _, err := split(e.s.Edit(e.ctx, "bob", ev.ID, e.at(ev.TS+1), func(string) ([]byte, error) { return okBody, nil })); !errors.Is(err, store.ErrNotAllowed) {
			t.Fatalf("edit of a %s event: %v", ev.Type, err)
		}
	}
	// A change that changes nothing stores no event.
	if r, err := e.s.Recall(e.ctx, "bob", m.ID, e.at(m.TS+3), window); err != nil || r.Timeline != nil || len(r.Events) != 0 {
		t.Fatalf("second recall: %+v, %v", r, err)
	}
	// Delete for me, a write-fan-out group and a direct conversation: no
	// timeline event, no new conv seq.
	n := e.gsend(t, e.greq("carol", g1, "c1", "mine"))[0].Msg
	if r, err := e.s.DeleteForMe(e.ctx, "carol", n.ID, n.TS+1); err != nil || r.Timeline != nil || e.lastSeq(t, "carol", g1) != n.Seq {
		t.Fatalf("delete for me in a read-fan-out group: %+v, %v", r, err)
	}
	const g2 = "g:2"
	e.change(t, store.GroupChange{Group: g2, Actor: "alice", Op: store.OpCreate, Users: []string{"bob"}})
	w := e.gsend(t, e.greq("bob", g2, "b2", "small"))[0].Msg
	d := e.send(t, e.req("bob", "carol", "b3", "direct"))[0].Msg
	for _, x := range []store.Message{w, d} {
		if r, err := e.s.Edit(e.ctx, "bob", x.ID, e.at(x.TS+1), func(string) ([]byte, error) { return okBody, nil }); err != nil || r.Timeline != nil {
			t.Fatalf("edit in %s: %+v, %v", x.Conv, r, err)
		}
		if r, err := e.s.Recall(e.ctx, "bob", x.ID, e.at(x.TS+2), window); err != nil || r.Timeline != nil {
			t.Fatalf("recall in %s: %+v, %v", x.Conv, r, err)
		}
		if last := e.history(t, "bob", x.Conv, store.HistoryQuery{}).Messages; last[len(last)-1].Seq != x.Seq {
			t.Fatalf("%s grew to %v", x.Conv, msgSeqs(last))
		}
	}
}

// checkChangeEvent checks a timeline event of a change of m by actor at
// seq: its type, and its body naming m and, for an edit, holding body (nil:
// none, as after a recall).
func checkChangeEvent(t *testing.T, ev *store.Message, typ, actor string, m store.Message, seq int64, body []byte) {
	t.Helper()
	if ev == nil {
		t.Fatalf("no %s event", typ)
	}
	if ev.Type != typ || ev.Conv != m.Conv || ev.Seq != seq || ev.From != actor || ev.ID == 0 || ev.ID == m.ID {
		t.Fatalf("%s event %s, want one of %s at seq %d", typ, fmtMsg(*ev), fmtMsg(m), seq)
	}
	var got struct {
		MsgID   string             `msgpack:"msg_id"`
		ConvSeq int64              `msgpack:"conv_seq"`
		Body    msgpack.RawMessage `msgpack:"body"`
	}
	if err := msgpack.Unmarshal(ev.Body, &got); err != nil {
		t.Fatalf("%s event body %x: %v", typ, ev.Body, err)
	}
	if got.MsgID != strconv.FormatInt(m.ID, 10) || got.ConvSeq != m.Seq || !bytes.Equal(got.Body, body) {
		t.Fatalf("%s event body {msg_id %s conv_seq %d body %x}, want {%d %d %x}", typ, got.MsgID, got.ConvSeq, got.Body, m.ID, m.Seq, body)
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
	if _, ev, err := split(e.s.Recall(e.ctx, "carol", spam.ID, e.at(spam.TS+1), window)); !errors.Is(err, store.ErrNotAllowed) || len(ev) != 0 {
		t.Fatalf("recall of another's message by a member: %v, %d events", err, len(ev))
	}
	m, events, err := split(e.s.Recall(e.ctx, "alice", spam.ID, e.at(late), window))
	if err != nil || m.Type != store.TypeRecalled || len(events) == 0 {
		t.Fatalf("recall by the owner after the window: %+v, %d events, %v", m, len(events), err)
	}
	created := e.history(t, "alice", g1, store.HistoryQuery{Before: 2, Limit: 1}).Messages[0]
	if created.Type != store.TypeGroup {
		t.Fatalf("first message of the group: %+v", created)
	}
	if _, ev, err := split(e.s.Recall(e.ctx, "alice", created.ID, e.at(created.TS+1), window)); !errors.Is(err, store.ErrNotAllowed) || len(ev) != 0 {
		t.Fatalf("recall of a group event by the owner: %v, %d events", err, len(ev))
	}
	e.change(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpRole, Users: []string{"bob"}, Role: store.RoleAdmin})
	if m, _, err := split(e.s.Recall(e.ctx, "bob", hello.ID, e.at(late), window)); err != nil || m.Type != store.TypeRecalled {
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
		if _, ev, err := split(e.s.Recall(e.ctx, c.user, c.id, e.at(c.ts), window)); !errors.Is(err, c.want) || len(ev) != 0 {
			t.Errorf("recall %s: %v, %d events; want %v", c.name, err, len(ev), c.want)
		}
	}
	if h := e.history(t, "bob", m1.Conv, store.HistoryQuery{}); !sameMsg(h.Messages[0], m1) {
		t.Fatalf("refused recalls changed the message: %s", fmtMsg(h.Messages[0]))
	}
	latest := e.latest(t, "bob")

	m, events, err := split(e.s.Recall(e.ctx, "alice", m1.ID, e.at(m1.TS+window.Milliseconds()), window))
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
	if _, ev, err := split(e.s.Recall(e.ctx, "alice", m1.ID, e.at(m1.TS+1), window)); err != nil || len(ev) != 0 {
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
	if _, ev, err := split(e.s.Edit(e.ctx, "bob", m1.ID, e.at(1), body("x"))); !errors.Is(err, store.ErrNotAllowed) || len(ev) != 0 {
		t.Fatalf("edit by the recipient: %v", err)
	}
	refuse := errors.New("refused body")
	if _, _, err := split(e.s.Edit(e.ctx, "alice", m1.ID, e.at(1), func(string) ([]byte, error) { return nil, refuse })); !errors.Is(err, refuse) {
		t.Fatalf("edit with a refused body: %v", err)
	}
	m, events, err := split(e.s.Edit(e.ctx, "alice", m1.ID, e.at(m1.TS+1), body("uno")))
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
	if _, _, err := split(e.s.Recall(e.ctx, "alice", m1.ID, e.at(m1.TS+2), window)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := split(e.s.Edit(e.ctx, "alice", m1.ID, e.at(m1.TS+3), body("dos"))); !errors.Is(err, store.ErrNotAllowed) {
		t.Fatalf("edit of a recalled message: %v", err)
	}
}

func testDeleteForMe(t *testing.T, e *env) {
	e.users(t, "alice", "bob", "carol")
	res := e.send(t, e.req("alice", "bob", "c1", "one"), e.req("alice", "bob", "c2", "two"), e.req("bob", "alice", "c3", "three"))
	m2 := res[1].Msg
	aliceLatest := e.latest(t, "alice")
	if _, _, err := split(e.s.DeleteForMe(e.ctx, "carol", m2.ID, 1)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete by a non-member: %v", err)
	}
	m, events, err := split(e.s.DeleteForMe(e.ctx, "bob", m2.ID, 5))
	if err != nil || !sameMsg(m, m2) {
		t.Fatalf("delete: %v %s", err, fmtMsg(m))
	}
	checkEvents(t, events, store.KindDelete, m2, "bob", "bob")
	lastInbox(t, e, "bob", events[0])
	if e.latest(t, "alice") != aliceLatest {
		t.Fatal("delete for me added an event for the peer")
	}
	if _, ev, err := split(e.s.DeleteForMe(e.ctx, "bob", m2.ID, 6)); err != nil || len(ev) != 0 {
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
		_, evs, err := split(e.s.Edit(e.ctx, "alice", first.ID, e.at(first.TS+1), func(string) ([]byte, error) { return []byte{byte(i)}, nil }))
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
	_, evs, err := split(e.s.Recall(e.ctx, "alice", first.ID, e.at(first.TS+1), window))
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

// at is a change's stamp at ts, with a fresh event id.
func (e *env) at(ts int64) store.Stamp { return store.Stamp{TS: ts, EventID: 1000 + e.ids.Add(1)} }

// split returns a change's message and inbox events.
func split(r store.ChangeResult, err error) (store.Message, []store.InboxEvent, error) {
	return r.Msg, r.Events, err
}
