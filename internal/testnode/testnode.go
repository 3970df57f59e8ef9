// Package testnode starts an mqim node for tests: PostgreSQL store, loopback
// ports, shut down and closed when the test ends.
package testnode

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/mqim/mqim/broker"
	"github.com/mqim/mqim/store/pgstore"
)

// Start opens the store at dbURL and starts a node on 127.0.0.1 with free
// ports. The test's cleanup shuts the node down (Shutdown is idempotent, so
// a test may stop it earlier) and closes the store. Each opt (nil ones are
// skipped) may change the node's configuration before it is built.
func Start(tb testing.TB, dbURL string, secret []byte, log *slog.Logger, opts ...func(*broker.Config)) (*broker.Node, *pgstore.Store) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := pgstore.Open(ctx, dbURL)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := broker.Config{
		MQTTAddr: "127.0.0.1:0", WSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		Secret: secret, Store: st, Log: log,
		Media: broker.Media{Dir: tb.TempDir(), MaxBytes: 1 << 20},
	}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	n, err := broker.New(cfg)
	if err != nil {
		st.Close()
		tb.Fatal(err)
	}
	if err := n.Start(); err != nil {
		st.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			tb.Errorf("shutdown: %v", err)
		}
		st.Close()
	})
	return n, st
}
