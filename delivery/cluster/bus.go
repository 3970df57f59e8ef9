// Package cluster carries committed inbox events between the nodes of a cluster
// over NATS JetStream [IM-5.2]. It broadcasts: every node publishes the
// events it commits to one stream, and every node reads the whole stream and
// hands each event to its local fan-out, which skips users with no device on
// that node. docs/CLUSTER.md gives the numbers behind broadcasting rather
// than targeting nodes through the routing table.
//
// Broadcast is what makes delivery race-free: an event is published after it
// is committed and checked against local subscriptions when it arrives, so a
// device that subscribes before the event arrives gets it pushed, and one
// that subscribes later finds it with the sync it must run after
// subscribing ([IM-5.2-4]). A routing table read on the sending node could be
// stale by the time the event is published.
//
// Groups [IM-11.3]: the bus also carries the events of read-fan-out groups
// (for the group topic on every node) and membership changes (so that every
// node drops its cached membership answers and a removed member's
// subscriptions at once), in commit order with the inbox events.
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

	"github.com/mqim/mqim/store"
)

const (
	streamName   = "MQIM_EVENTS"
	subject      = "mqim.events"
	originHeader = "Mqim-Origin"
	// maxMsgBytes keeps one NATS message well under the default 1 MiB
	// max_payload; a commit batch with more events is split.
	maxMsgBytes = 512 << 10
)

// Local delivers one encoded event to the devices of user on this node.
type Local interface {
	DeliverEncoded(user string, payload []byte)
}

// Encoder encodes an inbox event in the form devices receive.
type Encoder func(*store.InboxEvent) ([]byte, error)

// GroupLocal takes the group traffic of other nodes on this node.
type GroupLocal interface {
	// DeliverGroupEncoded publishes an encoded group event on the group
	// topic of conv to the devices on this node.
	DeliverGroupEncoded(conv string, payload []byte)
	// ForgetMembers applies a membership change committed elsewhere.
	ForgetMembers(conv string, added, removed []string)
}

// GroupEncoder encodes a read-fan-out group message for its group topic.
type GroupEncoder func(*store.Message) ([]byte, error)

// Config configures a Bus. Zero values mean the defaults noted.
type Config struct {
	Local       Local
	Encode      Encoder
	Groups      GroupLocal    // nil: group traffic of other nodes is dropped
	EncodeGroup GroupEncoder  // required with Groups
	Replicas    int           // stream replicas; zero: 1
	MaxAge      time.Duration // how long the stream keeps events; zero: 2 minutes
	Queue       int           // commit batches waiting to be published; zero: 1024
	Log         *slog.Logger
	Registerer  prometheus.Registerer
}

// Bus publishes this node's committed events and delivers other nodes'.
type Bus struct {
	cfg    Config
	nc     *nats.Conn
	js     jetstream.JetStream
	origin string
	log    *slog.Logger

	queue  chan item
	mu     gosync.RWMutex // enqueue holds it shared; Stop exclusively, to close queue
	closed bool
	ctx    context.Context
	cancel context.CancelFunc
	wg     gosync.WaitGroup

	resync  chan struct{} // NATS reconnected: check the stream and consumer
	flushed chan struct{} // closed when the queue is published and acknowledged

	published, received, dropped, failed prometheus.Counter
}

// wireEvent is one event in a bus message: the user it is for and its
// encoding; or, with Group set, a group event (Payload) or a membership
// change (Added, Removed) of that group.
type wireEvent struct {
	User    string   `msgpack:"u"`
	Payload []byte   `msgpack:"p"`
	Group   string   `msgpack:"g,omitempty"`
	Added   []string `msgpack:"a,omitempty"`
	Removed []string `msgpack:"r,omitempty"`
}

// item is one unit of the publish queue: a commit batch's inbox events, a
// group message, or a membership change.
type item struct {
	events []store.InboxEvent
	group  *store.Message
	change *wireEvent
}

// New returns a Bus on nc; Start starts it.
func New(nc *nats.Conn, cfg Config) (*Bus, error) {
	if cfg.Local == nil || cfg.Encode == nil {
		return nil, errors.New("bus: Local and Encode are required")
	}
	if cfg.Groups != nil && cfg.EncodeGroup == nil {
		return nil, errors.New("bus: EncodeGroup is required with Groups")
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
		queue:  make(chan item, cfg.Queue),
		resync: make(chan struct{}, 1),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mqim_bus_published_total", Help: "Inbox events published to other nodes."}),
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mqim_bus_received_total", Help: "Inbox events received from other nodes."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mqim_bus_dropped_total", Help: "Inbox events not published (queue full or NATS unavailable); devices recover them by sync."}),
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
func (b *Bus) Start() {
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.wg.Add(2)
	b.flushed = make(chan struct{})
	go b.publishLoop()
	go b.consumeLoop()
}

// resyncSoon makes the consumer loop check the stream now.
func (b *Bus) resyncSoon() {
	select {
	case b.resync <- struct{}{}:
	default:
	}
}

// Stop publishes what is queued (bounded by ctx), waits for the
// acknowledgements and stops consuming. What is handed over after Stop is
// dropped.
func (b *Bus) Stop(ctx context.Context) error {
	if b.cancel == nil {
		return nil
	}
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
	b.wg.Wait()
	return err
}

// Deliver queues a commit batch for the other nodes without blocking.
func (b *Bus) Deliver(events []store.InboxEvent) {
	if len(events) == 0 {
		return
	}
	b.enqueue(item{events: events}, len(events))
}

// DeliverGroup queues a committed read-fan-out group message for the group
// topic on the other nodes.
// Without Config.EncodeGroup it does nothing.
func (b *Bus) DeliverGroup(msg *store.Message) {
	if b.cfg.EncodeGroup != nil {
		b.enqueue(item{group: msg}, 1)
	}
}

// MembersChanged queues a committed membership change for the other nodes.
func (b *Bus) MembersChanged(conv string, added, removed []string) {
	b.enqueue(item{change: &wireEvent{Group: conv, Added: added, Removed: removed}}, 1)
}

func (b *Bus) enqueue(it item, n int) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed { // stopping: the events stay in the store, devices sync
		b.dropped.Add(float64(n))
		return
	}
	select {
	case b.queue <- it:
	default:
		b.dropped.Add(float64(n))
	}
}

func (b *Bus) publishLoop() {
	defer b.wg.Done()
	for it := range b.queue {
		switch {
		case it.group != nil:
			p, err := b.cfg.EncodeGroup(it.group)
			if err != nil {
				b.log.Error("encode group event", "group", it.group.Conv, "seq", it.group.Seq, "error", err)
				continue
			}
			b.sendOne(wireEvent{Group: it.group.Conv, Payload: p})
		case it.change != nil:
			b.sendOne(*it.change)
		default:
			b.publish(it.events)
		}
	}
	// Wait for outstanding acknowledgements, bounded by Stop's deadline.
	select {
	case <-b.js.PublishAsyncComplete():
		close(b.flushed)
	case <-b.ctx.Done():
	}
}

func (b *Bus) publish(events []store.InboxEvent) {
	batch := make([]wireEvent, 0, len(events))
	size := 0
	flush := func() {
		if len(batch) == 0 {
			return
		}
		n := len(batch)
		if err := b.send(batch); err != nil {
			b.dropped.Add(float64(n))
			b.log.Warn("publish events to the cluster", "events", n, "error", err)
		} else {
			b.published.Add(float64(n))
		}
		batch, size = batch[:0], 0
	}
	for i := range events {
		p, err := b.cfg.Encode(&events[i])
		if err != nil {
			b.log.Error("encode inbox event", "user", events[i].User, "seq", events[i].Seq, "error", err)
			continue
		}
		if size+len(p) > maxMsgBytes {
			flush()
		}
		batch = append(batch, wireEvent{User: events[i].User, Payload: p})
		size += len(p) + len(events[i].User) + 8
	}
	flush()
}

func (b *Bus) sendOne(ev wireEvent) {
	if err := b.send([]wireEvent{ev}); err != nil {
		b.dropped.Inc()
		b.log.Warn("publish group traffic to the cluster", "group", ev.Group, "error", err)
		return
	}
	b.published.Inc()
}

func (b *Bus) send(batch []wireEvent) error {
	data, err := msgpack.Marshal(batch)
	if err != nil {
		return err
	}
	msg := nats.NewMsg(subject)
	msg.Header.Set(originHeader, b.origin)
	msg.Data = data
	_, err = b.js.PublishMsgAsync(msg)
	return err
}

// consumeLoop keeps an ordered consumer on the stream. The ordered consumer
// resumes after a NATS reconnect where it left off; only a stream that was
// re-created (NATS lost its storage) needs a new consumer, from new events.
func (b *Bus) consumeLoop() {
	defer b.wg.Done()
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
	return c.Consume(b.receive)
}

func (b *Bus) receive(msg jetstream.Msg) {
	if msg.Headers().Get(originHeader) == b.origin {
		return // delivered locally when committed
	}
	var batch []wireEvent
	if err := msgpack.Unmarshal(msg.Data(), &batch); err != nil {
		b.log.Error("undecodable cluster event message", "error", err)
		return
	}
	for _, ev := range batch {
		switch {
		case ev.Group == "":
			b.cfg.Local.DeliverEncoded(ev.User, ev.Payload)
		case b.cfg.Groups == nil:
		case ev.Payload != nil:
			b.cfg.Groups.DeliverGroupEncoded(ev.Group, ev.Payload)
		default:
			b.cfg.Groups.ForgetMembers(ev.Group, ev.Added, ev.Removed)
		}
	}
	b.received.Add(float64(len(batch)))
}
