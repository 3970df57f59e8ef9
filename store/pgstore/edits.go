package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mqim/mqim/store"
)

// changeMsg runs one change of a message [IM-14] in a transaction: it
// finds the message (ErrNotFound if user is not a member of its
// conversation), locks the conversation row first and the users' rows
// after it (the lock order of Append and MarkRead), lets c decide, stores
// the change and adds its events.
func (s *Store) changeMsg(ctx context.Context, user string, id int64, ts int64, c store.MessageChange) (store.Message, []store.InboxEvent, error) {
	var (
		m      store.Message
		events []store.InboxEvent
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		m, events = store.Message{ID: id}, nil
		var (
			found  bool
			fanout string
			role   *string
		)
		// One round trip. FOR UPDATE: two changes of one message (a recall
		// and an edit on two nodes) run one after the other, each seeing
		// the other's result.
		b := &pgx.Batch{}
		b.Queue(`SELECT conv_id, seq, sender, cmid, type, body, ts FROM messages WHERE id = $1 FOR UPDATE`, id).
			QueryRow(optionalRow(&found, &m.Conv, &m.Seq, &m.From, &m.Cmid, &m.Type, &m.Body, &m.TS))
		const conv = `(SELECT conv_id FROM messages WHERE id = $1)`
		b.Queue(`SELECT 1 FROM conversations WHERE id = `+conv+` FOR NO KEY UPDATE`, id)
		// The conversation's fan-out ('' if direct) and the user's role in
		// it (NULL if not a member).
		b.Queue(`SELECT coalesce((SELECT fanout FROM groups WHERE id = `+conv+`), ''),
				(SELECT role FROM members WHERE conv_id = `+conv+` AND user_id = $2)`, id, user).
			QueryRow(func(row pgx.Row) error { return row.Scan(&fanout, &role) })
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		if !found || role == nil {
			return store.NotFoundError(id)
		}
		if changed, err := c.Apply(&m, *role); err != nil || !changed {
			return err
		}
		changed := true
		audience := []string{user}
		b = &pgx.Batch{}
		switch c.Kind {
		case store.KindRecall:
			b.Queue(`UPDATE messages SET type = $3, body = $4, recalled_at = $5 WHERE conv_id = $1 AND seq = $2`,
				m.Conv, m.Seq, m.Type, m.Body, ts)
		case store.KindEdit:
			b.Queue(`UPDATE messages SET body = $3, edited_at = $4 WHERE conv_id = $1 AND seq = $2`, m.Conv, m.Seq, m.Body, ts)
		default:
			b.Queue(`INSERT INTO hidden (user_id, conv_id, seq) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, user, m.Conv, m.Seq).
				Exec(func(tag pgconn.CommandTag) error { changed = tag.RowsAffected() > 0; return nil })
		}
		if c.ToMembers(fanout) {
			b.Queue(`SELECT user_id FROM members WHERE conv_id = $1 ORDER BY user_id COLLATE "C"`, m.Conv).
				Query(func(rows pgx.Rows) (err error) {
					audience, err = pgx.CollectRows(rows, pgx.RowTo[string])
					return err
				})
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil || !changed {
			return err
		}
		msg := m
		b = &pgx.Batch{}
		added := queueEvents(b, audience, store.InboxEvent{Kind: c.Kind, Conv: m.Conv, ConvSeq: m.Seq, Actor: user, TS: ts, Msg: &msg})
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		var err error
		events, err = added()
		return err
	})
	if err != nil {
		return store.Message{}, nil, fmt.Errorf("%s message %d by %q: %w", c.Kind, id, user, err)
	}
	return m, events, nil
}
