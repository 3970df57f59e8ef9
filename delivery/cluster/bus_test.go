package cluster

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqim/mqim/delivery"
)

// recorder is a node's local sink: what arrived, per key, as
// "kind payload" (members: "members +added -removed").
type recorder struct {
	mu     sync.Mutex
	events map[string][]string
	n      atomic.Int64
}

func (r *recorder) Take(envs []*delivery.Envelope) {
	r.mu.Lock()
	if r.events == nil {
		r.events = map[string][]string{}
	}
	for _, e := range envs {
		p, _ := e.Payload()
		s := e.Kind.String() + " " + string(p)
		if e.Kind == delivery.Members {
			s = fmt.Sprintf("members +%v -%v", e.Added, e.Removed)
		}
		r.events[e.Key()] = append(r.events[e.Key()], s)
	}
	r.mu.Unlock()
	r.n.Add(int64(len(envs)))
}

// count is how many envelopes of key arrived.
func (r *recorder) count(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events[key])
}

// inbox is an inbox envelope for user whose payload names user and seq.
func inbox(user string, seq int) *delivery.Envelope {
	return delivery.Received(delivery.Inbox, user, "", fmt.Appendf(nil, "%s#%d", user, seq), nil, nil)
}

func embedded(t testing.TB) *NATS {
	t.Helper()
	n, err := ConnectNATS(context.Background(), NATSConfig{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

func startBus(t testing.TB, n *NATS, local delivery.Sink) *Bus {
	t.Helper()
	b, err := New(n.Conn, Config{Local: local})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return b
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// consuming waits until b's consumer is in place, by sending probes that
// the other bus must see.
func consuming(t testing.TB, from *Bus, to *recorder) {
	t.Helper()
	waitFor(t, "consumer ready", func() bool {
		from.Take([]*delivery.Envelope{inbox("probe", 1)})
		time.Sleep(20 * time.Millisecond)
		return to.n.Load() > 0
	})
	to.mu.Lock()
	delete(to.events, "probe")
	to.mu.Unlock()
	to.n.Store(0)
}

// twoNodes starts the buses of two nodes on one NATS, with b consuming.
func twoNodes(t *testing.T) (a, b *Bus, ra, rb *recorder) {
	t.Helper()
	n := embedded(t)
	ra, rb = new(recorder), new(recorder)
	a, b = startBus(t, n, ra), startBus(t, n, rb)
	consuming(t, a, rb)
	return a, b, ra, rb
}

func TestBusDeliversToOtherNodesOnly(t *testing.T) {
	a, b, ra, rb := twoNodes(t)

	for i := 1; i <= 50; i++ {
		a.Take([]*delivery.Envelope{inbox("bob", 2*i), inbox("alice", i)})
	}
	// Probes from consuming may still arrive: count only the test's users.
	waitFor(t, "events on node b", func() bool { return rb.count("bob") == 50 && rb.count("alice") == 50 })
	rb.mu.Lock()
	for i, p := range rb.events["bob"] {
		if want := fmt.Sprintf("inbox bob#%d", 2*(i+1)); p != want {
			t.Fatalf("bob event %d = %q, want %q (in publish order)", i, p, want)
		}
	}
	rb.mu.Unlock()
	// b publishes one event; a gets it, b does not get its own back.
	b.Take([]*delivery.Envelope{inbox("carol", 1)})
	waitFor(t, "event on node a", func() bool {
		ra.mu.Lock()
		defer ra.mu.Unlock()
		return len(ra.events["carol"]) == 1
	})
	ra.mu.Lock()
	if len(ra.events["bob"]) != 0 {
		t.Errorf("node a got its own events back: %v", ra.events["bob"])
	}
	ra.mu.Unlock()
	if n := rb.count("carol"); n != 0 {
		t.Errorf("node b got its own event back %d times", n)
	}
}

// TestBusSplitsLargeBatches sends a commit batch bigger than one NATS
// message may be.
func TestBusSplitsLargeBatches(t *testing.T) {
	a, _, _, rb := twoNodes(t)
	batch := make([]*delivery.Envelope, 40) // 2.5 MiB
	for i := range batch {
		batch[i] = delivery.Received(delivery.Inbox, "u", "", make([]byte, 64<<10), nil, nil)
	}
	a.Take(batch)
	waitFor(t, "all events of the batch", func() bool { return rb.count("u") == 40 })
}

// TestBusRecoversLostStream deletes the stream, as a NATS that lost its
// storage would: the bus re-creates it and delivery resumes.
func TestBusRecoversLostStream(t *testing.T) {
	a, b, _, rb := twoNodes(t)
	if err := b.js.DeleteStream(context.Background(), streamName); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivery after the stream was lost", func() bool {
		a.Take([]*delivery.Envelope{inbox("again", 1)})
		time.Sleep(20 * time.Millisecond)
		rb.mu.Lock()
		defer rb.mu.Unlock()
		return len(rb.events["again"]) > 0
	})
}

// BenchmarkBroadcast measures the cost of broadcasting: one node publishes
// commit batches of 100 events, two other nodes receive and filter all.
func BenchmarkBroadcast(b *testing.B) {
	n := embedded(b)
	var r0, r1, r2 recorder
	pub := startBus(b, n, &r0)
	startBus(b, n, &r1)
	startBus(b, n, &r2)
	consuming(b, pub, &r1)
	consuming(b, pub, &r2)
	batch := make([]*delivery.Envelope, 100)
	for i := range batch {
		batch[i] = inbox(fmt.Sprintf("user%d", i), i)
	}
	b.ResetTimer()
	sent := 0
	for range b.N {
		for len(pub.queue) >= cap(pub.queue)-1 {
			runtime.Gosched() // Take drops when the queue is full
		}
		pub.Take(batch)
		sent += len(batch)
	}
	waitFor(b, "all delivered", func() bool { return r1.n.Load() >= int64(sent) && r2.n.Load() >= int64(sent) })
	b.ReportMetric(float64(sent)/b.Elapsed().Seconds(), "events/s")
}
