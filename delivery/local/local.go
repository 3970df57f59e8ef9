// Package local is the delivery sink for the devices connected to this node
// [IM-5.2]: it publishes each envelope on its topic through mochi (the
// Publisher), where each subscribed device's bounded outbound queue takes
// it without blocking ([IM-5.2-8]: a full queue drops, the device syncs).
//
// Concurrency: Take is called by the dispatcher (the committer's goroutine,
// in commit order, and the typing path) and by the cluster sink with other
// nodes' envelopes. Envelopes of one key (a user, a group) go through one
// shard worker, in the order they were handed over; a full shard drops
// (counted) rather than block the caller. Membership changes are applied
// at once, on the caller's goroutine.
package local

import (
	"context"
	"fmt"
	"hash/maphash"
	"log/slog"
	gosync "sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mqim/mqim/delivery"
	"github.com/mqim/mqim/internal/run"
)

// Publisher publishes encoded events to the devices connected to this node.
// InboxSubscribed says whether any device here subscribes to a user's
// inbox: events nobody here reads (the sender's own copy, when the sender
// has no other device online) are not encoded.
type Publisher interface {
	// at is when the event was handed to delivery (Envelope.At).
	PublishInbox(user string, payload []byte, at time.Time)
	InboxSubscribed(user string) bool
	// PublishGroup publishes an encoded group event on the topic of group
	// conv to the member devices on this node [IM-11.3].
	PublishGroup(conv string, payload []byte, at time.Time)
	// ForgetMembers applies a membership change on this node: cached ACL
	// answers dropped, removed members unsubscribed from the group topic.
	ForgetMembers(conv string, added, removed []string)
}

// Config configures a Fanout. Zero values mean the defaults noted.
type Config struct {
	Shards     int // zero: 16
	ShardQueue int // envelopes buffered per shard; zero: 4096
	Log        *slog.Logger
	Registerer prometheus.Registerer // nil: metrics not registered
}

// Fanout is the local sink.
type Fanout struct {
	pub       Publisher
	log       *slog.Logger
	seed      maphash.Seed
	shards    []chan *delivery.Envelope
	workers   run.Group // one per shard
	closeOnce gosync.Once
	mu        gosync.RWMutex // queue holds it shared; Stop exclusively, to close the shards
	stopped   bool
	delivered prometheus.Counter
	dropped   prometheus.Counter
}

// New returns a Fanout; Start starts its workers.
func New(pub Publisher, cfg Config) *Fanout {
	if cfg.Shards <= 0 {
		cfg.Shards = 16
	}
	if cfg.ShardQueue <= 0 {
		cfg.ShardQueue = 4096
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	f := &Fanout{
		pub:  pub,
		log:  cfg.Log,
		seed: maphash.MakeSeed(),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mqim_fanout_delivered_total", Help: "Events published to local devices."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mqim_fanout_dropped_total", Help: "Events dropped because a shard queue was full (devices recover by sync)."}),
	}
	f.shards = make([]chan *delivery.Envelope, cfg.Shards)
	for i := range f.shards {
		f.shards[i] = make(chan *delivery.Envelope, cfg.ShardQueue)
	}
	if cfg.Registerer != nil {
		queued := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mqim_fanout_queued", Help: "Events waiting in the local delivery shards' queues."}, func() float64 {
			n := 0
			for _, ch := range f.shards {
				n += len(ch)
			}
			return float64(n)
		})
		cfg.Registerer.MustRegister(f.delivered, f.dropped, queued)
	}
	return f
}

// Start starts one worker per shard.
func (f *Fanout) Start(context.Context) error {
	for _, ch := range f.shards {
		f.workers.Go(func() { f.work(ch) })
	}
	return nil
}

// Shutdown delivers what is queued, then stops the workers, waiting for
// them until ctx ends. Envelopes handed over after Shutdown (a cluster
// event still arriving while the node shuts down) are dropped.
func (f *Fanout) Shutdown(ctx context.Context) error {
	f.closeOnce.Do(func() {
		f.mu.Lock()
		f.stopped = true
		for _, ch := range f.shards {
			close(ch)
		}
		f.mu.Unlock()
	})
	if err := f.workers.Wait(ctx); err != nil {
		return fmt.Errorf("local delivery: %w", err)
	}
	return nil
}

// Take queues envelopes for delivery without blocking; membership changes
// are applied before it returns.
func (f *Fanout) Take(envs []*delivery.Envelope) {
	for _, e := range envs {
		if e.Kind == delivery.Members {
			f.pub.ForgetMembers(e.Conv, e.Added, e.Removed)
			continue
		}
		f.queue(e)
	}
}

func (f *Fanout) queue(e *delivery.Envelope) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.stopped {
		f.dropped.Inc()
		return
	}
	ch := f.shards[maphash.String(f.seed, e.Key())%uint64(len(f.shards))]
	select {
	case ch <- e:
	default:
		f.dropped.Inc()
	}
}

func (f *Fanout) work(ch <-chan *delivery.Envelope) {
	for e := range ch {
		if e.Kind != delivery.Group && !f.pub.InboxSubscribed(e.User) {
			continue
		}
		payload, err := e.Payload()
		if err != nil {
			f.log.Error("undeliverable event", "error", err)
			continue
		}
		if e.Kind == delivery.Group {
			f.pub.PublishGroup(e.Conv, payload, e.At)
		} else {
			f.pub.PublishInbox(e.User, payload, e.At)
		}
		f.delivered.Inc()
	}
}
