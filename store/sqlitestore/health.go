package sqlitestore

import (
	"context"
	"fmt"
)

// Ping checks that the database file can be read (for the node's
// readiness). It uses the read pool: the one write connection may be busy
// with a commit for longer than a health check waits.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("sqlitestore: ping: %w", err)
	}
	return nil
}
