package push

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mqim/mqim/delivery/cluster"
)

// TestFoldWindow: a window of system notifications [IM-17.2-5]: the first
// is sent at once and flushes at the end the ones folded into it; after
// the window closes the next starts a new one. Time is a parameter, so
// no test waits for the interval.
func TestFoldWindow(t *testing.T) {
	nc, err := cluster.ConnectNATS(context.Background(), cluster.NATSConfig{StoreDir: t.TempDir(), ServerName: "fold"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc.Conn)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	f, err := newFolder(ctx, js, 1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	step := func(seq int64, at time.Duration, want int) window {
		t.Helper()
		a, w, err := f.decide(ctx, "bob", "d:bob:ci", seq, t0.Add(at))
		if err != nil || a != want {
			t.Fatalf("seq %d at %v: action %d %v, want %d", seq, at, a, err, want)
		}
		return w
	}
	step(1, 0, foldSend)
	step(2, time.Second, foldDone)
	step(3, 2*time.Second, foldDone)
	step(3, 3*time.Second, foldDone) // a redelivery is counted once
	step(1, 4*time.Second, foldWait) // the first, back before the end
	w := step(1, 61*time.Second, foldFlush)
	if w.Last != 3 || w.Count != 2 {
		t.Fatalf("flush of %+v, want last 3, count 2", w)
	}
	step(4, 62*time.Second, foldDone) // folded in before the close
	if err := f.close(ctx, "bob", "d:bob:ci", w); err == nil {
		t.Fatal("closed a window that changed since its flush was decided")
	}
	w = step(1, 63*time.Second, foldFlush)
	if w.Last != 4 || w.Count != 3 {
		t.Fatalf("second flush of %+v", w)
	}
	if err := f.close(ctx, "bob", "d:bob:ci", w); err != nil {
		t.Fatal(err)
	}
	step(10, 64*time.Second, foldSend) // the next one opens a new window
	step(11, 65*time.Second, foldDone)
	// Another conversation has its own window.
	if a, _, _ := f.decide(ctx, "bob", "d:bob:ci2", 1, t0); a != foldSend {
		t.Fatalf("other conversation: %d", a)
	}
}
