package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mqim/mqim/store"
)

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

// UpdateSettings changes user's settings of conv; the user's row is locked
// to number the event, as in Append (no conversation row is locked).
func (s *Store) UpdateSettings(ctx context.Context, user, conv string, ch store.SettingsChange, ts int64) (store.Settings, []store.InboxEvent, error) {
	st := store.Settings{Conv: conv}
	var events []store.InboxEvent
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		st, events = store.Settings{Conv: conv}, nil
		// The update locks the user's row: changes of one user's settings
		// run one after the other, each reading the other's result.
		if _, err := tx.Exec(ctx, `INSERT INTO users (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET id = excluded.id`, user); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `SELECT pinned, muted, archived, draft, updated_at FROM conv_settings
			WHERE user_id = $1 AND conv_id = $2`, user, conv).Scan(&st.Pinned, &st.Muted, &st.Archived, &st.Draft, &st.TS)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if !st.Apply(ch, ts) {
			return nil
		}
		set := st
		b := &pgx.Batch{}
		added := queueEvents(b, []string{user}, store.InboxEvent{Kind: store.KindSettings, Conv: conv, Actor: user, TS: ts, Settings: &set})
		b.Queue(`INSERT INTO conv_settings (user_id, conv_id, pinned, muted, archived, draft, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (user_id, conv_id) DO UPDATE SET pinned = $3, muted = $4, archived = $5, draft = $6, updated_at = $7`,
			user, conv, st.Pinned, st.Muted, st.Archived, st.Draft, ts)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		events, err = added()
		return err
	})
	if err != nil {
		return store.Settings{}, nil, fmt.Errorf("update settings of %q in %q: %w", user, conv, err)
	}
	return st, events, nil
}
