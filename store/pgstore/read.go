package pgstore

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// MarkRead moves user's read position in conv forward to seq.
func (s *Store) MarkRead(ctx context.Context, user, conv string, seq int64) (st store.ReadState, events []store.InboxEvent, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var lastSeq int64
		readSeqs := make(map[string]int64)
		b := &pgx.Batch{}
		// The conversation row is locked first, as in Append: every change
		// of a read_seq in the conversation happens under this lock.
		var exists bool // unused: a conversation that does not exist has no member
		b.Queue(`SELECT last_seq FROM conversations WHERE id = $1 FOR NO KEY UPDATE`, conv).
			QueryRow(optionalRow(&exists, &lastSeq))
		// A group's read event goes to the reader only: read its position
		// alone, not every member's.
		if protocol.IsGroupConv(conv) {
			b.Queue(`SELECT user_id, read_seq FROM members WHERE conv_id = $1 AND user_id = $2`, conv, user).
				Query(collectInt(readSeqs))
		} else {
			b.Queue(`SELECT user_id, read_seq FROM members WHERE conv_id = $1`, conv).Query(collectInt(readSeqs))
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		var moved bool
		if st, moved, err = store.MoveRead(conv, user, readSeqs, lastSeq, seq); err != nil || !moved {
			return err
		}
		b = &pgx.Batch{}
		added := queueEvents(b, store.ReadAudience(conv, user, slices.Collect(maps.Keys(readSeqs))),
			store.InboxEvent{Kind: store.KindRead, Conv: conv, ConvSeq: st.ReadSeq, Actor: user, TS: time.Now().UnixMilli()})
		b.Queue(`UPDATE members SET read_seq = $3 WHERE conv_id = $1 AND user_id = $2`, conv, user, st.ReadSeq)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		events, err = added()
		return err
	})
	if err != nil {
		return store.ReadState{}, nil, fmt.Errorf("mark read %q in %q: %w", user, conv, err)
	}
	return st, events, nil
}

// Sync returns up to limit inbox events of user after the given seq.
func (s *Store) Sync(ctx context.Context, user string, after int64, limit int) (store.SyncPage, error) {
	var page store.SyncPage
	limit = store.SyncLimit(limit)
	b := &pgx.Batch{}
	if limit > 0 {
		// Every kind but read points at a message.
		b.Queue(`SELECT i.seq, i.kind, i.conv_id, i.conv_seq, i.actor, i.ts,
				m.id, m.sender, m.cmid, m.type, m.body, m.ts, m.mentions
			FROM inbox i
			LEFT JOIN messages m ON i.kind <> $4 AND m.conv_id = i.conv_id AND m.seq = i.conv_seq
			WHERE i.user_id = $1 AND i.seq > $2
			ORDER BY i.seq
			LIMIT $3`, user, after, limit+1, store.KindCode(store.KindRead)).
			Query(func(rows pgx.Rows) error {
				var (
					e    store.InboxEvent
					kind int
					m    store.MessageCols
				)
				_, err := pgx.ForEachRow(rows, append([]any{&e.Seq, &kind, &e.Conv, &e.ConvSeq, &e.Actor, &e.TS}, m.Dest()...), func() error {
					ev := store.InboxEvent{User: user, Seq: e.Seq, Kind: store.KindName(kind), Conv: e.Conv,
						ConvSeq: e.ConvSeq, Actor: e.Actor, TS: e.TS, Msg: m.Message(e.Conv, e.ConvSeq)}
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
	page.Finish(after, limit)
	return page, nil
}

// History returns a page of conv, ascending by seq.
func (s *Store) History(ctx context.Context, user, conv string, q store.HistoryQuery) (store.HistoryPage, error) {
	r := q.Range()
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
				m.Mentions = store.ParseMentions(ments)
				page.Messages = append(page.Messages, m)
				m = store.Message{}
				return nil
			})
		return err
	}
	if r.Ascending {
		b.Queue(cols+`WHERE conv_id = $1 AND seq > $2 AND seq < $3 AND NOT EXISTS (SELECT 1 FROM hidden h WHERE h.user_id = $5 AND h.conv_id = messages.conv_id AND h.seq = messages.seq) ORDER BY seq LIMIT $4`,
			conv, r.After, r.Before, r.Limit+1, user).Query(collect)
	} else {
		b.Queue(cols+`WHERE conv_id = $1 AND seq < $2 AND NOT EXISTS (SELECT 1 FROM hidden h WHERE h.user_id = $4 AND h.conv_id = messages.conv_id AND h.seq = messages.seq) ORDER BY seq DESC LIMIT $3`,
			conv, r.Before, r.Limit+1, user).Query(collect)
	}
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return store.HistoryPage{}, fmt.Errorf("history of %q: %w", conv, err)
	}
	if !member {
		return store.HistoryPage{}, fmt.Errorf("history of %q: %w", conv, store.NotMemberError(user, conv))
	}
	r.Finish(&page)
	if q.ReadBy && protocol.IsGroupConv(conv) && len(page.Messages) > 0 {
		// Read after the page: a count may only be higher than when the
		// page was read, never lower.
		reads := make(map[string]int64)
		rows, _ := s.pool.Query(ctx, `SELECT user_id, read_seq FROM members WHERE conv_id = $1`, conv)
		if err := collectInt(reads)(rows); err != nil {
			return store.HistoryPage{}, fmt.Errorf("read counts of %q: %w", conv, err)
		}
		store.CountReadBy(page.Messages, reads)
	}
	return page, nil
}

// Conversations returns user's conversations, the most recently active
// first, in one query.
func (s *Store) Conversations(ctx context.Context, user string, limit int) ([]store.Conversation, error) {
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
		LIMIT $2`, user, store.ConversationsLimit(limit), store.ConvDirect)
	var (
		c    store.Conversation
		m    store.MessageCols
		list []store.Conversation
	)
	_, err := pgx.ForEachRow(rows, append([]any{&c.Conv, &c.Kind, &c.LastSeq, &c.ReadSeq, &c.Peer, &c.PeerReadSeq, &c.Name},
		m.Dest()...), func() error {
		c.Unread = max(0, c.LastSeq-c.ReadSeq)
		store.KeepDeletedPeer(&c, user)
		c.Last = m.Message(c.Conv, c.LastSeq)
		list = append(list, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("conversations of %q: %w", user, err)
	}
	return list, nil
}
