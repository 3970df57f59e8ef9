package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/mqim/mqim/store"
)

// groupTests are the conformance subtests of groups [IM-11].
var groupTests = []struct {
	name string
	fn   func(*testing.T, *env)
}{
	{"GroupCreateAndSend", testGroupCreateAndSend},
	{"GroupPermissions", testGroupPermissions},
	{"GroupRemove", testGroupRemove},
	{"GroupReadFanoutSwitch", testGroupReadFanoutSwitch},
	{"GroupReadState", testGroupReadState},
	{"GroupRetry", testGroupRetry},
	{"GroupRoles", testGroupRoles},
	{"GroupConcurrent", testGroupConcurrent},
	{"CoMembers", testCoMembers},
	{"GroupSystemNotify", testGroupSystemNotify},
	{"GroupCmidRace", testGroupCmidRace},
	{"GroupMembersInByteOrder", testGroupMembersInByteOrder},
	{"GroupReadFanoutMentions", testGroupReadFanoutMentions},
	{"GroupOperator", testGroupOperator},
}

func (e *env) change(t *testing.T, c store.GroupChange) store.GroupResult {
	t.Helper()
	id := e.ids.Add(1)
	c.ID, c.TS = 1000+id, tsBase+id
	res, err := e.s.ChangeGroup(e.ctx, c)
	if err != nil {
		t.Fatalf("ChangeGroup(%s by %s): %v", c.Op, c.Actor, err)
	}
	return res
}

func (e *env) changeErr(t *testing.T, c store.GroupChange, want error) {
	t.Helper()
	id := e.ids.Add(1)
	c.ID, c.TS = 1000+id, tsBase+id
	if _, err := e.s.ChangeGroup(e.ctx, c); !errors.Is(err, want) {
		t.Fatalf("ChangeGroup(%s by %s %v) = %v, want %v", c.Op, c.Actor, c.Users, err, want)
	}
}

func (e *env) greq(from, group, cmid, body string, mentions ...string) store.SendRequest {
	r := e.req(from, "", cmid, body)
	r.Group, r.Mentions, r.Digest = group, mentions, digest(group, "text", body)
	return r
}

func (e *env) gsend(t *testing.T, batch ...store.SendRequest) []store.SendResult {
	t.Helper()
	res, err := e.s.AppendGroup(e.ctx, batch)
	if err != nil {
		t.Fatalf("AppendGroup: %v", err)
	}
	if len(res) != len(batch) {
		t.Fatalf("AppendGroup returned %d results for %d requests", len(res), len(batch))
	}
	return res
}

func (e *env) lastSeq(t *testing.T, user, conv string) int64 {
	t.Helper()
	info, err := e.s.Group(e.ctx, user, conv, 0)
	if err != nil {
		t.Fatalf("Group(%q): %v", conv, err)
	}
	return info.LastSeq
}

func groupBody(t *testing.T, m *store.Message) map[string]any {
	t.Helper()
	if m.Type != store.TypeGroup {
		t.Fatalf("message %d has type %q, want %q", m.Seq, m.Type, store.TypeGroup)
	}
	var b map[string]any
	if err := msgpack.Unmarshal(m.Body, &b); err != nil {
		t.Fatal(err)
	}
	return b
}

func eventUsers(evs []store.InboxEvent) []string {
	var us []string
	for _, ev := range evs {
		us = append(us, ev.User)
	}
	slices.Sort(us)
	return us
}

const g1 = "g:1"

func testGroupCreateAndSend(t *testing.T, e *env) {
	e.users(t, "alice", "bob", "carol")
	name := "team"
	res := e.change(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpCreate, Users: []string{"bob", "carol", "alice"}, Name: &name})
	if res.Msg.Seq != 1 || res.Fanout != store.FanoutWrite || res.Broadcast {
		t.Fatalf("create: %+v", res)
	}
	if got := eventUsers(res.Events); !slices.Equal(got, []string{"alice", "bob", "carol"}) {
		t.Fatalf("create events for %v", got)
	}
	if b := groupBody(t, &res.Msg); b["op"] != "create" || b["name"] != "team" || b["fanout"] != "write" {
		t.Fatalf("create body %v", b)
	}
	r := e.gsend(t, e.greq("bob", g1, "b1", "hi", "carol"))[0]
	if r.Err != nil || r.Msg.Seq != 2 || r.Broadcast || !slices.Equal(r.Msg.Mentions, []string{"carol"}) {
		t.Fatalf("send: %+v", r)
	}
	if got := eventUsers(r.Events); !slices.Equal(got, []string{"alice", "bob", "carol"}) {
		t.Fatalf("send events for %v", got)
	}
	inbox := e.inbox(t, "carol")
	if len(inbox) != 2 || inbox[1].Msg == nil || inbox[1].Msg.From != "bob" || inbox[1].ConvSeq != 2 ||
		!slices.Equal(inbox[1].Msg.Mentions, []string{"carol"}) {
		t.Fatalf("carol's inbox %+v", inbox)
	}
	h := e.history(t, "carol", g1, store.HistoryQuery{})
	if len(h.Messages) != 2 || h.Messages[0].Type != store.TypeGroup || h.Messages[1].Cmid != "b1" {
		t.Fatalf("history %+v", h)
	}
	c := e.conversation(t, "carol", g1)
	if c.Kind != store.ConvGroup || c.Name != "team" || c.LastSeq != 2 || c.Unread != 2 || c.Peer != "" {
		t.Fatalf("carol's conversation %+v", c)
	}
	if c := e.conversation(t, "bob", g1); c.Unread != 0 {
		t.Fatalf("bob's unread %d after sending", c.Unread)
	}
	if c := e.conversation(t, "alice", g1); c.Unread != 1 {
		t.Fatalf("alice's unread %d, want 1", c.Unread)
	}
}

func testGroupPermissions(t *testing.T, e *env) {
	e.users(t, "alice", "bob", "carol", "dave")
	e.change(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpCreate, Users: []string{"bob", "carol"}})
	e.change(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpMute, Users: []string{"carol"}, Muted: true})
	last := e.lastSeq(t, "alice", g1)

	res := e.gsend(t, e.greq("dave", g1, "d1", "x"), e.greq("carol", g1, "c1", "x"),
		e.greq("bob", "g:none", "b1", "x"), e.greq("bob", g1, "b2", "x", "dave"))
	for i, want := range []error{store.ErrNotMember, store.ErrMuted, store.ErrNoGroup, store.ErrBadMention} {
		if !errors.Is(res[i].Err, want) {
			t.Errorf("request %d: %v, want %v", i, res[i].Err, want)
		}
	}
	e.changeErr(t, store.GroupChange{Group: g1, Actor: "bob", Op: store.OpAdd, Users: []string{"dave"}}, store.ErrForbidden)
	e.changeErr(t, store.GroupChange{Group: g1, Actor: "dave", Op: store.OpAdd, Users: []string{"dave"}}, store.ErrNotMember)
	e.changeErr(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpAdd, Users: []string{"nobody"}}, store.ErrUnknownUser)
	e.changeErr(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpAdd, Users: []string{"bob"}}, store.ErrBadChange)
	e.changeErr(t, store.GroupChange{Group: g1, Actor: "bob", Op: store.OpRemove, Users: []string{"carol"}}, store.ErrForbidden)
	e.changeErr(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpLeave}, store.ErrBadChange)
	e.changeErr(t, store.GroupChange{Group: "g:none", Actor: "alice", Op: store.OpAdd, Users: []string{"dave"}}, store.ErrNoGroup)
	e.changeErr(t, store.GroupChange{Group: g1, Actor: "bob", Op: store.OpUpdate, Name: new(string)}, store.ErrForbidden)
	e.changeErr(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpCreate, Users: []string{"nobody"}}, store.ErrUnknownUser)
	if got := e.lastSeq(t, "alice", g1); got != last {
		t.Fatalf("last seq %d after refused operations, want %d", got, last)
	}
	if _, err := e.s.History(e.ctx, "dave", g1, store.HistoryQuery{}); !errors.Is(err, store.ErrNotMember) {
		t.Fatalf("History by a non-member: %v", err)
	}
	if _, _, err := e.s.MarkRead(e.ctx, "dave", g1, 1); !errors.Is(err, store.ErrNotMember) {
		t.Fatalf("MarkRead by a non-member: %v", err)
	}
	if _, err := e.s.Group(e.ctx, "dave", g1, 10); !errors.Is(err, store.ErrNotMember) {
		t.Fatalf("Group by a non-member: %v", err)
	}
}

func testGroupRemove(t *testing.T, e *env) {
	e.users(t, "alice", "bob", "carol")
	e.change(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpCreate, Users: []string{"bob", "carol"}})
	res := e.change(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpRemove, Users: []string{"carol"}})
	if !slices.Equal(res.Removed, []string{"carol"}) || !slices.Equal(eventUsers(res.Events), []string{"alice", "bob", "carol"}) {
		t.Fatalf("remove: %+v", res)
	}
	before := e.latest(t, "carol")
	r := e.gsend(t, e.greq("bob", g1, "b1", "after"))[0]
	if r.Err != nil || slices.Contains(eventUsers(r.Events), "carol") {
		t.Fatalf("send after remove: %+v", r)
	}
	if got := e.latest(t, "carol"); got != before {
		t.Fatalf("carol's inbox grew to %d after removal", got)
	}
	if _, err := e.s.History(e.ctx, "carol", g1, store.HistoryQuery{}); !errors.Is(err, store.ErrNotMember) {
		t.Fatalf("History by a removed member: %v", err)
	}
	if ok, err := e.s.IsMember(e.ctx, g1, "carol"); err != nil || ok {
		t.Fatalf("IsMember(carol) = %v, %v", ok, err)
	}
	res = e.change(t, store.GroupChange{Group: g1, Actor: "bob", Op: store.OpLeave})
	if !slices.Equal(res.Removed, []string{"bob"}) || !slices.Equal(eventUsers(res.Events), []string{"alice", "bob"}) {
		t.Fatalf("leave: %+v", res)
	}
}

// testCoMembers: users who share a group are co-members; a direct
// conversation does not count, and leaving the group ends it [IM-15.2-2].
func testCoMembers(t *testing.T, e *env) {
	e.users(t, "alice", "bob", "carol", "dave")
	e.send(t, e.req("alice", "dave", "d1", "hi")) // direct only
	e.change(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpCreate, Users: []string{"bob", "carol"}})
	pairs := []store.Pair{{Owner: "bob", Peer: "carol"}, {Owner: "carol", Peer: "alice"}, {Owner: "alice", Peer: "dave"}, {Owner: "dave", Peer: "bob"}}
	co, err := e.s.CoMembers(e.ctx, pairs)
	if err != nil || !slices.Equal(co, []bool{true, true, false, false}) {
		t.Fatalf("CoMembers = %v, %v; want [true true false false]", co, err)
	}
	e.change(t, store.GroupChange{Group: g1, Actor: "carol", Op: store.OpLeave})
	co, err = e.s.CoMembers(e.ctx, pairs[:2])
	if err != nil || !slices.Equal(co, []bool{false, false}) {
		t.Fatalf("CoMembers after carol left = %v, %v", co, err)
	}
	if co, err := e.s.CoMembers(e.ctx, nil); err != nil || len(co) != 0 {
		t.Fatalf("CoMembers(nil) = %v, %v", co, err)
	}
}

// testGroupReadFanoutSwitch checks [IM-11.3]: the event that takes the
// group over the threshold goes to every member's inbox and carries
// read_from; later events go to no inbox except the added and removed
// users'.
func testGroupReadFanoutSwitch(t *testing.T, e *env) {
	e.users(t, "alice", "bob", "carol", "dave", "erin")
	c := store.GroupChange{Group: g1, Actor: "alice", Op: store.OpCreate, Users: []string{"bob", "carol"}, Threshold: 3}
	e.change(t, c)
	res := e.change(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpAdd, Users: []string{"dave"}, Threshold: 3})
	if res.Fanout != store.FanoutRead || res.ReadFrom != res.Msg.Seq || !res.Broadcast {
		t.Fatalf("switch: %+v", res)
	}
	if got := eventUsers(res.Events); !slices.Equal(got, []string{"alice", "bob", "carol", "dave"}) {
		t.Fatalf("switch events for %v", got)
	}
	if b := groupBody(t, &res.Msg); b["fanout"] != "read" || toInt(b["read_from"]) != res.Msg.Seq {
		t.Fatalf("switch body %v", b)
	}
	inboxBefore := e.latest(t, "bob")
	r := e.gsend(t, e.greq("bob", g1, "b1", "big"))[0]
	if r.Err != nil || !r.Broadcast || len(r.Events) != 0 {
		t.Fatalf("send in a read group: %+v", r)
	}
	if got := e.latest(t, "bob"); got != inboxBefore {
		t.Fatalf("inbox grew to %d for a read-fan-out message", got)
	}
	res = e.change(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpAdd, Users: []string{"erin"}, Threshold: 3})
	if !slices.Equal(eventUsers(res.Events), []string{"erin"}) || !res.Broadcast {
		t.Fatalf("add to a read group: %+v", res)
	}
	res = e.change(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpRemove, Users: []string{"erin"}, Threshold: 3})
	if !slices.Equal(eventUsers(res.Events), []string{"erin"}) {
		t.Fatalf("remove from a read group: %+v", res)
	}
	// Down to 4 members and a threshold of 100: still read (it never
	// switches back).
	res = e.change(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpRemove, Users: []string{"dave"}})
	if res.Fanout != store.FanoutRead || len(res.Events) != 1 {
		t.Fatalf("shrunk group: %+v", res)
	}
	h := e.history(t, "carol", g1, store.HistoryQuery{After: res.ReadFrom - 1})
	if len(h.Messages) != 5 || h.Messages[1].Cmid != "b1" {
		t.Fatalf("history after the switch: %+v", h)
	}
	if c := e.conversation(t, "carol", g1); c.Unread != c.LastSeq || c.LastSeq != 6 {
		t.Fatalf("carol's conversation %+v", c)
	}
	info, err := e.s.Group(e.ctx, "carol", g1, 100)
	if err != nil || info.Fanout != store.FanoutRead || info.MemberCount != 3 || len(info.Members) != 3 {
		t.Fatalf("Group: %+v, %v", info, err)
	}
}

func testGroupReadState(t *testing.T, e *env) {
	e.users(t, "alice", "bob", "carol")
	e.change(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpCreate, Users: []string{"bob", "carol"}})
	e.gsend(t, e.greq("alice", g1, "a1", "one"), e.greq("alice", g1, "a2", "two"))
	st, evs, err := e.s.MarkRead(e.ctx, "bob", g1, 2)
	if err != nil || st.ReadSeq != 2 || st.Unread != 1 {
		t.Fatalf("MarkRead: %+v, %v", st, err)
	}
	if len(evs) != 1 || evs[0].User != "bob" || evs[0].Kind != store.KindRead || evs[0].ConvSeq != 2 {
		t.Fatalf("read events %+v, want one for bob", evs)
	}
	if st, evs, _ := e.s.MarkRead(e.ctx, "bob", g1, 1); st.ReadSeq != 2 || len(evs) != 0 {
		t.Fatalf("MarkRead backwards: %+v %v", st, evs)
	}
	if st, _, _ := e.s.MarkRead(e.ctx, "carol", g1, 99); st.ReadSeq != 3 || st.Unread != 0 {
		t.Fatalf("MarkRead clamps: %+v", st)
	}
	if h := e.history(t, "alice", g1, store.HistoryQuery{}); h.Messages[0].ReadBy != 0 {
		t.Fatalf("read_by without asking: %+v", h.Messages[0])
	}
	h := e.history(t, "alice", g1, store.HistoryQuery{ReadBy: true})
	// seq 1 (create by alice): bob and carol; 2 (a1): bob, carol; 3: carol.
	for i, want := range []int64{2, 2, 1} {
		if h.Messages[i].ReadBy != want {
			t.Errorf("seq %d read by %d, want %d", h.Messages[i].Seq, h.Messages[i].ReadBy, want)
		}
	}
	var total int64
	for _, c := range e.conversations(t, "bob", 10) {
		total += c.Unread
	}
	if total != 1 {
		t.Fatalf("bob's total unread %d, want 1", total)
	}
}

func testGroupRetry(t *testing.T, e *env) {
	e.users(t, "alice", "bob")
	e.change(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpCreate, Users: []string{"bob"}})
	first := e.gsend(t, e.greq("bob", g1, "b1", "x"), e.greq("bob", g1, "b1", "x"))
	if first[0].Err != nil || first[0].Duplicate || !first[1].Duplicate || first[1].Msg.Seq != first[0].Msg.Seq {
		t.Fatalf("in-batch retry: %+v", first)
	}
	again := e.gsend(t, e.greq("bob", g1, "b1", "x"), e.greq("bob", g1, "b1", "y"))
	if !again[0].Duplicate || again[0].Msg.ID != first[0].Msg.ID || len(again[0].Events) != 0 {
		t.Fatalf("retry: %+v", again[0])
	}
	if !errors.Is(again[1].Err, store.ErrCmidConflict) {
		t.Fatalf("conflict: %v", again[1].Err)
	}
	if got := e.lastSeq(t, "bob", g1); got != 2 {
		t.Fatalf("last seq %d, want 2", got)
	}
}

func testGroupRoles(t *testing.T, e *env) {
	e.users(t, "alice", "bob", "carol")
	e.change(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpCreate, Users: []string{"bob", "carol"}})
	e.change(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpRole, Users: []string{"bob"}, Role: store.RoleAdmin})
	// An admin may add, mute and update, but not touch another admin.
	e.changeErr(t, store.GroupChange{Group: g1, Actor: "bob", Op: store.OpRole, Users: []string{"carol"}, Role: store.RoleAdmin}, store.ErrForbidden)
	e.change(t, store.GroupChange{Group: g1, Actor: "bob", Op: store.OpMute, Users: []string{"carol"}, Muted: true})
	if r := e.gsend(t, e.greq("carol", g1, "c1", "x"))[0]; !errors.Is(r.Err, store.ErrMuted) {
		t.Fatalf("muted send: %v", r.Err)
	}
	e.change(t, store.GroupChange{Group: g1, Actor: "bob", Op: store.OpMute, Users: []string{"carol"}, Muted: false})
	if r := e.gsend(t, e.greq("carol", g1, "c1", "x"))[0]; r.Err != nil {
		t.Fatalf("unmuted send: %v", r.Err)
	}
	notice := "be nice"
	e.change(t, store.GroupChange{Group: g1, Actor: "bob", Op: store.OpUpdate, Notice: &notice})
	e.change(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpTransfer, Users: []string{"carol"}})
	info, err := e.s.Group(e.ctx, "alice", g1, 10)
	if err != nil {
		t.Fatal(err)
	}
	roles := map[string]string{}
	for _, m := range info.Members {
		roles[m.User] = m.Role
	}
	if info.Notice != notice || roles["alice"] != store.RoleAdmin || roles["carol"] != store.RoleOwner || roles["bob"] != store.RoleAdmin {
		t.Fatalf("after transfer: %+v", info)
	}
	// The old owner may now leave; the new one may not.
	e.change(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpLeave})
	e.changeErr(t, store.GroupChange{Group: g1, Actor: "carol", Op: store.OpLeave}, store.ErrBadChange)
	// Every change is in the timeline.
	h := e.history(t, "carol", g1, store.HistoryQuery{})
	var ops []any
	for i := range h.Messages {
		if h.Messages[i].Type == store.TypeGroup {
			ops = append(ops, groupBody(t, &h.Messages[i])["op"])
		}
	}
	want := []any{"create", "role", "mute", "mute", "update", "transfer", "leave"}
	if !slices.Equal(ops, want) {
		t.Fatalf("timeline ops %v, want %v", ops, want)
	}
}

// toInt reads an integer decoded from MessagePack, whatever its width.
func toInt(v any) int64 {
	switch x := v.(type) {
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case int64:
		return x
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case uint64:
		return int64(x)
	}
	return -1
}

// testGroupConcurrent runs group sends to two groups, direct sends between
// their members and group changes at the same time (on PostgreSQL, on many
// connections): nothing deadlocks or fails, conv seqs are continuous, and
// every user's inbox is continuous with each conversation in conv seq
// order.
func testGroupConcurrent(t *testing.T, e *env) {
	e.users(t, "alice", "bob", "carol", "dave", "erin")
	e.change(t, store.GroupChange{Group: "g:a", Actor: "alice", Op: store.OpCreate, Users: []string{"bob", "carol", "dave"}})
	e.change(t, store.GroupChange{Group: "g:b", Actor: "dave", Op: store.OpCreate, Users: []string{"carol", "bob", "alice"}})
	const workers, rounds = 6, 10
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for k := range rounds {
				var err error
				switch (w + k) % 4 {
				case 0, 1:
					from := []string{"alice", "bob", "carol", "dave"}[(w+k)%4]
					var res []store.SendResult
					res, err = e.s.AppendGroup(e.ctx, []store.SendRequest{
						e.greq(from, "g:a", fmt.Sprintf("a%d-%d", w, k), "x"),
						e.greq(from, "g:b", fmt.Sprintf("b%d-%d", w, k), "y"),
					})
					for _, r := range res {
						if r.Err != nil {
							t.Errorf("worker %d: group send: %v", w, r.Err)
						}
					}
				case 2:
					_, err = e.s.Append(e.ctx, []store.SendRequest{e.req("dave", "alice", fmt.Sprintf("d%d-%d", w, k), "z")})
				case 3:
					id := e.ids.Add(1)
					op := store.OpAdd
					if k%2 == 1 {
						op = store.OpRemove
					}
					_, err = e.s.ChangeGroup(e.ctx, store.GroupChange{Group: "g:b", Actor: "dave", Op: op,
						Users: []string{"erin"}, ID: 1000 + id, TS: tsBase + id})
					if errors.Is(err, store.ErrBadChange) {
						err = nil // erin was already in (or out): another worker got there first
					}
				}
				if err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, g := range []string{"g:a", "g:b"} {
		var all []store.Message
		for before := int64(0); ; {
			p := e.history(t, "dave", g, store.HistoryQuery{Before: before, Limit: 200})
			all = append(slices.Clone(p.Messages), all...)
			if !p.HasMore {
				break
			}
			before = p.Messages[0].Seq
		}
		for i, m := range all {
			if m.Seq != int64(i+1) {
				t.Fatalf("%s: message %d has seq %d", g, i, m.Seq)
			}
		}
	}
	for _, u := range []string{"alice", "bob", "carol", "dave", "erin"} {
		last := map[string]int64{}
		for i, ev := range e.inbox(t, u) {
			if ev.Seq != int64(i+1) {
				t.Fatalf("%s: inbox event %d has seq %d", u, i, ev.Seq)
			}
			if ev.Kind == store.KindMessage && ev.ConvSeq <= last[ev.Conv] {
				t.Fatalf("%s: %s seq %d after %d", u, ev.Conv, ev.ConvSeq, last[ev.Conv])
			}
			last[ev.Conv] = ev.ConvSeq
		}
	}
}

// sysreq is a bridge's system notification to a group [IM-4.6-5].
func (e *env) sysreq(from, group, cmid, body string) store.SendRequest {
	r := e.greq(from, group, cmid, body)
	r.Type, r.System, r.Digest = "system", true, digest(group, "system", body)
	return r
}

// testGroupSystemNotify: a bridge that is not a member notifies a group
// that fans out on write, then on read [IM-4.6-5]: the message is stored
// from the bridge, goes to every member (and not to the bridge), counts as
// unread, is idempotent by cmid; the same request without System is
// refused as from a non-member, and an unknown group is ErrNoGroup.
func testGroupSystemNotify(t *testing.T, e *env) {
	e.users(t, "alice", "bob", "carol", "dave", "ci")
	e.change(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpCreate, Users: []string{"bob"}, Threshold: 3})
	bridgeBefore := e.latest(t, "ci")

	plain := e.greq("ci", g1, "n0", "not a notification")
	if r := e.gsend(t, plain)[0]; !errors.Is(r.Err, store.ErrNotMember) {
		t.Fatalf("non-member send without System: %+v", r)
	}
	if r := e.gsend(t, e.sysreq("ci", "g:nope", "n0", "x"))[0]; !errors.Is(r.Err, store.ErrNoGroup) {
		t.Fatalf("notification to an unknown group: %+v", r)
	}

	// Write fan-out: every member's inbox, none for the bridge.
	req := e.sysreq("ci", g1, "n1", "build 1 passed")
	r := e.gsend(t, req)[0]
	if r.Err != nil || r.Duplicate || r.Broadcast || r.Msg.Seq != 2 || r.Msg.From != "ci" || r.Msg.Type != "system" || r.Msg.Conv != g1 {
		t.Fatalf("notification to a write group: %+v", r)
	}
	if got := eventUsers(r.Events); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Fatalf("notification events for %v, want alice and bob", got)
	}
	if got := e.latest(t, "ci"); got != bridgeBefore {
		t.Fatalf("the bridge's inbox grew to %d", got)
	}
	// It counts as unread for every member [IM-4.6-6].
	for u, unread := range map[string]int64{"alice": 1, "bob": 2} { // alice read her create
		if c := e.conversation(t, u, g1); c.LastSeq != 2 || c.Unread != unread {
			t.Fatalf("%s: conversation %+v, want last_seq 2 and unread %d", u, c, unread)
		}
	}
	// A retry is the stored message; a different body is a conflict.
	retry := req
	retry.ID, retry.TS = req.ID+100000, req.TS+100000
	if d := e.gsend(t, retry)[0]; d.Err != nil || !d.Duplicate || d.Msg.ID != r.Msg.ID || d.Msg.Seq != 2 || len(d.Events) != 0 {
		t.Fatalf("retry: %+v", d)
	}
	if c := e.gsend(t, e.sysreq("ci", g1, "n1", "build 1 failed"))[0]; !errors.Is(c.Err, store.ErrCmidConflict) {
		t.Fatalf("cmid reuse: %+v", c)
	}
	h := e.history(t, "bob", g1, store.HistoryQuery{})
	if last := h.Messages[len(h.Messages)-1]; last.Seq != 2 || last.From != "ci" || last.Type != "system" || last.Cmid != "n1" {
		t.Fatalf("history: %+v", h.Messages)
	}
	if _, err := e.s.History(e.ctx, "ci", g1, store.HistoryQuery{}); !errors.Is(err, store.ErrNotMember) {
		t.Fatalf("the bridge read the group's history: %v", err)
	}
	for _, c := range e.conversations(t, "ci", 0) {
		if c.Conv == g1 {
			t.Fatalf("the group is among the bridge's conversations: %+v", c)
		}
	}

	// Read fan-out: one broadcast, no inbox row.
	e.change(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpAdd, Users: []string{"carol", "dave"}, Threshold: 3})
	before := e.latest(t, "bob")
	r = e.gsend(t, e.sysreq("ci", g1, "n2", "build 2 passed"))[0]
	if r.Err != nil || !r.Broadcast || len(r.Events) != 0 || r.Msg.Seq != 4 || r.Msg.From != "ci" {
		t.Fatalf("notification to a read group: %+v", r)
	}
	if got := e.latest(t, "bob"); got != before {
		t.Fatalf("bob's inbox grew to %d for a read-fan-out notification", got)
	}
	if c := e.conversation(t, "carol", g1); c.LastSeq != 4 || c.Unread != 4 {
		t.Fatalf("carol: conversation %+v, want last_seq 4 and unread 4", c)
	}
	// A muted bridge that is a member is not refused either.
	e.change(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpAdd, Users: []string{"ci"}, Threshold: 3})
	e.change(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpMute, Users: []string{"ci"}, Muted: true, Threshold: 3})
	if r := e.gsend(t, e.sysreq("ci", g1, "n3", "muted"))[0]; r.Err != nil || !r.Broadcast {
		t.Fatalf("notification from a muted member bridge: %+v", r)
	}
	if r := e.gsend(t, e.greq("ci", g1, "n4", "muted"))[0]; !errors.Is(r.Err, store.ErrMuted) {
		t.Fatalf("muted member's plain send: %+v", r)
	}
}

// testGroupCmidRace: concurrent sends of one (sender, cmid) to a group
// store one message, and every other copy is answered with it as a
// duplicate [IM-4.5-1], as for direct sends (ConcurrentRetry). The same
// cmid sent to two groups at once stores one message; the other group's
// copies are cmid conflicts. No batch fails: a lost race is retried, not
// reported.
func testGroupCmidRace(t *testing.T, e *env) {
	e.users(t, "alice", "bob", "carol")
	e.change(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpCreate, Users: []string{"bob", "carol"}})
	e.change(t, store.GroupChange{Group: "g:2", Actor: "alice", Op: store.OpCreate, Users: []string{"bob"},
		Threshold: 1}) // read fan-out: the send locks no user row
	const n = 8
	race := func(reqs ...store.SendRequest) []store.SendResult {
		res := make([]store.SendResult, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				out, err := e.s.AppendGroup(e.ctx, []store.SendRequest{reqs[i%len(reqs)]})
				if err != nil {
					t.Errorf("AppendGroup: %v", err)
					return
				}
				res[i] = out[0]
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		return res
	}

	r := e.greq("bob", g1, "same", "hello")
	fresh := 0
	for i, x := range race(r) {
		if x.Err != nil {
			t.Fatalf("copy %d: %v", i, x.Err)
		}
		if !x.Duplicate {
			fresh++
		}
		if want := (store.Message{ID: r.ID, Conv: g1, Seq: 2, From: r.From, Cmid: r.Cmid, Type: r.Type, Body: r.Body,
			TS: r.TS}); !sameMsg(x.Msg, want) {
			t.Errorf("copy %d: %s, want %s", i, fmtMsg(x.Msg), fmtMsg(want))
		}
	}
	if fresh != 1 {
		t.Errorf("%d of %d concurrent copies stored as new; want 1", fresh, n)
	}
	if got := e.lastSeq(t, "bob", g1); got != 2 {
		t.Errorf("%s's last seq %d after the race; want 2", g1, got)
	}

	one, two := e.greq("bob", g1, "x", "one"), e.greq("bob", "g:2", "x", "two")
	stored := map[string]int64{} // group → id of a stored or duplicate answer
	conflicts := map[string]int{}
	for i, x := range race(one, two) {
		switch {
		case errors.Is(x.Err, store.ErrCmidConflict):
			conflicts[[]string{g1, "g:2"}[i%2]]++
		case x.Err != nil:
			t.Fatalf("copy %d: %v", i, x.Err)
		default:
			stored[x.Msg.Conv] = x.Msg.ID
		}
	}
	if len(stored) != 1 || len(conflicts) != 1 {
		t.Fatalf("one cmid to two groups at once: stored in %v, conflicts %v; want one group each", stored, conflicts)
	}
	for g := range stored {
		if conflicts[g] != 0 {
			t.Fatalf("conflicts %v in %s, where the message is stored", conflicts, g)
		}
	}
}

// testGroupMembersInByteOrder: Group lists members ordered by user id byte
// by byte, whatever the database's collation.
func testGroupMembersInByteOrder(t *testing.T, e *env) {
	ids := []string{"alice", "Bob", "bob.2", "Zed", "_x", "a-b"}
	e.users(t, ids...)
	e.change(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpCreate, Users: ids[1:]})
	info, err := e.s.Group(e.ctx, "alice", g1, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range info.Members {
		got = append(got, m.User)
	}
	want := slices.Sorted(slices.Values(ids))
	if !slices.Equal(got, want) {
		t.Fatalf("members %v, want %v", got, want)
	}
}

// testGroupReadFanoutMentions: in a read-fan-out group a member named in
// a message's mentions gets exactly one mention event in its inbox, with
// the message; "*", the sender naming itself and a retry give none, and
// nobody else's inbox grows [IM-11.6-2]. A write-fan-out group stores no
// mention events (every member has the message).
func testGroupReadFanoutMentions(t *testing.T, e *env) {
	e.users(t, "alice", "bob", "carol", "dave")
	e.change(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpCreate, Users: []string{"bob", "carol", "dave"}, Threshold: 2})
	before := map[string]int64{}
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		before[u] = e.latest(t, u)
	}
	r1 := e.greq("alice", g1, "a1", "hi bob", "bob", "*", "alice", "bob")
	res := e.gsend(t, r1, e.greq("carol", g1, "c1", "all of you", "*"), e.greq("dave", g1, "d1", "bob again", "bob", "carol"))
	for i, r := range res {
		if r.Err != nil || !r.Broadcast {
			t.Fatalf("send %d: %+v", i, r)
		}
	}
	want := [][]string{{"bob"}, nil, {"bob", "carol"}}
	for i, r := range res {
		if got := eventUsers(r.Events); !slices.Equal(got, want[i]) {
			t.Fatalf("send %d: mention events for %v, want %v", i, got, want[i])
		}
		for _, ev := range r.Events {
			if ev.Kind != store.KindMention || ev.Conv != g1 || ev.ConvSeq != r.Msg.Seq || ev.Actor != r.Msg.From ||
				ev.Msg == nil || !sameMsg(*ev.Msg, r.Msg) {
				t.Fatalf("send %d: mention event %+v", i, ev)
			}
		}
	}
	// A retry stores nothing new.
	if d := e.gsend(t, r1)[0]; !d.Duplicate || len(d.Events) != 0 {
		t.Fatalf("retry: %+v", d)
	}
	e.reopen()
	for u, n := range map[string]int64{"alice": 0, "bob": 2, "carol": 1, "dave": 0} {
		evs := e.inbox(t, u)
		if got := e.latest(t, u) - before[u]; got != n {
			t.Fatalf("%s's inbox grew by %d, want %d", u, got, n)
		}
		for _, ev := range evs[len(evs)-int(n):] {
			if ev.Kind != store.KindMention || ev.Msg == nil || ev.Msg.Conv != g1 || ev.Actor != ev.Msg.From || ev.ConvSeq != ev.Msg.Seq {
				t.Fatalf("%s's synced mention %+v", u, ev)
			}
		}
	}
	// Write fan-out: the message events, no mention event.
	const g2 = "g:2"
	e.change(t, store.GroupChange{Group: g2, Actor: "alice", Op: store.OpCreate, Users: []string{"bob"}})
	r := e.gsend(t, e.greq("alice", g2, "a2", "small", "bob"))[0]
	if !slices.Equal(eventUsers(r.Events), []string{"alice", "bob"}) || r.Broadcast {
		t.Fatalf("write-fan-out send with a mention: %+v", r)
	}
	for _, ev := range r.Events {
		if ev.Kind != store.KindMessage {
			t.Fatalf("write-fan-out event %+v", ev)
		}
	}
}

// The operator (the admin API) changes a group it is not a member of: the
// event names it as the actor, it gets no inbox row and no membership, and
// Group describes the group to it (user "").
func testGroupOperator(t *testing.T, e *env) {
	e.users(t, "alice", "bob", "carol")
	e.change(t, store.GroupChange{Group: g1, Actor: "alice", Op: store.OpCreate, Users: []string{"bob", "carol"}})
	res := e.change(t, store.GroupChange{Group: g1, Actor: "ops", Operator: true, Op: store.OpRemove, Users: []string{"carol"}})
	if res.Msg.From != "ops" || !slices.Equal(res.Removed, []string{"carol"}) ||
		!slices.Equal(eventUsers(res.Events), []string{"alice", "bob", "carol"}) {
		t.Fatalf("remove by the operator: %+v", res)
	}
	e.change(t, store.GroupChange{Group: g1, Actor: "ops", Operator: true, Op: store.OpTransfer, Users: []string{"bob"}})
	e.changeErr(t, store.GroupChange{Group: g1, Actor: "ops", Operator: true, Op: store.OpRemove, Users: []string{"bob"}}, store.ErrBadChange)
	info, err := e.s.Group(e.ctx, "", g1, 10)
	if err != nil {
		t.Fatalf("Group as the operator: %v", err)
	}
	roles := map[string]string{}
	for _, m := range info.Members {
		roles[m.User] = m.Role
	}
	if len(roles) != 2 || roles["bob"] != store.RoleOwner || roles["alice"] != store.RoleAdmin || info.LastSeq != 3 {
		t.Fatalf("after the operator's changes: %+v", info)
	}
	if _, err := e.s.Group(e.ctx, "ops", g1, 10); !errors.Is(err, store.ErrNotMember) {
		t.Fatalf("Group by the operator's own id: %v; it is no member", err)
	}
}
