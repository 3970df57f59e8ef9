package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// LastSeen returns the latest last_seen of each user's devices, in one
// query.
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
