package push

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mqim/mqim/internal/run"
	"github.com/mqim/mqim/store"
)

// Store is what push needs of the store.
type Store interface {
	store.PushStore
}

// Presence says on which nodes a user has devices connected (the
// cluster's routing table).
type Presence interface {
	DeviceNodes(user string) []string
}

// Config configures the service. Zero values take the defaults
// (setDefaults).
type Config struct {
	Store     Store
	NATS      *nats.Conn
	Node      string // this node's name (NATS subject token)
	Presence  Presence
	Providers map[string]Provider // by platform (store.PlatformAPNs, …); a platform without one is not registrable
	Policy    Policy
	// After is how long a device online somewhere has to acknowledge a
	// delivery before its user is pushed (--push-after, 2 s).
	After time.Duration
	// MaxDevices bounds the registrations of a user (10).
	MaxDevices int
	// MaxQueued bounds the work queue (JetStream messages, 100,000); past
	// it the outbox keeps the rest.
	MaxQueued int64
	// MaxInFlight bounds the jobs a node holds at once (waiting for their
	// push-after, or in a provider call): the consumer's MaxAckPending.
	MaxInFlight int
	Workers     int           // concurrent provider calls per node (64)
	Replicas    int           // JetStream replicas
	Lease       time.Duration // how long a claim protects a provider call in progress (60 s)
	// RetryMin and RetryMax bound the backoff of a job the provider could
	// not take (1 s … 5 min, with jitter; Retry-After wins).
	RetryMin, RetryMax time.Duration
	RelayInterval      time.Duration // outbox scan when not nudged (1 s)
	Expiry             time.Duration // provider expiration of a notification (24 h)
	// Failpoint, for tests, makes the named step fail (returns true).
	Failpoint  func(name string) bool
	Log        *slog.Logger
	Registerer prometheus.Registerer
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.After, 2*time.Second)
	def(&c.Lease, 60*time.Second)
	def(&c.RetryMin, time.Second)
	def(&c.RetryMax, 5*time.Minute)
	def(&c.RelayInterval, time.Second)
	def(&c.Expiry, 24*time.Hour)
	c.Policy.setDefaults()
	if c.MaxDevices <= 0 {
		c.MaxDevices = 10
	}
	if c.MaxQueued <= 0 {
		c.MaxQueued = 100_000
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 10_000
	}
	if c.Workers <= 0 {
		c.Workers = 64
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

func (c *Config) failpoint(name string) bool { return c.Failpoint != nil && c.Failpoint(name) }

// Service is offline push on one node.
type Service struct {
	cfg  Config
	log  *slog.Logger
	m    *metrics
	js   jetstream.JetStream
	acks *acks
	fold *folder

	reads  *batcher[store.PushRead, store.PushInfo]
	writes *batcher[pushWrite, store.Claim]

	nudge    chan struct{}
	work     []chan jetstream.Msg // one per worker; a user's jobs go to one (in order)
	takeover chan [2]string

	ctx      context.Context
	cancel   context.CancelFunc
	g        run.Group // the loops and workers
	stopping sync.Once
	cc       jetstream.ConsumeContext
	sub      *nats.Subscription
}

// New builds the service; Start starts it.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.NATS == nil || cfg.Node == "" {
		return nil, errors.New("push: a store, NATS and a node name are required")
	}
	cfg.setDefaults()
	js, err := jetstream.New(cfg.NATS)
	if err != nil {
		return nil, fmt.Errorf("push: jetstream: %w", err)
	}
	s := &Service{cfg: cfg, log: cfg.Log, m: newMetrics(cfg.Registerer), js: js, acks: newAcks(),
		nudge: make(chan struct{}, 1), work: make([]chan jetstream.Msg, cfg.Workers), takeover: make(chan [2]string, 256)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.reads, s.writes = newBatcher(s.readBatch), newBatcher(s.writeBatch)
	return s, nil
}

// Start creates the work queue and starts the relay, the consumer and the
// workers.
func (s *Service) Start(ctx context.Context) error {
	if err := s.ensureStream(ctx); err != nil {
		return err
	}
	var err error
	if s.fold, err = newFolder(ctx, s.js, s.cfg.Replicas, s.cfg.Policy.SystemInterval); err != nil {
		return err
	}
	if s.sub, err = s.acks.serve(s.cfg.NATS, s.cfg.Node); err != nil {
		return fmt.Errorf("push: serve acks: %w", err)
	}
	cons, err := s.js.Consumer(ctx, streamName, consumerName)
	if err != nil {
		return fmt.Errorf("push: consumer: %w", err)
	}
	// Two read loops: one batch is read while the next fills (reads do
	// not take the store's one writer; the writes do).
	s.g.Go(func() { s.reads.loop(s.ctx) })
	s.g.Go(func() { s.reads.loop(s.ctx) })
	s.g.Go(func() { s.writes.loop(s.ctx) })
	for i := range s.work {
		s.work[i] = make(chan jetstream.Msg, 16)
		w := s.work[i]
		s.g.Go(func() { s.worker(w) })
	}
	s.g.Go(s.relayLoop)
	s.g.Go(s.depthLoop)
	s.g.Go(s.takeoverLoop)
	s.cc, err = cons.Consume(s.receive, jetstream.PullMaxMessages(64))
	if err != nil {
		s.Stop()
		return fmt.Errorf("push: consume: %w", err)
	}
	return nil
}

// Stop stops consuming and waits for the workers. Jobs not acknowledged
// go back to the queue for another node (or this one after a restart).
func (s *Service) Stop() { _ = s.Shutdown(context.Background()) }

// Shutdown is Stop bounded by ctx, the node's lifecycle form: a worker
// still sending when ctx ends is left to finish on its own (its job, not
// acknowledged, goes back to the queue).
func (s *Service) Shutdown(ctx context.Context) error {
	s.stopping.Do(func() {
		if s.cc != nil {
			s.cc.Stop()
		}
		if s.sub != nil {
			_ = s.sub.Unsubscribe()
		}
		s.cancel()
	})
	if err := s.g.Wait(ctx); err != nil {
		return fmt.Errorf("push: stop: %w", err)
	}
	return nil
}

// Deliver takes committed events (the committer's consumer): their push
// candidates are already in the outbox, so it only nudges the relay.
func (s *Service) Deliver(events []store.InboxEvent) {
	for _, ev := range events {
		if ev.Kind == store.KindMessage || ev.Kind == store.KindMention {
			s.Nudge()
			return
		}
	}
}

// Nudge makes the relay look at the outbox now.
func (s *Service) Nudge() {
	select {
	case s.nudge <- struct{}{}:
	default:
	}
}

// Acked records that a device of user acknowledged the delivery of
// (conv, seq) (its PUBACK).
func (s *Service) Acked(user, conv string, seq int64) {
	s.acks.record(user, conv, seq, time.Now())
	s.m.acksSeen.Inc()
}

// Connected runs after a CONNECT of user with client id: another user's
// registrations of that client id are removed [IM-17.1-2], off the
// CONNECT's goroutine.
func (s *Service) Connected(user, client string) {
	select {
	case s.takeover <- [2]string{user, client}:
	default:
		s.log.Warn("push: take-over queue full; registrations of a reused client id stay until the next CONNECT")
	}
}

func (s *Service) takeoverLoop() {
	for {
		select {
		case <-s.ctx.Done():
			return
		case uc := <-s.takeover:
			ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
			if n, err := s.cfg.Store.TakeOverClient(ctx, uc[1], uc[0]); err != nil {
				s.log.Warn("push: remove registrations of a reused client id", "error", err)
			} else if n > 0 {
				s.log.Info("push: client id now used by another user; its registrations removed", "user", uc[0], "removed", n)
			}
			cancel()
		}
	}
}
