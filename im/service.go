package im

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mqim/mqim/internal/run"
	"github.com/mqim/mqim/internal/snowflake"
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// Consumer takes committed inbox events, in commit order, on the
// committer's goroutine: it must hand them on and not block. Local
// delivery and the cluster bus are consumers; so will be push and search
// indexing.
type Consumer interface {
	Deliver(events []store.InboxEvent)
}

// Groups takes what group changes and read-fan-out messages need beyond
// inbox events [IM-11.3]: Broadcast publishes a committed message on its
// group's topic; MembersChanged runs right after a membership change is
// committed and before anything later is handed on, so that a removed
// member's devices stop receiving the group at once.
type Groups interface {
	Broadcast(msg *store.Message)
	MembersChanged(conv string, added, removed []string)
}

// Signaler relays an ephemeral event to a user's online devices, on every
// node [IM-15.1-2]. Nothing of it is stored.
type Signaler interface {
	Signal(user string, ev *protocol.Event)
}

// Config configures the Service. Zero values mean the defaults noted.
type Config struct {
	Store     store.Store
	Consumers []Consumer
	Groups    Groups
	Signal    Signaler               // nil: typing signals are refused
	Online    func(user string) bool // whether a device of user is connected to any node
	Push      Pusher                 // push registrations (push.go); nil: push is off
	IDs       *snowflake.Generator   // nil: node 0

	MaxBody      int           // encoded body bytes; zero: 16 KiB
	RecallWindow time.Duration // how long after sending a sender may recall [IM-14.1-1]; zero: 2 minutes
	MaxBatch     int           // sends per commit; zero: 512
	QueueSize    int           // operations queued for the committer; zero: 8192
	RPCWorkers   int           // concurrent read RPCs; zero: 64
	Timeout      time.Duration // per store call; zero: 10 s
	// GroupReadFanout is the member count above which a group fans out on
	// read [IM-11.3-1]; zero: the store's default.
	GroupReadFanout int
	// Limits are the send and RPC rate limits (ratelimit.go); zero: none.
	Limits Limits
	// Moderation [IM-18]: the word filter and the before-send webhook,
	// policy checks after the rate limits; nil: off. BeforeSendCalls
	// bounds the webhook calls in flight on the node; zero: 256.
	Words           WordFilter
	BeforeSend      BeforeSend
	BeforeSendCalls int
	Log             *slog.Logger
	Registerer      prometheus.Registerer // nil: metrics not registered
}

// Service is the core. Start starts its committer; Shutdown drains it.
type Service struct {
	cfg   Config
	queue chan *op

	intake  sync.RWMutex // write-locked once, by Shutdown
	stopped bool
	rpcSem  chan struct{}
	seenSem chan struct{} // last-seen writes in flight (presence.go)
	// workers are the committer and the goroutines of Spawn; Shutdown
	// closes the group once the committer is done.
	workers run.Group
	done    chan struct{} // closed when the committer has exited
	stop    sync.Once
	started atomic.Bool

	checks  []check       // the policy stage (policy.go), in order
	limits  *limiter      // ratelimit.go
	hookSem chan struct{} // before-send webhook calls in flight (moderation.go)

	m metrics
}

// New returns the Service; Start starts its committer.
func New(cfg Config) *Service {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.MaxBody, 16<<10)
	def(&cfg.MaxBatch, 512)
	def(&cfg.QueueSize, 8192)
	def(&cfg.RPCWorkers, 64)
	def(&cfg.BeforeSendCalls, 256)
	if cfg.RecallWindow <= 0 {
		cfg.RecallWindow = 2 * time.Minute
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.IDs == nil {
		cfg.IDs, _ = snowflake.New(0)
	}
	s := &Service{
		cfg:     cfg,
		queue:   make(chan *op, cfg.QueueSize),
		rpcSem:  make(chan struct{}, cfg.RPCWorkers),
		seenSem: make(chan struct{}, lastSeenWriters),
		hookSem: make(chan struct{}, cfg.BeforeSendCalls),
		done:    make(chan struct{}),
		m:       newMetrics(cfg.Registerer),
		limits:  newLimiter(cfg.Limits, cfg.Log, cfg.Registerer),
	}
	s.checks = append(s.checks, s.sendLimit) // first: the cheapest
	s.checks = append(s.checks, s.moderationChecks()...)
	return s
}

// Start starts the committer.
func (s *Service) Start(context.Context) error {
	s.started.Store(true)
	s.workers.Go(s.commitLoop)
	return nil
}

// Shutdown stops taking commands (later ones are answered "unavailable"),
// commits and answers everything already queued, and waits for running
// RPCs and replies, or for ctx.
func (s *Service) Shutdown(ctx context.Context) error {
	s.stop.Do(func() {
		s.intake.Lock()
		s.stopped = true
		close(s.queue)
		s.intake.Unlock()
	})
	if s.started.Load() {
		select {
		case <-s.done: // the committer has drained the queue and answered
		case <-ctx.Done():
			return fmt.Errorf("drain the send pipeline: %w", ctx.Err())
		}
	}
	if err := s.workers.Wait(ctx); err != nil {
		return fmt.Errorf("drain the send pipeline: %w", err)
	}
	return nil
}

// Stopping reports whether Shutdown has begun.
func (s *Service) Stopping() bool {
	s.intake.RLock()
	defer s.intake.RUnlock()
	return s.stopped
}

// Spawn runs f, work for sess (nil if none), on a goroutine of the
// workers Shutdown waits for. A panic in f aborts sess, not the node. Once
// the drain is over (the committer has answered everything and Shutdown
// waits), the group refuses and f runs on the caller's goroutine: such work
// (a publish answered "unavailable", a late RPC) comes from a connection's
// own goroutine, which the transport waits for when it closes.
func (s *Service) Spawn(sess *Session, f func()) {
	work := func() {
		defer s.recoverSession(sess)
		f()
	}
	if !s.workers.Go(work) {
		work()
	}
}

// recoverSession is the seat belt of the goroutines spawned for a session,
// as mochi's read and write loops have theirs: a panic is logged once with
// the stack, counted, and ends that session's connection only.
func (s *Service) recoverSession(sess *Session) {
	r := recover()
	if r == nil {
		return
	}
	s.m.panics.Inc()
	id := ""
	if sess != nil {
		id = sess.Client
	}
	s.cfg.Log.Error("panic while handling a connection's request; closed it",
		"client", id, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	if sess != nil && sess.Abort != nil {
		sess.Abort(fmt.Errorf("%v", r))
	}
}

// op is one unit of work for the committer: a send, or a request whose
// effect is ordered with the sends around it.
type op struct {
	sess    *Session
	send    *store.SendRequest
	done    func(SendOutcome) // the answer to send
	ordered *orderedOp
}

// orderedOp is a request run by the committer, so that its effect (events
// in inboxes, a block, a membership change) is ordered with the sends
// around it.
type orderedOp struct {
	run   func(ctx context.Context) (result any, c committed, err error)
	reply func(result any, err error)
}

// committed is what an ordered request hands on after its commit.
type committed struct {
	events    []store.InboxEvent
	broadcast *store.Message
	// members, if set, is a membership change, handed to Groups before
	// anything later [IM-11.4-4].
	members *membersChange
}

type membersChange struct {
	conv           string
	added, removed []string
}

// enqueue hands o to the committer, blocking while the queue is full.
func (s *Service) enqueue(o *op) {
	s.intake.RLock()
	defer s.intake.RUnlock()
	if s.stopped {
		err := protocol.Errorf(protocol.CodeUnavailable, "node is shutting down")
		if o.ordered != nil {
			o.ordered.reply(nil, err)
		} else {
			o.done(SendOutcome{Cmid: o.send.Cmid, Err: err})
		}
		return
	}
	s.queue <- o
	s.m.queued.Inc()
}

// ordered queues run on the committer, answering reply off it.
func (s *Service) ordered(sess *Session, reply func(any, error), run func(ctx context.Context) (any, committed, error)) {
	s.enqueueInOrder(&op{sess: sess, ordered: &orderedOp{run: run, reply: reply}})
}

// async runs a read-only request on the RPC goroutines, bounded by
// RPCWorkers.
func (s *Service) async(sess *Session, reply func(any, error), f func(ctx context.Context) (any, error)) {
	select {
	case s.rpcSem <- struct{}{}:
	default:
		reply(nil, protocol.Errorf(protocol.CodeOverloaded, "too many requests in flight, retry later"))
		return
	}
	s.Spawn(sess, func() {
		defer func() { <-s.rpcSem }()
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
		defer cancel()
		reply(f(ctx))
	})
}

// deliver hands committed events to every consumer.
func (s *Service) deliver(events []store.InboxEvent) {
	if len(events) == 0 {
		return
	}
	for _, c := range s.cfg.Consumers {
		c.Deliver(events)
	}
}
