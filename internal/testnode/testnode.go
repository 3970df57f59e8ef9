// Package testnode starts an mqim node for tests: on a SQLite file or a
// PostgreSQL schema, loopback ports, shut down and closed when the test ends.
//
// Node-level tests should run on both stores (Backends): SQLite is the
// default a user gets (mqimd without --store), PostgreSQL the one of a
// cluster.
package testnode

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mqim/mqim/internal/testpg"
	"github.com/mqim/mqim/server"
	"github.com/mqim/mqim/store"
	"github.com/mqim/mqim/store/pgstore"
	"github.com/mqim/mqim/store/sqlitestore"
)

// Backend is a store implementation.
type Backend string

const (
	SQLite   Backend = "sqlite"   // store/sqlitestore, the default
	Postgres Backend = "postgres" // store/pgstore
)

// Backends are the stores node-level tests run on, the default first.
var Backends = []Backend{SQLite, Postgres}

// ForEachBackend runs f as a subtest on each of Backends, named after it
// (sqlite, postgres).
func ForEachBackend(t *testing.T, f func(t *testing.T, b Backend)) {
	t.Helper()
	for _, b := range Backends {
		t.Run(string(b), func(t *testing.T) { f(t, b) })
	}
}

// DB is where a node keeps its data: a SQLite file or a PostgreSQL schema.
// A node started on the DB of a stopped one finds its data (a restart).
type DB struct {
	Backend Backend
	Path    string // SQLite: the database file
	URL     string // PostgreSQL: the connection string (with its schema)
}

// NewDB returns an empty database of backend b that lives as long as tb: a
// file in tb.TempDir(), or a schema of MQIM_TEST_DATABASE (testpg.URL,
// which skips or fails tb without it).
func NewDB(tb testing.TB, b Backend) DB {
	tb.Helper()
	switch b {
	case SQLite:
		return DB{Backend: SQLite, Path: filepath.Join(tb.TempDir(), "mqim.db")}
	case Postgres:
		return DB{Backend: Postgres, URL: testpg.URL(tb)}
	}
	tb.Fatalf("testnode: unknown backend %q", b)
	return DB{}
}

// Open opens the store on db.
func (db DB) Open(ctx context.Context) (store.Store, error) {
	switch db.Backend {
	case SQLite:
		return sqlitestore.Open(ctx, db.Path)
	case Postgres:
		return pgstore.Open(ctx, db.URL)
	}
	return nil, fmt.Errorf("testnode: unknown backend %q", db.Backend)
}

// StoreFlag is db as mqimd's --store flag takes it.
func (db DB) StoreFlag() string {
	if db.Backend == SQLite {
		return "sqlite:" + db.Path
	}
	return db.URL
}

// Node is a running node with its store.
type Node struct {
	*server.Node
	Store store.Store
	DB    DB

	closeOnce sync.Once
}

// Stop shuts the node down (Shutdown is idempotent) and closes its store,
// so that another node may open DB. The test's cleanup calls it too.
func (n *Node) Stop(ctx context.Context) error {
	err := n.Shutdown(ctx)
	n.closeOnce.Do(n.Store.Close)
	return err
}

// Start opens the store on db and starts a node on 127.0.0.1 with free
// ports. The test's cleanup stops the node (a test may stop it earlier).
// Each opt (nil ones are skipped) may change the node's configuration
// before it is built.
func Start(tb testing.TB, db DB, secret []byte, log *slog.Logger, opts ...func(*server.Config)) *Node {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := db.Open(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := server.Config{
		MQTTAddr: "127.0.0.1:0", WSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		// Used only when an opt configures TLS.
		MQTTSAddr: "127.0.0.1:0", WSSAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0",
		Secret: secret, Store: st, Log: log,
		Media: server.Media{Dir: tb.TempDir(), MaxBytes: 1 << 20},
	}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	bn, err := server.New(cfg)
	if err != nil {
		st.Close()
		tb.Fatal(err)
	}
	if err := bn.Start(ctx); err != nil {
		st.Close()
		tb.Fatal(err)
	}
	n := &Node{Node: bn, Store: st, DB: db}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := n.Stop(ctx); err != nil {
			tb.Errorf("shutdown: %v", err)
		}
	})
	return n
}
