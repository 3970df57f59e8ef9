package pgstore

import (
	"context"
	"fmt"
)

// Ping checks that PostgreSQL answers (for the node's readiness).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("pgstore: ping: %w", err)
	}
	return nil
}
