package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
	"github.com/mqim/mqim/store/internal/groupsql"
)

// Page size limits, as in pgstore.
const (
	maxSync             = 1000
	defaultHistory      = 50
	maxHistory          = 200
	defaultConversation = 100
	maxConversation     = 500
)

// MarkRead moves user's read position in conv forward to seq. It runs on the
// writer connection, so nothing changes between reading the positions and
// writing the new one.
func (s *Store) MarkRead(ctx context.Context, user, conv string, seq int64) (store.ReadState, []store.InboxEvent, error) {
	var (
		st     store.ReadState
		events []store.InboxEvent
	)
	if protocol.IsGroupConv(conv) {
		return s.markReadGroup(ctx, user, conv, seq)
	}
	err := s.write(ctx, func(t *txn) error {
		var lastSeq int64
		err := t.queryRow(qLastSeq, conv).Scan(&lastSeq)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var (
			ids     []string
			readSeq = int64(-1)
		)
		rows, err := t.query(qMembers, conv)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			var rs int64
			if err := rows.Scan(&id, &rs); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
			if id == user {
				readSeq = rs
			}
		}
		if err := rows.Err(); err != nil {
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
		if err := t.exec(qSetRead, seq, conv, user); err != nil {
			return err
		}
		for _, id := range ids {
			var n int64
			if err := t.queryRow(qAdvanceUser, 1, id).Scan(&n); err != nil {
				return fmt.Errorf("advance inbox seq of %q: %w", id, err)
			}
			if err := t.exec(qInsertInbox, id, n, kindRead, conv, seq, user, ts); err != nil {
				return err
			}
			events = append(events, store.InboxEvent{User: id, Seq: n, Kind: store.KindRead,
				Conv: conv, ConvSeq: seq, Actor: user, TS: ts})
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
	err := s.read(ctx, func(t *txn) error {
		if limit > 0 {
			rows, err := t.query(qSyncEvents, kindRead, user, after, limit+1) // every kind but read points at a message (ext.go)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var (
					e    store.InboxEvent
					kind int64
					m    nullMessage
				)
				if err := rows.Scan(&e.Seq, &kind, &e.Conv, &e.ConvSeq, &e.Actor, &e.TS,
					&m.id, &m.from, &m.cmid, &m.typ, &m.body, &m.ts, &m.mentions); err != nil {
					return err
				}
				e.User, e.Kind, e.Msg = user, kindName(kind), m.message(e.Conv, e.ConvSeq)
				page.Events = append(page.Events, e)
			}
			if err := rows.Err(); err != nil {
				return err
			}
		}
		// In the same snapshot as the events: Latest is never below them.
		return t.queryRow(qLatest, user).Scan(&page.Latest)
	})
	if err != nil {
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
	before := q.Before
	if before <= 0 {
		before = math.MaxInt64
	}
	// With After (and maybe Before), page forward from After; otherwise page
	// backward from Before or from the newest message.
	ascending := q.After > 0
	var (
		page   store.HistoryPage
		member bool
	)
	err := s.read(ctx, func(t *txn) error {
		if err := t.queryRow(qIsMember, conv, user).Scan(&member); err != nil {
			return err
		}
		if !member {
			return nil
		}
		var (
			rows *sql.Rows
			err  error
		)
		if ascending {
			rows, err = t.query(qHistoryAfter, conv, q.After, before, limit+1, user)
		} else {
			rows, err = t.query(qHistoryBefore, conv, before, limit+1, user)
		}
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				m     store.Message
				ments string
			)
			if err := rows.Scan(&m.ID, &m.Conv, &m.Seq, &m.From, &m.Cmid, &m.Type, &m.Body, &m.TS, &ments); err != nil {
				return err
			}
			m.Mentions = mentions(ments)
			page.Messages = append(page.Messages, m)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if q.ReadBy && protocol.IsGroupConv(conv) {
			return groupsql.ReadBy(ctx, t.tx, dialect, conv, page.Messages)
		}
		return nil
	})
	if err != nil {
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
	return page, nil
}

// Conversations returns user's conversations, the most recently active
// first, in one query.
func (s *Store) Conversations(ctx context.Context, user string, limit int) ([]store.Conversation, error) {
	if limit <= 0 {
		limit = defaultConversation
	}
	limit = min(limit, maxConversation)
	list, err := s.conversations(ctx, user, limit)
	if err != nil {
		return nil, fmt.Errorf("conversations of %q: %w", user, err)
	}
	return list, nil
}

func (s *Store) conversations(ctx context.Context, user string, limit int) ([]store.Conversation, error) {
	rows, err := s.rps[qConversations].QueryContext(ctx, user, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var list []store.Conversation
	for rows.Next() {
		var (
			c store.Conversation
			m nullMessage
		)
		if err := rows.Scan(&c.Conv, &c.Kind, &c.LastSeq, &c.ReadSeq, &c.Peer, &c.PeerReadSeq, &c.Name,
			&m.id, &m.from, &m.cmid, &m.typ, &m.body, &m.ts, &m.mentions); err != nil {
			return nil, err
		}
		c.Unread = max(0, c.LastSeq-c.ReadSeq)
		c.Last = m.message(c.Conv, c.LastSeq)
		list = append(list, c)
	}
	return list, rows.Err()
}

// nullMessage scans the columns of a message that may be missing from an
// outer join.
type nullMessage struct {
	id              sql.NullInt64
	from, cmid, typ sql.NullString
	body            []byte
	ts              sql.NullInt64
	mentions        sql.NullString
}

// mentions splits the stored mentions column.
func mentions(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Fields(s)
}

func (n *nullMessage) message(conv string, seq int64) *store.Message {
	if !n.id.Valid {
		return nil
	}
	return &store.Message{ID: n.id.Int64, Conv: conv, Seq: seq, From: n.from.String, Cmid: n.cmid.String,
		Type: n.typ.String, Body: n.body, TS: n.ts.Int64, Mentions: mentions(n.mentions.String)}
}
