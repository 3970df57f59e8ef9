package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mqim/mqim/store"
)

// Inbox kinds of spec §14 as stored in inbox.kind, from 10 up so that
// other features may take the small numbers.
const (
	kindRecall int16 = 10
	kindEdit   int16 = 11
	kindDelete int16 = 12
)

var extKinds = map[int16]string{kindRecall: store.KindRecall, kindEdit: store.KindEdit, kindDelete: store.KindDelete}

// emptyBody is the canonical MessagePack of {}.
var emptyBody = []byte{0x80}

// changeMsg runs one change of a message in a transaction: it finds the
// message and its members (ErrNotFound if user is not one), locks the
// conversation row first and the users' rows after it (the lock order of
// Append and MarkRead), lets change decide and update the row, and adds an
// event of kind to the inbox of each user change returns.
func (s *Store) changeMsg(ctx context.Context, user string, id int64, ts int64, kind int16,
	change func(tx pgx.Tx, m *store.Message, members []string) (audience []string, err error),
) (store.Message, []store.InboxEvent, error) {
	var (
		m      store.Message
		events []store.InboxEvent
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// FOR UPDATE: two changes of one message (a recall and an edit on
		// two nodes) run one after the other, each seeing the other's result.
		err := tx.QueryRow(ctx, `SELECT conv_id, seq, sender, cmid, type, body, ts FROM messages WHERE id = $1 FOR UPDATE`, id).
			Scan(&m.Conv, &m.Seq, &m.From, &m.Cmid, &m.Type, &m.Body, &m.TS)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		m.ID = id
		if _, err := tx.Exec(ctx, `SELECT 1 FROM conversations WHERE id = $1 FOR NO KEY UPDATE`, m.Conv); err != nil {
			return err
		}
		var fanout string
		var member bool
		err = tx.QueryRow(ctx, `SELECT coalesce((SELECT fanout FROM groups WHERE id = $1), ''),
				EXISTS (SELECT 1 FROM members WHERE conv_id = $1 AND user_id = $2)`, m.Conv, user).Scan(&fanout, &member)
		if err != nil {
			return err
		}
		if !member {
			return store.ErrNotFound
		}
		// A read-fan-out group writes no inbox row per member [IM-11.3-3]:
		// the change reaches the actor's inbox, the others see it in history.
		members := []string{user}
		if fanout != "read" {
			rows, _ := tx.Query(ctx, `SELECT user_id FROM members WHERE conv_id = $1`, m.Conv)
			if members, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
				return err
			}
		}
		audience, err := change(tx, &m, members)
		if err != nil || len(audience) == 0 {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT id FROM users WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, audience); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `WITH u AS (
				UPDATE users SET inbox_seq = inbox_seq + 1 WHERE id = ANY($1) RETURNING id, inbox_seq
			)
			INSERT INTO inbox (user_id, seq, kind, conv_id, conv_seq, actor, ts)
			SELECT id, inbox_seq, $2, $3, $4, $5, $6 FROM u
			RETURNING user_id, seq`, audience, kind, m.Conv, m.Seq, user, ts)
		var e store.InboxEvent
		_, err = pgx.ForEachRow(rows, []any{&e.User, &e.Seq}, func() error {
			msg := m
			events = append(events, store.InboxEvent{User: e.User, Seq: e.Seq, Kind: extKinds[kind],
				Conv: m.Conv, ConvSeq: m.Seq, Actor: user, TS: ts, Msg: &msg})
			return nil
		})
		return err
	})
	if err != nil {
		return store.Message{}, nil, fmt.Errorf("%s message %d by %q: %w", extKinds[kind], id, user, err)
	}
	return m, events, nil
}

// Recall replaces a message by a recalled marker, for every member.
func (s *Store) Recall(ctx context.Context, user string, id int64, ts int64, window time.Duration) (store.Message, []store.InboxEvent, error) {
	return s.changeMsg(ctx, user, id, ts, kindRecall, func(tx pgx.Tx, m *store.Message, members []string) ([]string, error) {
		if m.Type == store.TypeGroup {
			return nil, store.ErrNotAllowed // the group's own record of changes [IM-11.2-1]
		}
		if m.From != user || ts-m.TS > window.Milliseconds() {
			var admins int64 // a group's admins and owner may recall any message, at any time
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM members m JOIN conversations c ON c.id = m.conv_id
				WHERE m.conv_id = $1 AND m.user_id = $2 AND c.kind = $3 AND m.role IN ($4, $5)`,
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
		_, err := tx.Exec(ctx, `UPDATE messages SET type = $3, body = $4, recalled_at = $5 WHERE conv_id = $1 AND seq = $2`,
			m.Conv, m.Seq, m.Type, m.Body, ts)
		return members, err
	})
}

// Edit replaces a message's body, for every member.
func (s *Store) Edit(ctx context.Context, user string, id int64, ts int64, body store.EditBody) (store.Message, []store.InboxEvent, error) {
	return s.changeMsg(ctx, user, id, ts, kindEdit, func(tx pgx.Tx, m *store.Message, members []string) ([]string, error) {
		if m.From != user || m.Type == store.TypeRecalled {
			return nil, store.ErrNotAllowed
		}
		b, err := body(m.Type)
		if err != nil {
			return nil, err
		}
		m.Body = b
		_, err = tx.Exec(ctx, `UPDATE messages SET body = $3, edited_at = $4 WHERE conv_id = $1 AND seq = $2`,
			m.Conv, m.Seq, m.Body, ts)
		return members, err
	})
}

// DeleteForMe hides a message from user's history.
func (s *Store) DeleteForMe(ctx context.Context, user string, id int64, ts int64) (store.Message, []store.InboxEvent, error) {
	return s.changeMsg(ctx, user, id, ts, kindDelete, func(tx pgx.Tx, m *store.Message, _ []string) ([]string, error) {
		tag, err := tx.Exec(ctx, `INSERT INTO hidden (user_id, conv_id, seq) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
			user, m.Conv, m.Seq)
		if err != nil || tag.RowsAffected() == 0 {
			return nil, err
		}
		return []string{user}, nil
	})
}

// LastSeen returns the latest last_seen of each user's devices.
func (s *Store) LastSeen(ctx context.Context, users []string) ([]int64, error) {
	out := make([]int64, len(users))
	if len(users) == 0 {
		return out, nil
	}
	rows, _ := s.pool.Query(ctx, `SELECT k.i, (extract(epoch FROM max(d.last_seen)) * 1000)::bigint
		FROM unnest($1::text[]) WITH ORDINALITY AS k(u, i)
		JOIN devices d ON d.user_id = k.u
		GROUP BY k.i`, users)
	var i, ms int64
	_, err := pgx.ForEachRow(rows, []any{&i, &ms}, func() error {
		out[i-1] = ms
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("last seen: %w", err)
	}
	return out, nil
}
