package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/mqim/mqim/store"
)

const (
	qGetSettings = `SELECT pinned, muted, archived, draft, updated_at FROM conv_settings WHERE user_id = ? AND conv_id = ?`
	qPutSettings = `INSERT INTO conv_settings (user_id, conv_id, pinned, muted, archived, draft, updated_at)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
		ON CONFLICT (user_id, conv_id) DO UPDATE SET pinned = ?3, muted = ?4, archived = ?5, draft = ?6, updated_at = ?7`
)

func init() {
	writeQueries = append(writeQueries, qGetSettings, qPutSettings)
	readQueries = append(readQueries, qGetSettings)
}

// UpdateSettings changes user's settings of conv.
func (s *Store) UpdateSettings(ctx context.Context, user, conv string, ch store.SettingsChange, ts int64) (store.Settings, []store.InboxEvent, error) {
	st := store.Settings{Conv: conv}
	var events []store.InboxEvent
	err := s.write(ctx, func(t *txn) error {
		events = nil
		st = store.Settings{Conv: conv}
		if err := t.exec(qEnsureUser, user); err != nil {
			return err
		}
		err := t.queryRow(qGetSettings, user, conv).Scan(&st.Pinned, &st.Muted, &st.Archived, &st.Draft, &st.TS)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if !st.Apply(ch, ts) {
			return nil
		}
		if err := t.exec(qPutSettings, user, conv, st.Pinned, st.Muted, st.Archived, st.Draft, ts); err != nil {
			return err
		}
		set := st
		events, err = t.addEvents([]string{user}, store.InboxEvent{Kind: store.KindSettings, Conv: conv, Actor: user,
			TS: ts, Settings: &set})
		return err
	})
	if err != nil {
		return store.Settings{}, nil, fmt.Errorf("update settings of %q in %q: %w", user, conv, err)
	}
	return st, events, nil
}

// Settings returns user's settings of each conv, in order, from one
// snapshot.
func (s *Store) Settings(ctx context.Context, user string, convs []string) ([]store.Settings, error) {
	out := make([]store.Settings, len(convs))
	if len(convs) == 0 {
		return out, nil
	}
	err := s.read(ctx, func(t *txn) error {
		for i, c := range convs {
			out[i] = store.Settings{Conv: c}
			err := t.queryRow(qGetSettings, user, c).Scan(&out[i].Pinned, &out[i].Muted, &out[i].Archived, &out[i].Draft, &out[i].TS)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("settings of %q: %w", user, err)
	}
	return out, nil
}
