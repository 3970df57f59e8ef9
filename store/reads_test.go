package store

import (
	"errors"
	"math"
	"slices"
	"testing"
)

func TestMoveRead(t *testing.T) {
	reads := map[string]int64{"alice": 3, "bob": 0}
	for _, c := range []struct {
		name      string
		user      string
		last, seq int64
		want      ReadState
		moved     bool
		err       error
	}{
		{"forward", "alice", 10, 5, ReadState{Conv: "c", ReadSeq: 5, Unread: 5}, true, nil},
		{"clamped", "alice", 10, 99, ReadState{Conv: "c", ReadSeq: 10}, true, nil},
		{"backward", "alice", 10, 2, ReadState{Conv: "c", ReadSeq: 3, Unread: 7}, false, nil},
		{"same", "alice", 10, 3, ReadState{Conv: "c", ReadSeq: 3, Unread: 7}, false, nil},
		{"empty conversation", "bob", 0, 5, ReadState{Conv: "c"}, false, nil},
		{"not a member", "carol", 10, 5, ReadState{}, false, ErrNotMember},
	} {
		st, moved, err := MoveRead("c", c.user, reads, c.last, c.seq)
		if st != c.want || moved != c.moved || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("%s: %+v %v %v; want %+v %v %v", c.name, st, moved, err, c.want, c.moved, c.err)
		}
	}
}

func TestReadAudience(t *testing.T) {
	if got := ReadAudience("d:alice:bob", "alice", []string{"bob", "alice"}); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Errorf("direct: %v", got)
	}
	if got := ReadAudience("g:1", "alice", []string{"bob", "alice"}); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("group: %v", got)
	}
}

func TestCountReadBy(t *testing.T) {
	msgs := []Message{{Seq: 1, From: "alice"}, {Seq: 2, From: "bob"}, {Seq: 3, From: "alice"}, {Seq: 4, From: "ci"}}
	CountReadBy(msgs, map[string]int64{"alice": 3, "bob": 2, "carol": 1})
	var got []int64
	for _, m := range msgs {
		got = append(got, m.ReadBy)
	}
	// 1: bob, carol (not alice, its sender); 2: alice (not bob); 3: none
	// but alice, the sender; 4: nobody (from a bridge, no member).
	if want := []int64{2, 1, 0, 0}; !slices.Equal(got, want) {
		t.Fatalf("read by %v, want %v", got, want)
	}
}

func TestEventsFor(t *testing.T) {
	evs, err := EventsFor([]string{"a", "b"}, map[string]int64{"a": 4, "b": 9}, InboxEvent{Kind: KindRead, Conv: "c", ConvSeq: 2})
	if err != nil || len(evs) != 2 || evs[0].User != "a" || evs[0].Seq != 4 || evs[1].Seq != 9 || evs[1].Kind != KindRead {
		t.Fatalf("%+v %v", evs, err)
	}
	if _, err := EventsFor([]string{"a", "b"}, map[string]int64{"a": 4}, InboxEvent{}); err == nil {
		t.Fatal("a user's counter missing: no error")
	}
}

func TestPages(t *testing.T) {
	if SyncLimit(5000) != maxSync || SyncLimit(10) != 10 || ConversationsLimit(0) != defaultConversation ||
		ConversationsLimit(9999) != maxConversation {
		t.Fatal("limits")
	}
	for _, c := range []struct {
		q    HistoryQuery
		want HistoryRange
	}{
		{HistoryQuery{}, HistoryRange{Limit: defaultHistory, Before: math.MaxInt64}},
		{HistoryQuery{Limit: 1000, Before: 9}, HistoryRange{Limit: maxHistory, Before: 9}},
		{HistoryQuery{Limit: 3, After: 4}, HistoryRange{Limit: 3, After: 4, Before: math.MaxInt64, Ascending: true}},
	} {
		if got := c.q.Range(); got != c.want {
			t.Errorf("%+v: %+v, want %+v", c.q, got, c.want)
		}
	}
	// Backward: newest first as read, one more than the limit.
	p := HistoryPage{Messages: []Message{{Seq: 9}, {Seq: 8}, {Seq: 7}}}
	HistoryRange{Limit: 2}.Finish(&p)
	if !p.HasMore || len(p.Messages) != 2 || p.Messages[0].Seq != 8 || p.Messages[1].Seq != 9 {
		t.Fatalf("backward page %+v", p)
	}
	p = HistoryPage{Messages: []Message{{Seq: 5}, {Seq: 6}}}
	HistoryRange{Limit: 2, Ascending: true}.Finish(&p)
	if p.HasMore || p.Messages[0].Seq != 5 {
		t.Fatalf("forward page %+v", p)
	}
	s := SyncPage{Events: make([]InboxEvent, 3), Latest: 9}
	s.Finish(0, 2)
	if !s.HasMore || len(s.Events) != 2 {
		t.Fatalf("sync page %+v", s)
	}
	s = SyncPage{Latest: 9}
	if s.Finish(8, 0); !s.HasMore {
		t.Fatal("limit 0 after 8 of 9: has more")
	}
	if s.Finish(9, 0); s.HasMore {
		t.Fatal("limit 0 after 9 of 9: no more")
	}
}

func TestMessageCols(t *testing.T) {
	var c MessageCols
	if len(c.Dest()) != 7 || c.Message("c", 1) != nil {
		t.Fatal("an empty scan is no message")
	}
	id, ts, from, cmid, typ, ments := int64(3), int64(4), "alice", "x", "text", "bob carol"
	c = MessageCols{id: &id, ts: &ts, from: &from, cmid: &cmid, typ: &typ, body: []byte{1}, mentions: &ments}
	if m := c.Message("g:1", 2); m == nil || m.ID != 3 || m.Seq != 2 || !slices.Equal(m.Mentions, []string{"bob", "carol"}) {
		t.Fatalf("%+v", m)
	}
}
