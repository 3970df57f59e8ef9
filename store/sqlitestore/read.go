package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// MarkRead moves user's read position in conv forward to seq. It runs on the
// writer connection, so nothing changes between reading the positions and
// writing the new one.
func (s *Store) MarkRead(ctx context.Context, user, conv string, seq int64) (store.ReadState, []store.InboxEvent, error) {
	var (
		st     store.ReadState
		events []store.InboxEvent
	)
	err := s.write(ctx, func(t *txn) error {
		var lastSeq int64
		err := t.queryRow(qLastSeq, conv).Scan(&lastSeq)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		// A group's read event goes to the reader only: read its position
		// alone, not every member's.
		readSeqs := make(map[string]int64)
		if protocol.IsGroupConv(conv) {
			var rs int64
			switch err := t.queryRow(qReadSeq, conv, user).Scan(&rs); {
			case err == nil:
				readSeqs[user] = rs
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
		} else if err := scanReadSeqs(t, conv, readSeqs); err != nil {
			return err
		}
		var moved bool
		if st, moved, err = store.MoveRead(conv, user, readSeqs, lastSeq, seq); err != nil || !moved {
			return err
		}
		if err := t.exec(qSetRead, st.ReadSeq, conv, user); err != nil {
			return err
		}
		events, err = t.addEvents(store.ReadAudience(conv, user, slices.Collect(maps.Keys(readSeqs))),
			store.InboxEvent{Kind: store.KindRead, Conv: conv, ConvSeq: st.ReadSeq, Actor: user, TS: time.Now().UnixMilli()})
		return err
	})
	if err != nil {
		return store.ReadState{}, nil, fmt.Errorf("mark read %q in %q: %w", user, conv, err)
	}
	return st, events, nil
}

// scanReadSeqs reads every member's read seq in conv.
func scanReadSeqs(t *txn, conv string, into map[string]int64) error {
	rows, err := t.query(qReadSeqs, conv)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			u  string
			rs int64
		)
		if err := rows.Scan(&u, &rs); err != nil {
			return err
		}
		into[u] = rs
	}
	return rows.Err()
}

// Sync returns up to limit inbox events of user after the given seq.
func (s *Store) Sync(ctx context.Context, user string, after int64, limit int) (store.SyncPage, error) {
	var page store.SyncPage
	limit = store.SyncLimit(limit)
	err := s.read(ctx, func(t *txn) error {
		if limit > 0 {
			// Every kind but read points at a message.
			rows, err := t.query(qSyncEvents, store.KindCode(store.KindRead), user, after, limit+1)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var (
					e    = store.InboxEvent{User: user}
					kind int
					m    store.MessageCols
				)
				if err := rows.Scan(append([]any{&e.Seq, &kind, &e.Conv, &e.ConvSeq, &e.Actor, &e.TS}, m.Dest()...)...); err != nil {
					return err
				}
				e.Kind, e.Msg = store.KindName(kind), m.Message(e.Conv, e.ConvSeq)
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
	page.Finish(after, limit)
	return page, nil
}

// History returns a page of conv, ascending by seq, from one snapshot.
func (s *Store) History(ctx context.Context, user, conv string, q store.HistoryQuery) (store.HistoryPage, error) {
	r := q.Range()
	var page store.HistoryPage
	err := s.read(ctx, func(t *txn) error {
		var member bool
		if err := t.queryRow(qIsMember, conv, user).Scan(&member); err != nil {
			return err
		}
		if !member {
			return store.NotMemberError(user, conv)
		}
		var (
			rows *sql.Rows
			err  error
		)
		if r.Ascending {
			rows, err = t.query(qHistoryAfter, conv, r.After, r.Before, r.Limit+1, user)
		} else {
			rows, err = t.query(qHistoryBefore, conv, r.Before, r.Limit+1, user)
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
			m.Mentions = store.ParseMentions(ments)
			page.Messages = append(page.Messages, m)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if !q.ReadBy || !protocol.IsGroupConv(conv) || len(page.Messages) == 0 {
			return nil
		}
		reads := make(map[string]int64)
		if err := scanReadSeqs(t, conv, reads); err != nil {
			return err
		}
		store.CountReadBy(page.Messages, reads)
		return nil
	})
	if err != nil {
		return store.HistoryPage{}, fmt.Errorf("history of %q: %w", conv, err)
	}
	r.Finish(&page)
	return page, nil
}

// Conversations returns user's conversations, the most recently active
// first, in one query.
func (s *Store) Conversations(ctx context.Context, user string, limit int) ([]store.Conversation, error) {
	list, err := s.conversations(ctx, user, store.ConversationsLimit(limit))
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
			m store.MessageCols
		)
		if err := rows.Scan(append([]any{&c.Conv, &c.Kind, &c.LastSeq, &c.ReadSeq, &c.Peer, &c.PeerReadSeq, &c.Name},
			m.Dest()...)...); err != nil {
			return nil, err
		}
		c.Unread = max(0, c.LastSeq-c.ReadSeq)
		store.KeepDeletedPeer(&c, user)
		c.Last = m.Message(c.Conv, c.LastSeq)
		list = append(list, c)
	}
	return list, rows.Err()
}
