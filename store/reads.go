package store

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/mqim/mqim/protocol"
)

// The rules of reads and read positions, shared by the implementations.

// MoveRead decides a move of user's read position in conv, whose last seq
// is lastSeq, to seq [IM-7.6], given the read seqs of the members
// (ErrNotMember if user is not among them): it moves forward only, to seq
// clamped to lastSeq. moved says it did; st is the state after.
func MoveRead(conv, user string, readSeqs map[string]int64, lastSeq, seq int64) (st ReadState, moved bool, err error) {
	readSeq, ok := readSeqs[user]
	if !ok {
		return ReadState{}, false, NotMemberError(user, conv)
	}
	seq = min(seq, lastSeq)
	if seq <= readSeq {
		return ReadState{Conv: conv, ReadSeq: readSeq, Unread: max(0, lastSeq-readSeq)}, false, nil
	}
	return ReadState{Conv: conv, ReadSeq: seq, Unread: lastSeq - seq}, true, nil
}

// ReadAudience returns who gets the read event of user in conv, sorted:
// in a group the reader's inbox only [IM-11.7-1], in a direct conversation
// every member (the reader's other devices and the peer) [IM-7.6].
func ReadAudience(conv, user string, members []string) []string {
	if protocol.IsGroupConv(conv) {
		return []string{user}
	}
	return sortedCopy(members)
}

// CountReadBy fills Message.ReadBy of a page of group messages
// [IM-11.7-2] from every member's read seq: the members other than the
// sender whose read position is at or after the message.
func CountReadBy(msgs []Message, readSeqs map[string]int64) {
	reads := make([]int64, 0, len(readSeqs))
	for _, s := range readSeqs {
		reads = append(reads, s)
	}
	slices.Sort(reads)
	for i := range msgs {
		m := &msgs[i]
		at, _ := slices.BinarySearchFunc(reads, m.Seq, cmp.Compare[int64])
		n := int64(len(reads) - at)
		if s, ok := readSeqs[m.From]; ok && s >= m.Seq {
			n--
		}
		m.ReadBy = n
	}
}

// EventsFor returns one event like ev for each user, with the user's new
// inbox seq from seqs: the rows a change adds to the inboxes of users.
func EventsFor(users []string, seqs map[string]int64, ev InboxEvent) ([]InboxEvent, error) {
	events := make([]InboxEvent, 0, len(users))
	for _, u := range users {
		seq, ok := seqs[u]
		if !ok {
			return nil, fmt.Errorf("inbox counter of %q not moved", u)
		}
		e := ev
		e.User, e.Seq = u, seq
		events = append(events, e)
	}
	return events, nil
}

// Page sizes.
const (
	maxSync             = 1000
	defaultHistory      = 50
	maxHistory          = 200
	defaultConversation = 100
	maxConversation     = 500
)

// SyncLimit is the most events a Sync reads for limit. It reads one more,
// to tell whether there are more (SyncPage.Finish).
func SyncLimit(limit int) int { return min(limit, maxSync) }

// Finish sets HasMore of a page read with SyncLimit's limit (and one more
// event) after after, and drops the one more.
func (p *SyncPage) Finish(after int64, limit int) {
	if limit <= 0 {
		p.HasMore = p.Latest > after
		return
	}
	p.HasMore = len(p.Events) > limit
	if p.HasMore {
		p.Events = p.Events[:limit]
	}
}

// HistoryRange is what a HistoryQuery reads: up to Limit (and one more,
// to tell whether there are more) messages between the exclusive bounds
// After and Before, the oldest first if Ascending, else the newest first.
type HistoryRange struct {
	Limit         int
	After, Before int64
	Ascending     bool
}

// Range returns the range q reads: with After (and maybe Before), forward
// from After; otherwise backward from Before or from the newest message.
func (q HistoryQuery) Range() HistoryRange {
	r := HistoryRange{Limit: q.Limit, After: q.After, Before: q.Before, Ascending: q.After > 0}
	if r.Limit <= 0 {
		r.Limit = defaultHistory
	}
	r.Limit = min(r.Limit, maxHistory)
	if r.Before <= 0 {
		r.Before = math.MaxInt64
	}
	return r
}

// Finish sets HasMore of a page read in r, drops the one more message and
// puts the page in ascending order.
func (r HistoryRange) Finish(p *HistoryPage) {
	p.HasMore = len(p.Messages) > r.Limit
	if p.HasMore {
		p.Messages = p.Messages[:r.Limit]
	}
	if !r.Ascending {
		slices.Reverse(p.Messages)
	}
}

// ConversationsLimit is the most conversations read for limit.
func ConversationsLimit(limit int) int {
	if limit <= 0 {
		limit = defaultConversation
	}
	return min(limit, maxConversation)
}

// MessageCols scans the columns of a message that may be missing from an
// outer join (id, sender, cmid, type, body, ts, mentions), with
// database/sql and pgx alike.
type MessageCols struct {
	id, ts          *int64
	from, cmid, typ *string
	body            []byte
	mentions        *string
}

// Dest returns the scan destinations, in column order.
func (c *MessageCols) Dest() []any {
	return []any{&c.id, &c.from, &c.cmid, &c.typ, &c.body, &c.ts, &c.mentions}
}

// Message returns the message scanned as the one at seq of conv, or nil if
// it was missing.
func (c *MessageCols) Message(conv string, seq int64) *Message {
	if c.id == nil {
		return nil
	}
	return &Message{ID: *c.id, Conv: conv, Seq: seq, From: *c.from, Cmid: *c.cmid, Type: *c.typ,
		Body: c.body, TS: *c.ts, Mentions: ParseMentions(Deref(c.mentions))}
}

func sortedCopy(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return out
}
