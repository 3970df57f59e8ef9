// Package testpg gives each test its own empty PostgreSQL schema in the
// database named by MQIM_TEST_DATABASE (scripts/test sets it).
package testpg

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mqim/mqim/internal/testdeps"
)

// URL returns a connection string for a fresh schema that is dropped when t
// ends. Tables created unqualified land in that schema, because the string
// sets search_path. Without MQIM_TEST_DATABASE the test is skipped, or fails
// under scripts/test and CI (testdeps.Required), so that such a run never
// passes by skipping.
func URL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("MQIM_TEST_DATABASE")
	if base == "" {
		testdeps.Missing(t, "MQIM_TEST_DATABASE not set: tests need PostgreSQL; run scripts/test")
	}

	var b [8]byte
	_, _ = rand.Read(b[:])
	schema := "test_" + hex.EncodeToString(b[:])
	exec(t, base, "CREATE SCHEMA "+schema)
	t.Cleanup(func() { exec(t, base, "DROP SCHEMA "+schema+" CASCADE") })
	return withSearchPath(base, schema)
}

func exec(t testing.TB, dsn, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("testpg: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("testpg: %s: %v", sql, err)
	}
}

// withSearchPath adds search_path to a URL or a keyword/value string; pgx
// sends parameters it does not know as runtime parameters. The URL is not
// re-encoded: pgx decodes it like libpq, where '+' is not a space.
func withSearchPath(dsn, schema string) string {
	switch {
	case !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://"):
		return dsn + " search_path=" + schema
	case strings.Contains(dsn, "?"):
		return dsn + "&search_path=" + schema
	}
	return dsn + "?search_path=" + schema
}
