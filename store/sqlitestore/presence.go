package sqlitestore

import (
	"context"
	"fmt"
)

const qLastSeen = `SELECT coalesce(max(last_seen), 0) FROM devices WHERE user_id = ?`

func init() { readQueries = append(readQueries, qLastSeen) }

// LastSeen returns the latest last_seen of each user's devices, from one
// snapshot.
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
