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
	// The conversation's fan-out ('' if direct) and last seq, and the
	// user's role in it (NULL if not a member).
	qActor = `SELECT coalesce((SELECT fanout FROM groups WHERE id = ?1), ''),
		(SELECT last_seq FROM conversations WHERE id = ?1),
		(SELECT role FROM members WHERE conv_id = ?1 AND user_id = ?2)`
	qMemberIDs = `SELECT user_id FROM members WHERE conv_id = ?`
	qRecallMsg = `UPDATE messages SET type = ?, body = ?, recalled_at = ? WHERE conv_id = ? AND seq = ?`
	qEditMsg   = `UPDATE messages SET body = ?, edited_at = ? WHERE conv_id = ? AND seq = ?`
	qHideMsg   = `INSERT INTO hidden (user_id, conv_id, seq) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`
	// The text of the earlier edit events of a recalled message goes.
	qScrubEdits = `UPDATE messages SET body = ? WHERE conv_id = ? AND ref_seq = ? AND type = '` + store.TypeEdit + `'`
)

func init() {
	writeQueries = append(writeQueries, qMsgByID, qActor, qMemberIDs, qRecallMsg, qEditMsg, qHideMsg, qScrubEdits)
}

// changeMsg runs one change of a message on the writer: it finds the
// message (ErrNotFound if user is not a member of its conversation), lets
// c decide, stores the change and its timeline event, and adds its inbox
// events.
func (s *Store) changeMsg(ctx context.Context, user string, id int64, at store.Stamp, c store.MessageChange) (store.ChangeResult, error) {
	var res store.ChangeResult
	err := s.write(ctx, func(t *txn) error {
		res = store.ChangeResult{Msg: store.Message{ID: id}}
		m := &res.Msg
		err := t.queryRow(qMsgByID, id).Scan(&m.Conv, &m.Seq, &m.From, &m.Cmid, &m.Type, &m.Body, &m.TS)
		if errors.Is(err, sql.ErrNoRows) {
			return store.NotFoundError(id)
		}
		if err != nil {
			return err
		}
		var (
			fanout  string
			role    *string
			lastSeq int64
		)
		if err := t.queryRow(qActor, m.Conv, user).Scan(&fanout, &lastSeq, &role); err != nil {
			return err
		}
		if role == nil {
			return store.NotFoundError(id)
		}
		if changed, err := c.Apply(m, *role); err != nil || !changed {
			return err
		}
		if changed, err := t.storeChange(c.Kind, user, m, at.TS); err != nil || !changed {
			return err
		}
		ev, err := c.Event(fanout, m, user, at, lastSeq)
		if err != nil {
			return err
		}
		if ev != nil {
			if err := t.storeEvent(ev); err != nil {
				return err
			}
			res.Timeline = &ev.Msg
		}
		audience := []string{user}
		if c.ToMembers(fanout) {
			if audience, err = memberIDs(t, m.Conv); err != nil {
				return err
			}
		}
		msg := *m
		res.Events, err = t.addEvents(audience, store.InboxEvent{Kind: c.Kind, Conv: m.Conv, ConvSeq: m.Seq, Actor: user,
			TS: at.TS, Msg: &msg})
		return err
	})
	if err != nil {
		return store.ChangeResult{}, fmt.Errorf("%s message %d by %q: %w", c.Kind, id, user, err)
	}
	return res, nil
}

// storeEvent stores a change's timeline event at the conversation's next
// seq; the actor has read up to it, as a sender has its message.
func (t *txn) storeEvent(ev *store.ChangeEvent) error {
	m := &ev.Msg
	var seq int64
	if err := t.queryRow(qAdvanceConv, 1, m.TS, m.Conv).Scan(&seq); err != nil {
		return fmt.Errorf("advance seq of %q: %w", m.Conv, err)
	}
	if seq != m.Seq {
		return fmt.Errorf("%s event in %q: seq %d, planned %d", m.Type, m.Conv, seq, m.Seq)
	}
	if err := t.insertMessage(&ev.Row); err != nil {
		return err
	}
	if ev.Scrub != nil {
		if err := t.exec(qScrubEdits, ev.Scrub, m.Conv, ev.Row.RefSeq); err != nil {
			return err
		}
	}
	return t.exec(qSenderRead, m.Seq, m.Conv, m.From)
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
