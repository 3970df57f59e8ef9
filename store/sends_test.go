package store

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func send(from, to, cmid, digest string) SendRequest {
	return SendRequest{From: from, To: to, Cmid: cmid, Type: "text", Body: []byte(digest), Digest: []byte(digest)}
}

// outcome is a request's decision in short: "new", "dup" (of a stored
// message), "retry N" (of request N), or the refusal.
func outcomes(p *SendPlan) []any {
	out := make([]any, len(p.Results))
	for i, r := range p.Results {
		switch {
		case r.Err != nil:
			out[i] = r.Err
		case r.Duplicate:
			out[i] = "dup"
		}
	}
	for _, i := range p.Fresh {
		out[i] = "new"
	}
	for i, j := range p.retryOf {
		out[i] = j
	}
	return out
}

func TestDecideSends(t *testing.T) {
	stored := map[Cmid]Stored{{"alice", "s1"}: {Msg: Message{ID: 7, Conv: "d:alice:bob", Seq: 1}, Digest: []byte("x")}}
	direct := func(known ...string) func(*SendRequest) error {
		return func(r *SendRequest) error { return RefuseDirect(r, slices.Contains(known, r.To)) }
	}
	blocked := send("alice", "bob", "c1", "x")
	blocked.Blocked = true
	storedBlocked := send("alice", "bob", "s1", "x")
	storedBlocked.Blocked = true
	for _, c := range []struct {
		name   string
		batch  []SendRequest
		refuse func(*SendRequest) error
		want   []any // "new", "dup", an index (retry of), or the sentinel
	}{
		{"new", []SendRequest{send("alice", "bob", "c1", "x")}, direct("bob"), []any{"new"}},
		{"stored retry", []SendRequest{send("alice", "bob", "s1", "x")}, direct("bob"), []any{"dup"}},
		{"stored conflict", []SendRequest{send("alice", "bob", "s1", "y")}, direct("bob"), []any{ErrCmidConflict}},
		{"stored retry after a block", []SendRequest{storedBlocked}, direct("bob"), []any{"dup"}},
		{"stored cmid to another recipient", []SendRequest{send("alice", "nobody", "s1", "z")}, direct("bob"), []any{ErrCmidConflict}},
		{"unknown recipient", []SendRequest{send("alice", "nobody", "c1", "x")}, direct("bob"), []any{ErrUnknownUser}},
		{"blocked", []SendRequest{blocked}, direct("bob"), []any{ErrBlocked}},
		{"retry in batch", []SendRequest{send("alice", "bob", "c1", "x"), send("alice", "bob", "c1", "x")}, direct("bob"),
			[]any{"new", 0}},
		{"conflict in batch", []SendRequest{send("alice", "bob", "c1", "x"), send("alice", "bob", "c1", "y")}, direct("bob"),
			[]any{"new", ErrCmidConflict}},
		{"conflict in batch before refusal", []SendRequest{send("alice", "bob", "c1", "x"), send("alice", "nobody", "c1", "y")},
			direct("bob"), []any{"new", ErrCmidConflict}},
		{"refused twice", []SendRequest{send("alice", "nobody", "c1", "x"), send("alice", "nobody", "c1", "x")}, direct("bob"),
			[]any{ErrUnknownUser, ErrUnknownUser}},
		{"same cmid, other sender", []SendRequest{send("alice", "bob", "c1", "x"), send("bob", "alice", "c1", "y")},
			direct("alice", "bob"), []any{"new", "new"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := outcomes(DecideSends(c.batch, stored, c.refuse))
			for i := range c.want {
				w, isErr := c.want[i].(error)
				g, _ := got[i].(error)
				if isErr && !errors.Is(g, w) || !isErr && got[i] != c.want[i] {
					t.Errorf("request %d: %v, want %v", i, got[i], c.want[i])
				}
			}
		})
	}
}

func TestRefuseGroup(t *testing.T) {
	g := &GroupState{Fanout: FanoutWrite, Members: map[string]Member{
		"alice": {User: "alice", Role: RoleOwner}, "bob": {User: "bob", Role: RoleMember, Muted: true}}}
	req := func(from string, system bool, mentions ...string) *SendRequest {
		return &SendRequest{From: from, Group: "g:1", System: system, Mentions: mentions}
	}
	for _, c := range []struct {
		name string
		r    *SendRequest
		g    *GroupState
		want error
	}{
		{"member", req("alice", false, "bob", "*"), g, nil},
		{"no group", req("alice", false), nil, ErrNoGroup},
		{"non-member", req("carol", false), g, ErrNotMember},
		{"muted", req("bob", false), g, ErrMuted},
		{"bad mention", req("alice", false, "carol"), g, ErrBadMention},
		{"bridge, not a member", req("ci", true), g, nil},
		{"bridge, muted member", req("bob", true), g, nil},
		{"bridge, bad mention", req("ci", true, "carol"), g, ErrBadMention},
		{"bridge, no group", req("ci", true), nil, ErrNoGroup},
	} {
		if err := RefuseGroup(c.r, c.g); !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestNumberDirect(t *testing.T) {
	batch := []SendRequest{
		{ID: 1, From: "alice", To: "bob", Cmid: "a", Digest: []byte("1"), TS: 10},
		{ID: 2, From: "newbie", To: "alice", Cmid: "n", Digest: []byte("2"), TS: 11},
		{ID: 3, From: "alice", To: "bob", Cmid: "a", Digest: []byte("1"), TS: 12}, // retry of 0
		{ID: 4, From: "bob", To: "alice", Cmid: "b", Digest: []byte("4"), TS: 13},
	}
	plan := DecideSends(batch, nil, func(*SendRequest) error { return nil })
	w := plan.Direct(map[string]bool{"alice": true, "bob": true}, map[string]bool{"d:alice:bob": true})
	if !slices.Equal(w.NewUsers, []string{"newbie"}) || !slices.Equal(w.NewConvs, []string{"d:alice:newbie"}) ||
		!slices.Equal(w.NewMembers, []ConvUser{{"d:alice:newbie", "alice"}, {"d:alice:newbie", "newbie"}}) {
		t.Fatalf("creates %v %v %v", w.NewUsers, w.NewConvs, w.NewMembers)
	}
	if w.Conv["d:alice:bob"] != 2 || w.ConvTS["d:alice:bob"] != 13 || w.User["alice"] != 3 || w.User["bob"] != 2 || w.User["newbie"] != 1 {
		t.Fatalf("counters %+v", w.Counters)
	}
	if !slices.Equal(w.Convs(), []string{"d:alice:bob", "d:alice:newbie"}) || !slices.Equal(w.Users(), []string{"alice", "bob", "newbie"}) {
		t.Fatalf("lock order %v %v", w.Convs(), w.Users())
	}
	if _, err := w.Number(map[string]int64{"d:alice:bob": 7}, nil); err == nil {
		t.Fatal("Number with counters missing succeeded")
	}
	// Counters after the store moved them: the conversation had 5
	// messages, alice 10 events, bob 20, newbie none.
	rows, err := w.Number(map[string]int64{"d:alice:bob": 7, "d:alice:newbie": 1},
		map[string]int64{"alice": 13, "bob": 22, "newbie": 1})
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for _, m := range rows.Messages {
		seqs = append(seqs, m.Seq)
	}
	if !slices.Equal(seqs, []int64{6, 1, 7}) {
		t.Fatalf("message seqs %v, want [6 1 7]", seqs)
	}
	var inbox []string
	for _, e := range rows.Inbox {
		inbox = append(inbox, fmt.Sprintf("%s@%d", e.User, e.Seq))
	}
	// bob, alice for 1; alice, newbie for 2; alice, bob for 4.
	if want := []string{"bob@21", "alice@11", "alice@12", "newbie@1", "alice@13", "bob@22"}; !slices.Equal(inbox, want) {
		t.Fatalf("inbox rows %v, want %v", inbox, want)
	}
	r := plan.Results
	if r[0].Msg.Seq != 6 || len(r[0].Events) != 2 || r[0].Duplicate || !r[2].Duplicate || r[2].Msg.ID != 1 || len(r[2].Events) != 0 {
		t.Fatalf("results %+v", r)
	}
	if want := []ReadMark{{"d:alice:bob", "alice", 6}, {"d:alice:bob", "bob", 7}, {"d:alice:newbie", "newbie", 1}}; !slices.Equal(rows.Reads, want) {
		t.Fatalf("reads %v, want %v", rows.Reads, want)
	}
	if rows.Messages[0].Body == nil || rows.Messages[0].Digest == nil {
		t.Fatal("nil body or digest in a row: it would be stored as NULL")
	}
}

func TestNumberGroup(t *testing.T) {
	batch := []SendRequest{
		{ID: 1, From: "bob", Group: "g:w", Cmid: "1", Mentions: []string{"carol", "alice", "carol"}, TS: 5},
		{ID: 2, From: "bob", Group: "g:r", Cmid: "2", TS: 6},
		{ID: 3, From: "ci", Group: "g:w", Cmid: "3", System: true, TS: 7},
	}
	groups, asked := GroupAsks(batch)
	if !slices.Equal(groups, []string{"g:r", "g:w"}) || !slices.Equal(asked["g:w"], []string{"alice", "bob", "carol", "ci"}) {
		t.Fatalf("asks %v %v", groups, asked)
	}
	members := func(us ...string) map[string]Member {
		m := make(map[string]Member)
		for _, u := range us {
			m[u] = Member{User: u, Role: RoleMember}
		}
		return m
	}
	state := map[string]*GroupState{
		"g:w": {LastSeq: 3, Fanout: FanoutWrite, Members: members("alice", "bob", "carol")},
		"g:r": {LastSeq: 9, Fanout: FanoutRead, Members: members("bob")},
	}
	if state["g:w"].MembersToRead(asked["g:w"]) != nil || !slices.Equal(state["g:r"].MembersToRead(asked["g:r"]), []string{"bob"}) {
		t.Fatal("MembersToRead: all for write fan-out, the asked for read")
	}
	plan := DecideSends(batch, nil, func(r *SendRequest) error { return RefuseGroup(r, state[r.Group]) })
	w := plan.Group(state)
	if w.Conv["g:w"] != 2 || w.Conv["g:r"] != 1 || w.User["alice"] != 2 || w.User["bob"] != 2 || len(w.User) != 3 {
		t.Fatalf("counters %+v", w.Counters)
	}
	rows, err := w.Number(map[string]int64{"g:w": 5, "g:r": 10}, map[string]int64{"alice": 2, "bob": 2, "carol": 2})
	if err != nil {
		t.Fatal(err)
	}
	r := plan.Results
	if r[0].Msg.Seq != 4 || !slices.Equal(r[0].Msg.Mentions, []string{"alice", "carol"}) || len(r[0].Events) != 3 || r[0].Broadcast {
		t.Fatalf("write fan-out send %+v", r[0])
	}
	if r[1].Msg.Seq != 10 || !r[1].Broadcast || len(r[1].Events) != 0 {
		t.Fatalf("read fan-out send %+v", r[1])
	}
	if r[2].Msg.Seq != 5 || len(r[2].Events) != 3 || r[2].Events[0].Seq != 2 {
		t.Fatalf("bridge's send %+v", r[2])
	}
	if rows.Messages[0].Mentions != "alice carol" {
		t.Fatalf("mentions column %q", rows.Messages[0].Mentions)
	}
	// The bridge is no member: it has no read position to move.
	if want := []ReadMark{{"g:r", "bob", 10}, {"g:w", "bob", 4}}; !slices.Equal(rows.Reads, want) {
		t.Fatalf("reads %v, want %v", rows.Reads, want)
	}
}
