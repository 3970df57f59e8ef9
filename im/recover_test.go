package im

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// A panic in work spawned for a connection (an RPC handler, an ack flush)
// is recovered: logged with the client id and stack, counted, the
// connection closed, the node's other work going on, and Shutdown still
// waits for (and is not blocked by) the goroutine (issue 15).
func TestSpawnRecoversPanics(t *testing.T) {
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	h := New(Config{Log: slog.New(slog.NewTextHandler(&logs, nil)), Registerer: reg})
	aborted := make(chan error, 1)
	sess := &Session{User: "alice", Client: "victim", Abort: func(err error) { aborted <- err }}

	h.Spawn(sess, func() { panic("test: an RPC handler panicked") })
	done := make(chan struct{})
	h.Spawn(nil, func() { close(done) }) // other work still runs
	<-done
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown after a recovered panic: %v", err)
	}
	if got := counter(t, reg, "mqim_connection_panics_total"); got != 1 {
		t.Fatalf("mqim_connection_panics_total = %v, want 1", got)
	}
	select {
	case err := <-aborted:
		if !strings.Contains(err.Error(), "an RPC handler panicked") {
			t.Fatalf("aborted with %v", err)
		}
	default:
		t.Fatal("the session whose work panicked was not aborted")
	}
	if l := logs.String(); strings.Count(l, "panic while handling") != 1 || !strings.Contains(l, "client=victim") || !strings.Contains(l, "goroutine") {
		t.Fatalf("log: %s", l)
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	return metric(t, reg, name).GetCounter().GetValue()
}
