package sqlitestore_test

import (
	"context"
	"path/filepath"
	"testing"

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
