// Package cluster is the delivery sink for the other nodes of a cluster
// [IM-5.2]: it carries the dispatcher's envelopes over NATS and hands other
// nodes' envelopes to this node's local sink. It broadcasts: every node
// publishes the events it commits to one JetStream stream, and every node
// reads the whole stream and hands each event to its local sink, which
// skips users with no device on that node. docs/CLUSTER.md gives the
// numbers behind broadcasting rather than targeting nodes through the
// routing table.
//
// Broadcast is what makes delivery race-free: an event is published after it
// is committed and checked against local subscriptions when it arrives, so a
// device that subscribes before the event arrives gets it pushed, and one
// that subscribes later finds it with the sync it must run after
// subscribing ([IM-5.2-4]). A routing table read on the sending node could be
// stale by the time the event is published.
//
// Every kind of envelope travels in one wire form with one origin header,
// and one receive path drops this node's own: stored events (inbox, group,
// membership changes, in commit order) on the stream; typing signals, which
// are never stored [IM-15.1-2], on a core NATS subject, at most once. The
// payload is the one the local sink encoded (or encodes here, once, for
// both).
//
// Push stays best effort: if NATS is unreachable, events are dropped
// (counted) and devices recover them by sync; a node that reconnects resumes
// the stream where it left off.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	gosync "sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/mqim/mqim/delivery"
	"github.com/mqim/mqim/internal/run"
)

const (
	streamName = "MQIM_EVENTS"
	subject    = "mqim.events"
	// signalSubject carries signals over core NATS: never stored.
	signalSubject = "mqim.signals"
	originHeader  = "Mqim-Origin"
	// maxMsgBytes keeps one NATS message well under the default 1 MiB
	// max_payload; a commit batch with more events is split.
	maxMsgBytes = 512 << 10
)

// Config configures a Bus. Zero values mean the defaults noted.
type Config struct {
	Local      delivery.Sink // takes the other nodes' envelopes; required
	Replicas   int           // stream replicas; zero: 1
	MaxAge     time.Duration // how long the stream keeps events; zero: 2 minutes
	Queue      int           // batches waiting to be published; zero: 1024
	Log        *slog.Logger
	Registerer prometheus.Registerer
}

// Bus publishes this node's committed events and delivers other nodes'.
type Bus struct {
	cfg    Config
	nc     *nats.Conn
	js     jetstream.JetStream
	origin string
	log    *slog.Logger

	queue  chan []*delivery.Envelope
	sub    *nats.Subscription // other nodes' signals
	mu     gosync.RWMutex     // enqueue holds it shared; Stop exclusively, to close queue
	closed bool
	ctx    context.Context
	cancel context.CancelFunc
	loops  run.Group // publish and consume

	resync  chan struct{} // NATS reconnected: check the stream and consumer
	flushed chan struct{} // closed when the queue is published and acknowledged

	published, received, dropped, failed prometheus.Counter
}

// wireEnvelope is an envelope in a bus message: the user it is for and its
// payload; or, with Group set, a group event (Payload) or a membership
// change (Added, Removed) of that group. Which kind is told by the fields,
// and Signal by the subject.
type wireEnvelope struct {
	User    string   `msgpack:"u"`
	Payload []byte   `msgpack:"p"`
	Group   string   `msgpack:"g,omitempty"`
	Added   []string `msgpack:"a,omitempty"`
	Removed []string `msgpack:"r,omitempty"`
}

// New returns a Bus on nc; Start starts it.
func New(nc *nats.Conn, cfg Config) (*Bus, error) {
	if cfg.Local == nil {
		return nil, errors.New("bus: Local is required")
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 2 * time.Minute
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 1024
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	b := &Bus{
		cfg: cfg, nc: nc, origin: hex.EncodeToString(id[:]), log: cfg.Log,
		queue:  make(chan []*delivery.Envelope, cfg.Queue),
		resync: make(chan struct{}, 1),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mqim_bus_published_total", Help: "Events published to other nodes."}),
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mqim_bus_received_total", Help: "Events received from other nodes."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mqim_bus_dropped_total", Help: "Events not published (queue full or NATS unavailable); devices recover them by sync."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mqim_bus_publish_failed_total", Help: "Bus messages NATS did not store (each holds a commit batch's events)."}),
	}
	// Acknowledgements are not awaited per message; failures are counted
	// here, and a missing stream is re-created.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(1024),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
			b.failed.Inc()
			b.log.Warn("cluster did not store events", "error", err)
			if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
				b.resyncSoon()
			}
		}))
	if err != nil {
		return nil, fmt.Errorf("bus: jetstream: %w", err)
	}
	b.js = js
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(b.published, b.received, b.dropped, b.failed)
	}
	return b, nil
}

// Start creates the stream if needed and starts publishing and consuming.
// It does not wait for NATS: while NATS is unreachable, the node runs and
// the bus catches up when it is back.
func (b *Bus) Start(context.Context) error {
	sub, err := b.nc.Subscribe(signalSubject, func(m *nats.Msg) { b.receive(true, m.Header.Get(originHeader), m.Data) })
	if err != nil {
		return fmt.Errorf("bus: subscribe to signals: %w", err)
	}
	b.sub = sub
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.flushed = make(chan struct{})
	b.loops.Go(b.publishLoop)
	b.loops.Go(b.consumeLoop)
	return nil
}

// resyncSoon makes the consumer loop check the stream now.
func (b *Bus) resyncSoon() {
	select {
	case b.resync <- struct{}{}:
	default:
	}
}

// Shutdown publishes what is queued (bounded by ctx), waits for the
// acknowledgements and stops consuming. What is handed over after
// Shutdown is dropped.
func (b *Bus) Shutdown(ctx context.Context) error {
	if b.cancel == nil {
		return nil
	}
	_ = b.sub.Unsubscribe()
	b.mu.Lock()
	b.closed = true
	close(b.queue)
	b.mu.Unlock()
	var err error
	select {
	case <-b.flushed:
	case <-ctx.Done():
		err = fmt.Errorf("bus: stop: %w", ctx.Err())
	}
	b.cancel()
	if werr := b.loops.Wait(ctx); err == nil && werr != nil {
		err = fmt.Errorf("bus: stop: %w", werr)
	}
	return err
}

// Take queues envelopes for the other nodes without blocking.
func (b *Bus) Take(envs []*delivery.Envelope) {
	if len(envs) == 0 {
		return
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed { // stopping: the events stay in the store, devices sync
		b.dropped.Add(float64(len(envs)))
		return
	}
	select {
	case b.queue <- envs:
	default:
		b.dropped.Add(float64(len(envs)))
	}
}

func (b *Bus) publishLoop() {
	for envs := range b.queue {
		b.publish(envs)
	}
	// Wait for outstanding acknowledgements, bounded by Stop's deadline.
	select {
	case <-b.js.PublishAsyncComplete():
		close(b.flushed)
	case <-b.ctx.Done():
	}
}

// publish sends envelopes in messages of at most maxMsgBytes, in order;
// signals go on their own subject.
func (b *Bus) publish(envs []*delivery.Envelope) {
	batch := make([]wireEnvelope, 0, len(envs))
	size := 0
	flush := func() {
		if len(batch) == 0 {
			return
		}
		n := len(batch)
		if err := b.send(subject, batch); err != nil {
			b.dropped.Add(float64(n))
			b.log.Warn("publish events to the cluster", "events", n, "error", err)
		} else {
			b.published.Add(float64(n))
		}
		batch, size = batch[:0], 0
	}
	for _, e := range envs {
		p, err := e.Payload()
		if err != nil {
			b.log.Error("undeliverable event", "error", err)
			continue
		}
		w := wireEnvelope{User: e.User, Payload: p, Group: e.Conv, Added: e.Added, Removed: e.Removed}
		if e.Kind == delivery.Signal {
			if err := b.send(signalSubject, []wireEnvelope{w}); err != nil {
				b.dropped.Inc()
				b.log.Warn("publish signal to the cluster", "error", err)
			} else {
				b.published.Inc()
			}
			continue
		}
		if size+len(p) > maxMsgBytes {
			flush()
		}
		batch = append(batch, w)
		size += len(p) + len(e.User) + len(e.Conv) + 8
	}
	flush()
}

func (b *Bus) send(subj string, batch []wireEnvelope) error {
	data, err := msgpack.Marshal(batch)
	if err != nil {
		return err
	}
	msg := nats.NewMsg(subj)
	msg.Header.Set(originHeader, b.origin)
	msg.Data = data
	if subj == signalSubject {
		return b.nc.PublishMsg(msg)
	}
	_, err = b.js.PublishMsgAsync(msg)
	return err
}

// consumeLoop keeps an ordered consumer on the stream. The ordered consumer
// resumes after a NATS reconnect where it left off; only a stream that was
// re-created (NATS lost its storage) needs a new consumer, from new events.
func (b *Bus) consumeLoop() {
	var (
		cc      jetstream.ConsumeContext
		created time.Time
	)
	defer func() {
		if cc != nil {
			cc.Stop()
		}
	}()
	backoff := 100 * time.Millisecond
	// After a reconnect the stream may be a new one (NATS lost its storage).
	check := time.NewTicker(time.Second)
	defer check.Stop()
	reconnects := b.nc.Stats().Reconnects
	for {
		info, err := b.ensureStream()
		switch {
		case err != nil:
			b.log.Warn("cluster event stream unavailable; devices on this node get other nodes' events by sync until it is back", "error", err)
		case cc == nil || !info.Created.Equal(created):
			if cc != nil {
				cc.Stop()
				cc = nil
			}
			if cc, err = b.consume(); err != nil {
				b.log.Warn("consume cluster events", "error", err)
			} else {
				created = info.Created
				backoff = 100 * time.Millisecond
			}
		}
		var retry <-chan time.Time
		if err != nil {
			retry = time.After(backoff)
			backoff = min(2*backoff, 5*time.Second)
		}
		var closed <-chan struct{}
		if cc != nil {
			closed = cc.Closed()
		}
		select {
		case <-b.ctx.Done():
			return
		case <-b.resync:
		case <-check.C:
			if r := b.nc.Stats().Reconnects; r == reconnects {
				continue
			} else {
				reconnects = r
			}
		case <-retry:
		case <-closed:
			cc = nil
		}
	}
}

func (b *Bus) ensureStream() (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, err := b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:     streamName,
		Subjects: []string{subject},
		Storage:  jetstream.FileStorage,
		Replicas: b.cfg.Replicas,
		MaxAge:   b.cfg.MaxAge,
		MaxBytes: 1 << 30,
		Discard:  jetstream.DiscardOld,
	})
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", streamName, err)
	}
	return s.CachedInfo(), nil
}

func (b *Bus) consume() (jetstream.ConsumeContext, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	c, err := b.js.OrderedConsumer(ctx, streamName, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return nil, err
	}
	return c.Consume(b.receiveStored)
}

func (b *Bus) receiveStored(msg jetstream.Msg) {
	b.receive(false, msg.Headers().Get(originHeader), msg.Data())
}

// receive is the one way in for other nodes' envelopes: this node's own
// are dropped (delivered locally when committed), the rest handed to the
// local sink in the order they were published.
func (b *Bus) receive(signal bool, origin string, data []byte) {
	if origin == b.origin {
		return
	}
	var batch []wireEnvelope
	if err := msgpack.Unmarshal(data, &batch); err != nil {
		b.log.Error("undecodable cluster event message", "error", err)
		return
	}
	envs := make([]*delivery.Envelope, 0, len(batch))
	for _, w := range batch {
		kind := delivery.Inbox
		switch {
		case signal:
			kind = delivery.Signal
		case w.Group == "":
		case w.Payload != nil:
			kind = delivery.Group
		default:
			kind = delivery.Members
		}
		envs = append(envs, delivery.Received(kind, w.User, w.Group, w.Payload, w.Added, w.Removed))
	}
	b.cfg.Local.Take(envs)
	b.received.Add(float64(len(batch)))
}
