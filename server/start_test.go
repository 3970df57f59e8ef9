package server_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/mqim/mqim/delivery/cluster"
	"github.com/mqim/mqim/internal/testnode"
	"github.com/mqim/mqim/server"
)

// A Start that fails at a late step undoes what it started: its listeners
// are closed again (issue 11, lifecycle). Here the NATS connection is
// closed between New and Start, so the bus (or account control) cannot subscribe.
func TestFailedStartUndoes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, err := cluster.ConnectNATS(ctx, cluster.NATSConfig{StoreDir: t.TempDir(), ServerName: "start-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	db := testnode.NewDB(t, testnode.SQLite)
	st, err := db.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Fixed free ports, so that the test can see them closed again.
	addrs := make([]string, 3)
	for i := range addrs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs[i] = l.Addr().String()
		l.Close()
	}
	n, err := server.New(server.Config{
		MQTTAddr: addrs[0], WSAddr: addrs[1], HTTPAddr: addrs[2],
		Secret: []byte("start-test"), Store: st, NATS: nc.Conn,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	nc.Conn.Close()
	if err := n.Start(ctx); err == nil {
		t.Fatal("Start on a closed NATS connection succeeded")
	}
	for _, a := range addrs {
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("%s is still bound after the failed Start: %v", a, err)
		}
		l.Close()
	}
}
