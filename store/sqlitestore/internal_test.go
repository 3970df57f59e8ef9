package sqlitestore

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestReadsDoNotWaitForWriter holds the writer connection in an open write
// transaction and reads: the reads neither wait for it nor see its changes.
func TestReadsDoNotWaitForWriter(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "mqim.db"), WithBusyTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.EnsureUser(t.Context(), "alice", ""); err != nil {
		t.Fatal(err)
	}
	tx, err := s.w.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // only undoes the test's update
	if _, err := tx.Exec(`UPDATE users SET inbox_seq = 5 WHERE id = 'alice'`); err != nil {
		t.Fatal(err)
	}

	// Far below the busy timeout: a read that waited would fail.
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if ok, err := s.UserExists(ctx, "alice"); err != nil || !ok {
		t.Errorf("UserExists during a write = %v, %v; want true", ok, err)
	}
	if p, err := s.Sync(ctx, "alice", 0, 10); err != nil || p.Latest != 0 {
		t.Errorf("Sync during a write = %+v, %v; want latest 0 (the write is not committed)", p, err)
	}
	if _, err := s.Conversations(ctx, "alice", 0); err != nil {
		t.Errorf("Conversations during a write: %v", err)
	}
}
