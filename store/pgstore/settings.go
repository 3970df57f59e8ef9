package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mqim/mqim/store"
)

const kindSettings int16 = 13

func init() { extKinds[kindSettings] = store.KindSettings }

// apply applies ch to s and reports whether anything changed.
func apply(s *store.Settings, ch store.SettingsChange) bool {
	old := *s
	if ch.Pinned != nil {
		s.Pinned = *ch.Pinned
	}
	if ch.Muted != nil {
		s.Muted = *ch.Muted
	}
	if ch.Archived != nil {
		s.Archived = *ch.Archived
	}
	if ch.Draft != nil {
		s.Draft = *ch.Draft
	}
	return *s != old
}

// UpdateSettings changes user's settings of conv; the user's row is locked
// to number the event, as in Append (no conversation row is locked).
func (s *Store) UpdateSettings(ctx context.Context, user, conv string, ch store.SettingsChange, ts int64) (store.Settings, []store.InboxEvent, error) {
	st := store.Settings{Conv: conv}
	var events []store.InboxEvent
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		events = nil
		var seq int64
		if err := tx.QueryRow(ctx, `INSERT INTO users (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET id = excluded.id
			RETURNING inbox_seq`, user).Scan(&seq); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `SELECT pinned, muted, archived, draft, updated_at FROM conv_settings
			WHERE user_id = $1 AND conv_id = $2`, user, conv).Scan(&st.Pinned, &st.Muted, &st.Archived, &st.Draft, &st.TS)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if !apply(&st, ch) {
			return nil
		}
		st.TS = ts
		if _, err := tx.Exec(ctx, `INSERT INTO conv_settings (user_id, conv_id, pinned, muted, archived, draft, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (user_id, conv_id) DO UPDATE SET pinned = $3, muted = $4, archived = $5, draft = $6, updated_at = $7`,
			user, conv, st.Pinned, st.Muted, st.Archived, st.Draft, ts); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `UPDATE users SET inbox_seq = inbox_seq + 1 WHERE id = $1 RETURNING inbox_seq`, user).Scan(&seq); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO inbox (user_id, seq, kind, conv_id, conv_seq, actor, ts) VALUES ($1, $2, $3, $4, 0, $1, $5)`,
			user, seq, kindSettings, conv, ts); err != nil {
			return err
		}
		set := st
		events = append(events, store.InboxEvent{User: user, Seq: seq, Kind: store.KindSettings, Conv: conv, Actor: user, TS: ts, Settings: &set})
		return nil
	})
	if err != nil {
		return store.Settings{}, nil, fmt.Errorf("update settings of %q in %q: %w", user, conv, err)
	}
	return st, events, nil
}

// Settings returns user's settings of each conv, in order.
func (s *Store) Settings(ctx context.Context, user string, convs []string) ([]store.Settings, error) {
	out := make([]store.Settings, len(convs))
	for i, c := range convs {
		out[i].Conv = c
	}
	if len(convs) == 0 {
		return out, nil
	}
	rows, _ := s.pool.Query(ctx, `SELECT k.i, c.pinned, c.muted, c.archived, c.draft, c.updated_at
		FROM unnest($2::text[]) WITH ORDINALITY AS k(conv, i)
		JOIN conv_settings c ON c.user_id = $1 AND c.conv_id = k.conv`, user, convs)
	var (
		i  int64
		st store.Settings
	)
	_, err := pgx.ForEachRow(rows, []any{&i, &st.Pinned, &st.Muted, &st.Archived, &st.Draft, &st.TS}, func() error {
		st.Conv = convs[i-1]
		out[i-1] = st
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("settings of %q: %w", user, err)
	}
	return out, nil
}
