package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/mqim/mqim/store"
)

// Recall, edit and delete for me [IM-14]: the rules are store's
// (store.MessageChange), the statements these.
const (
	qMsgByID = `SELECT conv_id, seq, sender, cmid, type, body, ts FROM messages WHERE id = ?`
	// The conversation's fan-out ('' if direct) and the user's role in it
	// (NULL if not a member).
	qActor = `SELECT coalesce((SELECT fanout FROM groups WHERE id = ?1), ''),
		(SELECT role FROM members WHERE conv_id = ?1 AND user_id = ?2)`
	qMemberIDs = `SELECT user_id FROM members WHERE conv_id = ?`
	qRecallMsg = `UPDATE messages SET type = ?, body = ?, recalled_at = ? WHERE conv_id = ? AND seq = ?`
	qEditMsg   = `UPDATE messages SET body = ?, edited_at = ? WHERE conv_id = ? AND seq = ?`
	qHideMsg   = `INSERT INTO hidden (user_id, conv_id, seq) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`
)

func init() {
	writeQueries = append(writeQueries, qMsgByID, qActor, qMemberIDs, qRecallMsg, qEditMsg, qHideMsg)
}

// changeMsg runs one change of a message on the writer: it finds the
// message (ErrNotFound if user is not a member of its conversation), lets
// c decide, stores the change and adds its events.
func (s *Store) changeMsg(ctx context.Context, user string, id int64, ts int64, c store.MessageChange) (store.Message, []store.InboxEvent, error) {
	var (
		m      store.Message
		events []store.InboxEvent
	)
	err := s.write(ctx, func(t *txn) error {
		m, events = store.Message{ID: id}, nil
		err := t.queryRow(qMsgByID, id).Scan(&m.Conv, &m.Seq, &m.From, &m.Cmid, &m.Type, &m.Body, &m.TS)
		if errors.Is(err, sql.ErrNoRows) {
			return store.NotFoundError(id)
		}
		if err != nil {
			return err
		}
		var (
			fanout string
			role   *string
		)
		if err := t.queryRow(qActor, m.Conv, user).Scan(&fanout, &role); err != nil {
			return err
		}
		if role == nil {
			return store.NotFoundError(id)
		}
		if changed, err := c.Apply(&m, *role); err != nil || !changed {
			return err
		}
		if changed, err := t.storeChange(c.Kind, user, &m, ts); err != nil || !changed {
			return err
		}
		audience := []string{user}
		if c.ToMembers(fanout) {
			if audience, err = memberIDs(t, m.Conv); err != nil {
				return err
			}
		}
		msg := m
		events, err = t.addEvents(audience, store.InboxEvent{Kind: c.Kind, Conv: m.Conv, ConvSeq: m.Seq, Actor: user,
			TS: ts, Msg: &msg})
		return err
	})
	if err != nil {
		return store.Message{}, nil, fmt.Errorf("%s message %d by %q: %w", c.Kind, id, user, err)
	}
	return m, events, nil
}

// storeChange writes a change of kind to m; changed is false for a delete
// of a message hidden already.
func (t *txn) storeChange(kind, user string, m *store.Message, ts int64) (changed bool, err error) {
	switch kind {
	case store.KindRecall:
		return true, t.exec(qRecallMsg, m.Type, m.Body, ts, m.Conv, m.Seq)
	case store.KindEdit:
		return true, t.exec(qEditMsg, m.Body, ts, m.Conv, m.Seq)
	}
	res, err := t.stmt(qHideMsg).ExecContext(t.ctx, user, m.Conv, m.Seq)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// memberIDs returns the members of conv, sorted.
func memberIDs(t *txn, conv string) ([]string, error) {
	rows, err := t.query(qMemberIDs, conv)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, err
		}
		ids = append(ids, u)
	}
	slices.Sort(ids)
	return ids, rows.Err()
}
