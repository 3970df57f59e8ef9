package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// run is one execution of the 1:1 scenario against one target.
type run struct {
	cfg      Config
	target   Target
	id       string        // run id: in client ids, cmids and stamps
	base     time.Time     // stamps carry send times relative to base
	start    time.Time     // start of the sending window (pacing origin)
	interval time.Duration // per sender, between scheduled sends; 0: unpaced
	pairs    []*pair
	inboxes  []string // receiver i's topic
	senders  []*sender
	c        counters
	issued   atomic.Int64 // publishes started (Messages mode)

	mu       gosync.Mutex
	clients  []*paho.Client
	firstErr error
	retired  map[string]bool // client ids disconnected on purpose mid-run
	closing  atomic.Bool
	rpcs     gosync.Map // RPCs in flight: correlation data → chan *paho.Publish
	rpcSeq   atomic.Int64

	// The push scenario: to names the recipient of a sender's message
	// (nil: its receiver), silent runs expect no delivery, lastPush is the
	// latest push's time since base.
	to       func(pair, seq int) string
	silent   bool
	lastPush atomic.Int64
}

// sender is one sending connection.
type sender struct {
	i      int
	client *paho.Client
	topic  string
	offset time.Duration // pacing phase, so that senders do not fire together
	next   atomic.Int64  // next seq
}

// Run1to1 runs the 1:1 scenario (see the package doc) against t: it
// connects the receivers and the senders, sends for cfg.Duration (or
// cfg.Messages messages), waits up to cfg.Drain for outstanding deliveries,
// disconnects everything and summarises. Cancelling ctx stops the run
// early; the summary then covers what happened until then.
func Run1to1(ctx context.Context, t Target, cfg Config) (*Summary, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	id, err := runID()
	if err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, target: t, id: id, base: time.Now()}
	r.pairs = make([]*pair, cfg.Senders)
	r.inboxes = make([]string, cfg.Senders)
	for i := range r.pairs {
		r.pairs[i] = &pair{}
		r.inboxes[i] = t.receiveTopic(i)
	}
	if cfg.Rate > 0 {
		r.interval = time.Duration(float64(cfg.Senders) / cfg.Rate * float64(time.Second))
	}
	defer r.disconnect()
	if err := r.connect(ctx); err != nil {
		return nil, fmt.Errorf("bench %s: %w", t.Name, err)
	}
	return r.execute(ctx), nil
}

func runID() (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("bench: run id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// receive handles every publish a client receives.
func (r *run) receive(pr paho.PublishReceived) (bool, error) {
	now := time.Since(r.base)
	text, err := r.target.text(pr.Packet)
	if err != nil {
		r.c.foreign.Add(1)
		return true, nil
	}
	st, err := parseStamp(text)
	if err != nil || st.run != r.id || st.pair >= len(r.pairs) ||
		pr.Packet.Topic != r.inboxes[st.pair] {
		r.c.foreign.Add(1)
		return true, nil
	}
	r.pairs[st.pair].deliver(st.seq, now-st.sent, &r.c)
	return true, nil
}

// phases are the contexts of a run's stages.
type phases struct {
	user    context.Context // the caller's: when it ends, stop and count nothing more
	sending context.Context // the sending window: no publish starts after it
	publish context.Context // ends with the drain: a publish still unanswered then failed
}

// execute sends, drains and summarises.
func (r *run) execute(ctx context.Context) *Summary {
	r.start = time.Now()
	var sendCtx context.Context
	var stopSending context.CancelFunc
	if r.cfg.Messages > 0 {
		sendCtx, stopSending = context.WithCancel(ctx) // until the senders have sent them
	} else {
		sendCtx, stopSending = context.WithDeadline(ctx, r.start.Add(r.cfg.Duration))
	}
	defer stopSending()
	pubCtx, stopPublishing := context.WithCancel(ctx)
	defer stopPublishing()
	ph := phases{user: ctx, sending: sendCtx, publish: pubCtx}

	progressCtx, stopProgress := context.WithCancel(ctx)
	var progress gosync.WaitGroup
	if r.cfg.Progress != nil {
		progress.Go(func() { r.progress(progressCtx) })
	}

	var workers gosync.WaitGroup
	for _, s := range r.senders {
		for range r.cfg.Inflight {
			workers.Go(func() { r.send(ph, s) })
		}
	}
	sent := make(chan struct{})
	go func() { workers.Wait(); close(sent) }()

	select {
	case <-sendCtx.Done():
	case <-sent:
	}
	window := time.Since(r.start)
	ackedInWindow, deliveredInWindow := r.c.acked.Load(), r.c.delivered.Load()
	stopSending()

	// Publishes still in flight and deliveries still outstanding get the
	// drain time, together: a server that stalls cannot hold the run.
	drainCtx, stopDraining := context.WithTimeout(ctx, r.cfg.Drain)
	defer stopDraining()
	select {
	case <-sent:
	case <-drainCtx.Done():
		stopPublishing()
		<-sent
	}
	r.drain(drainCtx)
	stopProgress()
	progress.Wait()
	r.disconnect()

	lat := latencies(r.pairs)
	s := &Summary{
		Scenario: "1to1", Target: r.target.Name,
		Senders: r.cfg.Senders, Inflight: r.cfg.Inflight, Rate: r.cfg.Rate, Size: r.cfg.Size,
		DurationS:       window.Seconds(),
		MsgsPerSec:      float64(ackedInWindow) / window.Seconds(),
		DeliveredPerSec: float64(deliveredInWindow) / window.Seconds(),
		P50ms:           ms(quantile(lat, 0.50)),
		P99ms:           ms(quantile(lat, 0.99)),
		P999ms:          ms(quantile(lat, 0.999)),
		Acked:           r.c.acked.Load(),
		Delivered:       r.c.delivered.Load(),
		Errors:          r.c.errors.Load(),
		Lost:            r.c.outstanding.Load(),
		Duplicates:      r.c.duplicates.Load(),
	}
	r.mu.Lock()
	if r.firstErr != nil {
		s.FirstError = r.firstErr.Error()
	}
	r.mu.Unlock()
	return s
}

// send is one of a sender's Inflight publishing loops.
func (r *run) send(ph phases, s *sender) {
	p := r.pairs[s.i]
	for ph.sending.Err() == nil {
		if r.cfg.Messages > 0 && r.issued.Add(1) > int64(r.cfg.Messages) {
			return
		}
		seq := int(s.next.Add(1) - 1)
		if r.interval > 0 && !sleepUntil(ph.sending, r.start.Add(s.offset+time.Duration(seq)*r.interval)) {
			return
		}
		to := receiverUser(s.i)
		if r.to != nil {
			to = r.to(s.i, seq)
		}
		payload, err := r.target.payloadTo(r.id, stamp{run: r.id, pair: s.i, seq: seq, sent: time.Since(r.base)}, r.cfg.Size, to)
		if err != nil {
			r.fail(err)
			return
		}
		_, err = s.client.Publish(ph.publish, &paho.Publish{QoS: 1, Topic: s.topic, Payload: payload})
		switch {
		case err == nil && r.silent:
			r.c.acked.Add(1)
		case err == nil:
			p.ack(seq, &r.c)
		case ph.user.Err() != nil:
			return
		case ph.publish.Err() != nil:
			r.fail(fmt.Errorf("%s: no PUBACK by the end of the drain: %w", senderUser(s.i), err))
			return
		default:
			r.fail(fmt.Errorf("%s: publish: %w", senderUser(s.i), err))
			select {
			case <-s.client.Done():
				return // connection lost: this sender is finished
			default:
			}
		}
	}
}

// sleepUntil waits for t; false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// drain waits until every acknowledged message was delivered, or ctx ends.
func (r *run) drain(ctx context.Context) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for r.c.outstanding.Load() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (r *run) progress(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastAcked, lastDelivered int64
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			acked, delivered := r.c.acked.Load(), r.c.delivered.Load()
			fmt.Fprintf(r.cfg.Progress, "[%s] %5.1fs acked %d (%d/s) delivered %d (%d/s) outstanding %d errors %d dups %d\n",
				r.target.Name, now.Sub(r.start).Seconds(), acked, acked-lastAcked, delivered, delivered-lastDelivered,
				r.c.outstanding.Load(), r.c.errors.Load(), r.c.duplicates.Load())
			lastAcked, lastDelivered = acked, delivered
		}
	}
}

// fail counts a failed publish and remembers the first error.
func (r *run) fail(err error) {
	r.c.errors.Add(1)
	r.mu.Lock()
	if r.firstErr == nil {
		r.firstErr = err
	}
	r.mu.Unlock()
}
