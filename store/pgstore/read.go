package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
	"github.com/mqim/mqim/store/internal/groupsql"
)

// Page size limits.
const (
	maxSync             = 1000
	defaultHistory      = 50
	maxHistory          = 200
	defaultConversation = 100
	maxConversation     = 500
)

// MarkRead moves user's read position in conv forward to seq.
func (s *Store) MarkRead(ctx context.Context, user, conv string, seq int64) (store.ReadState, []store.InboxEvent, error) {
	var (
		st     store.ReadState
		events []store.InboxEvent
	)
	if protocol.IsGroupConv(conv) {
		return s.markReadGroup(ctx, user, conv, seq)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var (
			lastSeq int64
			ids     []string
			readSeq = int64(-1)
		)
		b := &pgx.Batch{}
		// The conversation row is locked first, as in Append: every change
		// of a read_seq in the conversation happens under this lock.
		b.Queue(`SELECT last_seq FROM conversations WHERE id = $1 FOR NO KEY UPDATE`, conv).
			QueryRow(func(row pgx.Row) error {
				if err := row.Scan(&lastSeq); !errors.Is(err, pgx.ErrNoRows) {
					return err
				}
				return nil
			})
		b.Queue(`SELECT user_id, read_seq FROM members WHERE conv_id = $1 ORDER BY user_id`, conv).
			Query(func(rows pgx.Rows) error {
				var id string
				var rs int64
				_, err := pgx.ForEachRow(rows, []any{&id, &rs}, func() error {
					ids = append(ids, id)
					if id == user {
						readSeq = rs
					}
					return nil
				})
				return err
			})
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		if readSeq < 0 {
			return store.ErrNotMember
		}
		seq = min(seq, lastSeq)
		if seq <= readSeq {
			st = store.ReadState{Conv: conv, ReadSeq: readSeq, Unread: max(0, lastSeq-readSeq)}
			return nil
		}

		ts := time.Now().UnixMilli()
		b = &pgx.Batch{}
		b.Queue(`SELECT id FROM users WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, ids)
		b.Queue(`UPDATE members SET read_seq = $3 WHERE conv_id = $1 AND user_id = $2`, conv, user, seq)
		b.Queue(`WITH u AS (
				UPDATE users SET inbox_seq = inbox_seq + 1 WHERE id = ANY($1) RETURNING id, inbox_seq
			)
			INSERT INTO inbox (user_id, seq, kind, conv_id, conv_seq, actor, ts)
			SELECT id, inbox_seq, $2, $3, $4, $5, $6 FROM u
			RETURNING user_id, seq`, ids, kindRead, conv, seq, user, ts).
			Query(func(rows pgx.Rows) error {
				var e store.InboxEvent
				_, err := pgx.ForEachRow(rows, []any{&e.User, &e.Seq}, func() error {
					events = append(events, store.InboxEvent{User: e.User, Seq: e.Seq, Kind: store.KindRead,
						Conv: conv, ConvSeq: seq, Actor: user, TS: ts})
					return nil
				})
				return err
			})
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		st = store.ReadState{Conv: conv, ReadSeq: seq, Unread: lastSeq - seq}
		return nil
	})
	if err != nil {
		return store.ReadState{}, nil, fmt.Errorf("mark read %q in %q: %w", user, conv, err)
	}
	return st, events, nil
}

// Sync returns up to limit inbox events of user after the given seq.
func (s *Store) Sync(ctx context.Context, user string, after int64, limit int) (store.SyncPage, error) {
	var page store.SyncPage
	limit = min(limit, maxSync)
	b := &pgx.Batch{}
	if limit > 0 {
		b.Queue(`SELECT i.seq, i.kind, i.conv_id, i.conv_seq, i.actor, i.ts,
				m.id, m.sender, m.cmid, m.type, m.body, m.ts, m.mentions
			FROM inbox i
			LEFT JOIN messages m ON i.kind <> $4 AND m.conv_id = i.conv_id AND m.seq = i.conv_seq
			WHERE i.user_id = $1 AND i.seq > $2
			ORDER BY i.seq
			LIMIT $3`, user, after, limit+1, kindRead). // every kind but read points at a message (ext.go)
			Query(func(rows pgx.Rows) error {
				var (
					e    store.InboxEvent
					kind int16
					m    nullMessage
				)
				_, err := pgx.ForEachRow(rows, []any{&e.Seq, &kind, &e.Conv, &e.ConvSeq, &e.Actor, &e.TS,
					&m.id, &m.from, &m.cmid, &m.typ, &m.body, &m.ts, &m.mentions}, func() error {
					ev := store.InboxEvent{User: user, Seq: e.Seq, Kind: kindName(kind), Conv: e.Conv,
						ConvSeq: e.ConvSeq, Actor: e.Actor, TS: e.TS, Msg: m.message(e.Conv, e.ConvSeq)}
					page.Events = append(page.Events, ev)
					return nil
				})
				return err
			})
	}
	// Read after the events, so that Latest is never below the last of them.
	b.Queue(`SELECT coalesce((SELECT inbox_seq FROM users WHERE id = $1), 0)`, user).
		QueryRow(func(row pgx.Row) error { return row.Scan(&page.Latest) })
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return store.SyncPage{}, fmt.Errorf("sync %q: %w", user, err)
	}
	if limit > 0 {
		page.HasMore = len(page.Events) > limit
		if page.HasMore {
			page.Events = page.Events[:limit]
		}
	} else {
		page.HasMore = page.Latest > after
	}
	return page, nil
}

// History returns a page of conv, ascending by seq.
func (s *Store) History(ctx context.Context, user, conv string, q store.HistoryQuery) (store.HistoryPage, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = defaultHistory
	}
	limit = min(limit, maxHistory)
	var (
		page   store.HistoryPage
		member bool
	)
	b := &pgx.Batch{}
	b.Queue(`SELECT EXISTS (SELECT 1 FROM members WHERE conv_id = $1 AND user_id = $2)`, conv, user).
		QueryRow(func(row pgx.Row) error { return row.Scan(&member) })
	const cols = `SELECT id, conv_id, seq, sender, cmid, type, body, ts, mentions FROM messages `
	collect := func(rows pgx.Rows) error {
		var (
			m     store.Message
			ments string
		)
		_, err := pgx.ForEachRow(rows, []any{&m.ID, &m.Conv, &m.Seq, &m.From, &m.Cmid, &m.Type, &m.Body, &m.TS, &ments},
			func() error {
				m.Mentions = mentions(ments)
				page.Messages = append(page.Messages, m)
				m = store.Message{}
				return nil
			})
		return err
	}
	before := q.Before
	if before <= 0 {
		before = math.MaxInt64
	}
	// With After (and maybe Before), page forward from After; otherwise page
	// backward from Before or from the newest message.
	ascending := q.After > 0
	if ascending {
		b.Queue(cols+`WHERE conv_id = $1 AND seq > $2 AND seq < $3 AND NOT EXISTS (SELECT 1 FROM hidden h WHERE h.user_id = $5 AND h.conv_id = messages.conv_id AND h.seq = messages.seq) ORDER BY seq LIMIT $4`,
			conv, q.After, before, limit+1, user).Query(collect)
	} else {
		b.Queue(cols+`WHERE conv_id = $1 AND seq < $2 AND NOT EXISTS (SELECT 1 FROM hidden h WHERE h.user_id = $4 AND h.conv_id = messages.conv_id AND h.seq = messages.seq) ORDER BY seq DESC LIMIT $3`,
			conv, before, limit+1, user).Query(collect)
	}
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return store.HistoryPage{}, fmt.Errorf("history of %q: %w", conv, err)
	}
	if !member {
		return store.HistoryPage{}, fmt.Errorf("history of %q for %q: %w", conv, user, store.ErrNotMember)
	}
	page.HasMore = len(page.Messages) > limit
	if page.HasMore {
		page.Messages = page.Messages[:limit]
	}
	if !ascending {
		slices.Reverse(page.Messages)
	}
	if q.ReadBy && protocol.IsGroupConv(conv) {
		// Read after the page: a count may only be higher than when the
		// page was read, never lower.
		if err := groupsql.ReadBy(ctx, s.db, dialect, conv, page.Messages); err != nil {
			return store.HistoryPage{}, fmt.Errorf("read counts of %q: %w", conv, err)
		}
	}
	return page, nil
}

// Conversations returns user's conversations, the most recently active
// first, in one query.
func (s *Store) Conversations(ctx context.Context, user string, limit int) ([]store.Conversation, error) {
	if limit <= 0 {
		limit = defaultConversation
	}
	limit = min(limit, maxConversation)
	rows, _ := s.pool.Query(ctx, `SELECT c.id, c.kind, c.last_seq, me.read_seq,
			coalesce(p.user_id, ''), coalesce(p.read_seq, 0), coalesce(g.name, ''),
			m.id, m.sender, m.cmid, m.type, m.body, m.ts, m.mentions
		FROM members me
		JOIN conversations c ON c.id = me.conv_id
		LEFT JOIN groups g ON g.id = c.id
		LEFT JOIN members p ON c.kind = $3 AND p.conv_id = c.id AND p.user_id <> me.user_id
		LEFT JOIN messages m ON m.conv_id = c.id AND m.seq = c.last_seq
		WHERE me.user_id = $1
		ORDER BY c.last_ts DESC, c.id COLLATE "C"
		LIMIT $2`, user, limit, store.ConvDirect)
	var (
		c    store.Conversation
		m    nullMessage
		list []store.Conversation
	)
	_, err := pgx.ForEachRow(rows, []any{&c.Conv, &c.Kind, &c.LastSeq, &c.ReadSeq, &c.Peer, &c.PeerReadSeq, &c.Name,
		&m.id, &m.from, &m.cmid, &m.typ, &m.body, &m.ts, &m.mentions}, func() error {
		c.Unread = max(0, c.LastSeq-c.ReadSeq)
		c.Last = m.message(c.Conv, c.LastSeq)
		list = append(list, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("conversations of %q: %w", user, err)
	}
	return list, nil
}

// nullMessage scans the columns of a message that may be missing from an
// outer join.
type nullMessage struct {
	id              *int64
	from, cmid, typ *string
	body            []byte
	ts              *int64
	mentions        *string
}

// mentions splits the stored mentions column.
func mentions(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Fields(s)
}

func (n *nullMessage) message(conv string, seq int64) *store.Message {
	if n.id == nil {
		return nil
	}
	return &store.Message{ID: *n.id, Conv: conv, Seq: seq, From: *n.from, Cmid: *n.cmid, Type: *n.typ,
		Body: n.body, TS: *n.ts, Mentions: mentions(deref(n.mentions))}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
