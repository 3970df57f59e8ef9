// Package local pushes committed inbox events to the devices connected to
// this node [IM-5.2]. It is the fast path only: a device that misses an event
// sees a seq gap and pulls it with sync, so fanout may drop under pressure
// but never reorders a user's events.
//
// Concurrency: Deliver is called by the committer, in commit order, and
// DeliverEncoded by the cluster bus with other nodes' events. Events of one
// user go through one shard worker, in the order they were handed over; a device that stalls its socket stalls only its shard,
// and a full shard drops events (counted) rather than blocking the caller.
package local

import (
	"hash/maphash"
	"log/slog"
	gosync "sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// Publisher publishes an encoded event on a user's inbox topic to the
// devices of that user connected to this node. InboxSubscribed says whether
// any device here subscribes to it: events nobody here reads (the sender's
// own copy, when the sender has no other device online) are not encoded.
type Publisher interface {
	PublishInbox(user string, payload []byte)
	InboxSubscribed(user string) bool
	// PublishGroup publishes an encoded group event on the topic of group
	// conv to the member devices on this node [IM-11.3].
	PublishGroup(conv string, payload []byte)
}

// Config configures a Fanout. Zero values mean the defaults noted.
type Config struct {
	Shards     int // zero: 16
	ShardQueue int // events buffered per shard; zero: 4096
	Log        *slog.Logger
	Registerer prometheus.Registerer // nil: metrics not registered
}

// Fanout delivers inbox events through a Publisher.
type Fanout struct {
	pub       Publisher
	log       *slog.Logger
	seed      maphash.Seed
	shards    []chan item
	wg        gosync.WaitGroup
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
			Name: "mqim_fanout_delivered_total", Help: "Inbox events published to local devices."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mqim_fanout_dropped_total", Help: "Inbox events dropped because a shard queue was full (devices recover by sync)."}),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(f.delivered, f.dropped)
	}
	f.shards = make([]chan item, cfg.Shards)
	for i := range f.shards {
		f.shards[i] = make(chan item, cfg.ShardQueue)
	}
	return f
}

// Start starts one worker per shard.
func (f *Fanout) Start() {
	for _, ch := range f.shards {
		f.wg.Add(1)
		go f.work(ch)
	}
}

// Stop delivers what is queued, then stops the workers. Events handed over
// after Stop (a cluster event still arriving while the node shuts down) are
// dropped.
func (f *Fanout) Stop() {
	f.closeOnce.Do(func() {
		f.mu.Lock()
		f.stopped = true
		for _, ch := range f.shards {
			close(ch)
		}
		f.mu.Unlock()
	})
	f.wg.Wait()
}

// item is one event to deliver: committed here (ev), or encoded by the
// node that committed it (payload).
type item struct {
	user    string
	ev      *store.InboxEvent
	payload []byte
	group   *store.Message // a message of a read-fan-out group; user is its conv
	toGroup bool           // payload is a group event for the topic of conv user
}

// Deliver queues events for delivery without blocking.
func (f *Fanout) Deliver(events []store.InboxEvent) {
	for i := range events {
		f.queue(item{user: events[i].User, ev: &events[i]})
	}
}

// DeliverGroup queues a committed message of a group that fans out on read,
// for its group topic. Messages of one group keep their order: they go
// through one shard, like the events of one user.
func (f *Fanout) DeliverGroup(msg *store.Message) {
	f.queue(item{user: msg.Conv, group: msg})
}

// DeliverGroupEncoded queues a group event encoded by EncodeGroupEvent on
// another node, for the group topic of conv.
func (f *Fanout) DeliverGroupEncoded(conv string, payload []byte) {
	f.queue(item{user: conv, payload: payload, toGroup: true})
}

// DeliverEncoded queues an event already encoded by EncodeEvent.
func (f *Fanout) DeliverEncoded(user string, payload []byte) {
	f.queue(item{user: user, payload: payload})
}

func (f *Fanout) queue(it item) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.stopped {
		f.dropped.Inc()
		return
	}
	ch := f.shards[maphash.String(f.seed, it.user)%uint64(len(f.shards))]
	select {
	case ch <- it:
	default:
		f.dropped.Inc()
	}
}

func (f *Fanout) work(ch <-chan item) {
	defer f.wg.Done()
	for it := range ch {
		if it.toGroup {
			f.pub.PublishGroup(it.user, it.payload)
			f.delivered.Inc()
			continue
		}
		if it.group != nil {
			payload, err := EncodeGroupEvent(it.group)
			if err != nil {
				f.log.Error("encode group event", "group", it.user, "seq", it.group.Seq, "error", err)
				continue
			}
			f.pub.PublishGroup(it.user, payload)
			f.delivered.Inc()
			continue
		}
		if !f.pub.InboxSubscribed(it.user) {
			continue
		}
		payload := it.payload
		if payload == nil {
			var err error
			if payload, err = EncodeEvent(it.ev); err != nil {
				f.log.Error("encode inbox event", "user", it.user, "seq", it.ev.Seq, "error", err)
				continue
			}
		}
		f.pub.PublishInbox(it.user, payload)
		f.delivered.Inc()
	}
}

// EncodeEvent encodes an inbox event as MessagePack, the form in which
// events travel inside the server; the broker transcodes per device.
func EncodeEvent(ev *store.InboxEvent) ([]byte, error) {
	w, err := ev.Wire()
	if err != nil {
		return nil, err
	}
	return protocol.Encode(protocol.MsgPack, &w)
}

// EncodeGroupEvent encodes the event of a read-fan-out group message as it
// goes out on the group topic [IM-11.3-4]: a message event with conv_seq and
// no inbox seq, as MessagePack.
func EncodeGroupEvent(m *store.Message) ([]byte, error) {
	w, err := m.Wire()
	if err != nil {
		return nil, err
	}
	return protocol.Encode(protocol.MsgPack, &protocol.Event{Kind: protocol.KindMessage, Conv: m.Conv, ConvSeq: m.Seq, Msg: &w, TS: m.TS})
}
