package run

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

func TestGoRefusesAfterClose(t *testing.T) {
	var g Group
	var ran atomic.Int32
	release := make(chan struct{})
	if !g.Go(func() { <-release; ran.Add(1) }) {
		t.Fatal("Go refused before Close")
	}
	g.Close()
	if g.Go(func() { ran.Add(1) }) {
		t.Fatal("Go ran after Close")
	}
	if !g.Closed() {
		t.Fatal("not Closed after Close")
	}
	close(release)
	if err := g.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ran.Load() != 1 {
		t.Fatalf("%d ran, want 1", ran.Load())
	}
}

func TestWaitIsBounded(t *testing.T) {
	var g Group
	release := make(chan struct{})
	defer close(release)
	g.Go(func() { <-release })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := g.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with a goroutine that does not end: %v", err)
	}
}

// Go racing with Wait: every goroutine Go accepted is waited for, and none
// is accepted after Wait began (the race detector checks the WaitGroup).
func TestGoConcurrentWithWait(t *testing.T) {
	for range 20 {
		var g Group
		var started, finished atomic.Int32
		go func() {
			for g.Go(func() { started.Add(1); finished.Add(1) }) {
			}
		}()
		for started.Load() == 0 {
			runtime.Gosched()
		}
		if err := g.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		if s, f := started.Load(), finished.Load(); s != f {
			t.Fatalf("Wait returned with %d of %d goroutines finished", f, s)
		}
	}
}
