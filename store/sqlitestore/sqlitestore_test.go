package sqlitestore_test

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mqim/mqim/store"
	"github.com/mqim/mqim/store/sqlitestore"
	"github.com/mqim/mqim/store/storetest"
)

func open(tb testing.TB, path string, opts ...sqlitestore.Option) *sqlitestore.Store {
	tb.Helper()
	s, err := sqlitestore.Open(context.Background(), path, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) func() store.Store {
		path := filepath.Join(t.TempDir(), "mqim.db")
		return func() store.Store { return open(t, path) }
	})
}

func TestOpenInvalidOption(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	for _, o := range []sqlitestore.Option{sqlitestore.WithSynchronous("OFF"), sqlitestore.WithReadConns(-1),
		sqlitestore.WithBusyTimeout(-time.Second)} {
		if _, err := sqlitestore.Open(t.Context(), path, o); !errors.Is(err, sqlitestore.ErrInvalidOption) {
			t.Errorf("Open with an invalid option: %v; want ErrInvalidOption", err)
		}
	}
	if _, err := sqlitestore.Open(t.Context(), ""); !errors.Is(err, sqlitestore.ErrInvalidOption) {
		t.Errorf("Open of an empty path: %v; want ErrInvalidOption", err)
	}
}

// TestOpenCreatesDirectory opens a database in directories that do not exist
// yet, whose names need escaping in a file: URI, twice: the second Open finds
// the schema and applies no migration again.
func TestOpenCreatesDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a dir?x=1#frag", "%41", "mqim.db")
	s := open(t, path)
	if err := s.EnsureUser(t.Context(), "alice", "phone"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file: %v", err)
	}
	s = open(t, path)
	ok, err := s.UserExists(t.Context(), "alice")
	s.Close()
	if err != nil || !ok {
		t.Fatalf("UserExists(alice) after reopening = %v, %v; want true", ok, err)
	}

	// A plain name would be cut at the '?'.
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: filepath.ToSlash(path)}).String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if files, _ := os.ReadDir("migrations"); n != len(files) || n == 0 {
		t.Errorf("%d migrations recorded; want %d, one per file", n, len(files))
	}
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal mode %q, %v; want wal", mode, err)
	}
}
