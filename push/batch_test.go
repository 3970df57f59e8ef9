package push

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mqim/mqim/store"
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

// writeStore records the PushWrite calls; the rest of the store is not
// used by writeBatch.
type writeStore struct {
	store.PushStore
	got []store.PushWrites
}

func (w *writeStore) PushWrite(_ context.Context, ws store.PushWrites) ([]store.Claim, error) {
	w.got = append(w.got, ws)
	out := make([]store.Claim, len(ws.Claim))
	for i, c := range ws.Claim {
		if c.Client == "busy" {
			out[i] = store.ClaimBusy
		}
	}
	return out, nil
}

// TestWriteBatch: claims, settlements and the relay's dequeues of one
// batch go to the store in one PushWrite, and each claim's outcome comes
// back to its own call.
func TestWriteBatch(t *testing.T) {
	st := &writeStore{}
	s := &Service{cfg: Config{Store: st, Lease: time.Minute}}
	k := store.PushKey{User: "bob", Conv: "d:alice:bob", ConvSeq: 3}
	ws := []pushWrite{
		{dequeue: []store.PushKey{k}},
		{claim: &store.PushClaim{Key: k, Client: "busy"}},
		{finish: &store.PushFinish{PushClaim: store.PushClaim{Key: k, Client: "p1"}, Sent: true}},
		{claim: &store.PushClaim{Key: k, Client: "p2"}},
	}
	got, err := s.writeBatch(context.Background(), ws)
	if err != nil || len(got) != 4 || got[1] != store.ClaimBusy || got[3] != store.ClaimNew {
		t.Fatalf("outcomes %v, %v", got, err)
	}
	if len(st.got) != 1 {
		t.Fatalf("%d store writes, want 1", len(st.got))
	}
	w := st.got[0]
	if len(w.Dequeue) != 1 || len(w.Finish) != 1 || !w.Finish[0].Sent || len(w.Claim) != 2 || w.Claim[0].Client != "busy" ||
		w.Claim[1].Client != "p2" || w.Lease != time.Minute.Milliseconds() || w.Now == 0 {
		t.Fatalf("store write %+v", w)
	}
}
