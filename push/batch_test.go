package push

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// waitUntil polls cond (for 10 s at most).
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
	}
}

// TestBatcher: calls that arrive while a batch runs go into the next one
// together; each caller gets its own result, or the batch's error.
func TestBatcher(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	var mu sync.Mutex
	var sizes []int
	b := newBatcher(func(_ context.Context, reqs []int) ([]int, error) {
		mu.Lock()
		sizes = append(sizes, len(reqs))
		first := len(sizes) == 1
		mu.Unlock()
		if first {
			<-release // hold the first batch while the others queue
		}
		if reqs[0] < 0 {
			return nil, errors.New("refused")
		}
		out := make([]int, len(reqs))
		for i, r := range reqs {
			out[i] = 2 * r
		}
		return out, nil
	})
	var loop sync.WaitGroup
	loop.Go(func() { b.loop(ctx) })
	defer func() { cancel(); loop.Wait() }()

	var wg sync.WaitGroup
	wg.Go(func() {
		if r, err := b.do(ctx, 1); r != 2 || err != nil {
			t.Errorf("first: %d %v", r, err)
		}
	})
	waitUntil(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(sizes) == 1 })
	results := make([]int, 10)
	for i := range results {
		wg.Go(func() { results[i], _ = b.do(ctx, 10+i) })
	}
	waitUntil(t, func() bool { return len(b.in) == len(results) })
	close(release)
	wg.Wait()
	for i, r := range results {
		if r != 2*(10+i) {
			t.Fatalf("result %d: %d", i, r)
		}
	}
	mu.Lock()
	if len(sizes) != 2 || sizes[0] != 1 || sizes[1] != 10 {
		t.Fatalf("batch sizes %v, want [1 10]", sizes)
	}
	mu.Unlock()
	if _, err := b.do(ctx, -1); err == nil {
		t.Fatal("the batch's error was not returned")
	}
	done, stop := context.WithCancel(ctx)
	stop()
	if _, err := b.do(done, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: %v", err)
	}
}
