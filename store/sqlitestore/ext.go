package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mqim/mqim/store"
)

// Inbox kinds of spec §14 as stored in inbox.kind, from 10 up so that
// other features may take the small numbers (as in pgstore).
const (
	kindRecall int64 = 10
	kindEdit   int64 = 11
	kindDelete int64 = 12
)

var extKinds = map[int64]string{kindRecall: store.KindRecall, kindEdit: store.KindEdit, kindDelete: store.KindDelete}

// emptyBody is the canonical MessagePack of {}.
var emptyBody = []byte{0x80}

const (
	qMsgByID   = `SELECT conv_id, seq, sender, cmid, type, body, ts FROM messages WHERE id = ?`
	qMemberIDs = `SELECT user_id FROM members WHERE conv_id = ?`
	qRecallMsg = `UPDATE messages SET type = ?, body = ?, recalled_at = ? WHERE conv_id = ? AND seq = ?`
	qEditMsg   = `UPDATE messages SET body = ?, edited_at = ? WHERE conv_id = ? AND seq = ?`
	qHideMsg   = `INSERT INTO hidden (user_id, conv_id, seq) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`
)

func init() {
	writeQueries = append(writeQueries, qMsgByID, qMemberIDs, qRecallMsg, qEditMsg, qHideMsg)
}

// changeMsg runs one change of a message on the writer: it finds the
// message and its members (ErrNotFound if user is not one), lets change
// decide and update the row, and adds an event of kind to the inbox of each
// user change returns.
func (s *Store) changeMsg(ctx context.Context, user string, id int64, ts int64, kind int64,
	change func(t *txn, m *store.Message, members []string) (audience []string, err error),
) (store.Message, []store.InboxEvent, error) {
	var (
		m      store.Message
		events []store.InboxEvent
	)
	err := s.write(ctx, func(t *txn) error {
		events = nil
		err := t.queryRow(qMsgByID, id).Scan(&m.Conv, &m.Seq, &m.From, &m.Cmid, &m.Type, &m.Body, &m.TS)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		m.ID = id
		var (
			fanout string
			member bool
		)
		if err := t.tx.QueryRowContext(t.ctx, `SELECT coalesce((SELECT fanout FROM groups WHERE id = ?1), ''),
				EXISTS (SELECT 1 FROM members WHERE conv_id = ?1 AND user_id = ?2)`, m.Conv, user).Scan(&fanout, &member); err != nil {
			return err
		}
		if !member {
			return store.ErrNotFound
		}
		// A read-fan-out group writes no inbox row per member [IM-11.3-3]:
		// the change reaches the actor's inbox, the others see it in history.
		members := []string{user}
		if fanout != "read" {
			rows, err := t.query(qMemberIDs, m.Conv)
			if err != nil {
				return err
			}
			members = members[:0]
			for rows.Next() {
				var u string
				if err := rows.Scan(&u); err != nil {
					rows.Close()
					return err
				}
				members = append(members, u)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		audience, err := change(t, &m, members)
		if err != nil {
			return err
		}
		slices.Sort(audience)
		for _, u := range audience {
			var seq int64
			if err := t.queryRow(qAdvanceUser, 1, u).Scan(&seq); err != nil {
				return err
			}
			if err := t.exec(qInsertInbox, u, seq, kind, m.Conv, m.Seq, user, ts); err != nil {
				return err
			}
			msg := m
			events = append(events, store.InboxEvent{User: u, Seq: seq, Kind: extKinds[kind],
				Conv: m.Conv, ConvSeq: m.Seq, Actor: user, TS: ts, Msg: &msg})
		}
		return nil
	})
	if err != nil {
		return store.Message{}, nil, fmt.Errorf("%s message %d by %q: %w", extKinds[kind], id, user, err)
	}
	return m, events, nil
}

// Recall replaces a message by a recalled marker, for every member.
func (s *Store) Recall(ctx context.Context, user string, id int64, ts int64, window time.Duration) (store.Message, []store.InboxEvent, error) {
	return s.changeMsg(ctx, user, id, ts, kindRecall, func(t *txn, m *store.Message, members []string) ([]string, error) {
		if m.Type == store.TypeGroup {
			return nil, store.ErrNotAllowed // the group's own record of changes [IM-11.2-1]
		}
		if m.From != user || ts-m.TS > window.Milliseconds() {
			var admins int64 // a group's admins and owner may recall any message, at any time
			if err := t.tx.QueryRowContext(t.ctx, `SELECT count(*) FROM members m JOIN conversations c ON c.id = m.conv_id
				WHERE m.conv_id = ? AND m.user_id = ? AND c.kind = ? AND m.role IN (?, ?)`,
				m.Conv, user, store.ConvGroup, store.RoleOwner, store.RoleAdmin).Scan(&admins); err != nil {
				return nil, err
			}
			if admins == 0 {
				return nil, store.ErrNotAllowed
			}
		}
		if m.Type == store.TypeRecalled {
			return nil, nil
		}
		m.Type, m.Body = store.TypeRecalled, emptyBody
		return members, t.exec(qRecallMsg, m.Type, m.Body, ts, m.Conv, m.Seq)
	})
}

// Edit replaces a message's body, for every member.
func (s *Store) Edit(ctx context.Context, user string, id int64, ts int64, body store.EditBody) (store.Message, []store.InboxEvent, error) {
	return s.changeMsg(ctx, user, id, ts, kindEdit, func(t *txn, m *store.Message, members []string) ([]string, error) {
		if m.From != user || m.Type == store.TypeRecalled {
			return nil, store.ErrNotAllowed
		}
		b, err := body(m.Type)
		if err != nil {
			return nil, err
		}
		m.Body = b
		return members, t.exec(qEditMsg, m.Body, ts, m.Conv, m.Seq)
	})
}

// DeleteForMe hides a message from user's history.
func (s *Store) DeleteForMe(ctx context.Context, user string, id int64, ts int64) (store.Message, []store.InboxEvent, error) {
	return s.changeMsg(ctx, user, id, ts, kindDelete, func(t *txn, m *store.Message, _ []string) ([]string, error) {
		res, err := t.stmt(qHideMsg).ExecContext(t.ctx, user, m.Conv, m.Seq)
		if err != nil {
			return nil, err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return nil, err
		}
		return []string{user}, nil
	})
}

const qLastSeen = `SELECT coalesce(max(last_seen), 0) FROM devices WHERE user_id = ?`

func init() { readQueries = append(readQueries, qLastSeen) }

// LastSeen returns the latest last_seen of each user's devices.
func (s *Store) LastSeen(ctx context.Context, users []string) ([]int64, error) {
	out := make([]int64, len(users))
	if len(users) == 0 {
		return out, nil
	}
	err := s.read(ctx, func(t *txn) error {
		for i, u := range users {
			if err := t.queryRow(qLastSeen, u).Scan(&out[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("last seen: %w", err)
	}
	return out, nil
}
