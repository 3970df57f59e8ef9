package sdk

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/mqim/mqim/protocol"
)

// Event kinds: the spec's [IM-5.1], and one the client adds.
const (
	KindMessage = protocol.KindMessage
	KindRead    = protocol.KindRead
	KindError   = protocol.KindError
	// KindReset is made by the client, never sent by the server: the server
	// no longer has the events after the cursor (sync answered reset, or
	// its latest seq is below the cursor). Seq is the server's latest seq,
	// where the cursor now is; the application must rebuild its state from
	// Conversations and History [IM-5.2-7].
	KindReset = "reset"
)

// maxQueued bounds the live events waiting for the processor. Beyond it
// events are dropped: the next one shows a gap and sync fetches them, so an
// application that does not read Events costs memory up to here, no more.
const maxQueued = 10000

// syncPage is the limit of each sync request of the processor.
const syncPage = 100

// Events returns the stream of inbox events: in inbox seq order, each
// stored event once, with no gap (missing events are fetched by sync before
// later ones are delivered). Ephemeral events (kind error, seq 0) are
// delivered when they arrive. The channel is closed by Close. Read it
// promptly: while it is not read, live events queue up (and beyond a bound
// are dropped and later synced). Nil with Config.NoEvents.
func (c *Client) Events() <-chan Event { return c.events }

// CaughtUp is closed once the event stream has caught up with the server
// for the first time: the sync after the first connect is complete and
// every event it returned was handed over (so read Events while waiting
// for it). From then on, with SkipBacklog, nothing older than the events
// to come is skipped. Never closed with Config.NoEvents.
func (c *Client) CaughtUp() <-chan struct{} { return c.caughtUp }

// inbox is the queue of live events between paho's goroutine, which must
// not block, and the processor.
type inbox struct {
	mu     sync.Mutex
	queue  []Event
	notify chan struct{} // cap 1
}

func (q *inbox) push(ev Event) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queue) >= maxQueued {
		return false
	}
	q.queue = append(q.queue, ev)
	select {
	case q.notify <- struct{}{}:
	default:
	}
	return true
}

func (q *inbox) take() []Event {
	q.mu.Lock()
	defer q.mu.Unlock()
	evs := q.queue
	q.queue = nil
	return evs
}

// cursorView is the cursor as other goroutines read it.
type cursorView struct {
	mu  sync.Mutex
	seq int64
}

func (v *cursorView) get() int64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.seq
}

func (v *cursorView) set(seq int64) {
	v.mu.Lock()
	v.seq = seq
	v.mu.Unlock()
}

// onPublish runs on paho's goroutine for every publish received, in arrival
// order. It must not block.
func (c *Client) onPublish(pr paho.PublishReceived) (bool, error) {
	p := pr.Packet
	switch p.Topic {
	case c.replyTopic:
		c.onReply(p)
		return true, nil
	case protocol.InboxTopic(c.cfg.User):
	default:
		if isGroupTopic(p.Topic) {
			c.onGroupPublish(p)
			return true, nil
		}
		return false, nil
	}
	if c.cfg.NoEvents {
		return true, nil
	}
	var ev Event
	if err := protocol.Decode(protocol.Detect(p.Payload, contentType(p)), p.Payload, &ev); err != nil {
		// If it had a seq, the next event shows the gap and sync gets it.
		c.log.Warn("mqim: undecodable inbox event ignored", "error", err)
		return true, nil
	}
	if c.hooks.dropEvent != nil && c.hooks.dropEvent(ev) {
		return true, nil
	}
	if !c.in.push(ev) {
		c.log.Warn("mqim: event queue full; event dropped, sync will fetch it", "seq", ev.Seq)
	}
	return true, nil
}

// processor owns the cursor and the held events.
type processor struct {
	c      *Client
	cursor int64
	held   map[int64]Event // received ahead of the cursor (after a gap)
	gap    bool            // a gap was seen: sync
}

// process is the goroutine that turns live events and sync results into
// the Events stream [IM-5.2-3]. While it syncs, live events wait in the
// queue and are merged afterwards: duplicates dropped by seq, the rest in
// order.
func (c *Client) process() {
	defer close(c.events)
	p := &processor{c: c, cursor: c.cursor.get(), held: make(map[int64]Event)}
	needSync := false
	var quiet <-chan time.Time
	var quietTimer *time.Timer
	if c.cfg.QuietSync > 0 {
		quietTimer = time.NewTimer(c.cfg.QuietSync)
		defer quietTimer.Stop()
		quiet = quietTimer.C
	}
	failures := 0
	for {
		if needSync {
			err := p.catchUp()
			switch {
			case err == nil:
				needSync, failures = false, 0
				c.upOnce.Do(func() { close(c.caughtUp) })
			case c.ctx.Err() != nil:
				return
			default:
				// A refused sync (not a lost connection: the RPC retries
				// those itself). Try again later or on the next connect.
				c.log.Warn("mqim: sync failed", "error", err)
				failures++
				select {
				case <-c.ctx.Done():
					return
				case <-c.upSig:
				case <-time.After(retryDelay(failures + 4)):
				}
				continue
			}
		}
		select {
		case <-c.ctx.Done():
			return
		case <-c.upSig:
			needSync = true // after every (re)connect [IM-5.2-4]
		case <-quiet:
			needSync = true // [IM-5.2-5]
		case <-c.in.notify:
			for _, ev := range c.in.take() {
				if !p.apply(ev) {
					return
				}
			}
			if p.gap {
				needSync = true
			}
		}
		if quietTimer != nil {
			quietTimer.Reset(c.cfg.QuietSync)
		}
	}
}

// apply takes one event, live or from sync; it reports false when the
// client stopped while handing it over.
func (p *processor) apply(ev Event) bool {
	switch {
	case ev.Seq == 0:
		// Ephemeral (error): no seq, no cursor [IM-5.1-4].
		return p.emit(ev)
	case ev.Seq <= p.cursor:
		return true // duplicate
	case ev.Seq > p.cursor+1:
		if len(p.held) < maxQueued { // beyond, sync fetches it again
			p.held[ev.Seq] = ev
		}
		p.gap = true
		return true
	}
	if !p.emit(ev) {
		return false
	}
	// Held events that are now contiguous follow.
	for {
		next, ok := p.held[p.cursor+1]
		if !ok {
			break
		}
		delete(p.held, next.Seq)
		if !p.emit(next) {
			return false
		}
	}
	return true
}

// emit hands ev to the application and, for a stored event, moves the
// cursor over it. Events of unknown kinds are handed over too; they move
// the cursor like any other [IM-5.1-5].
func (p *processor) emit(ev Event) bool {
	c := p.c
	select {
	case c.events <- ev:
	case <-c.ctx.Done():
		return false
	}
	if ev.Seq > 0 {
		p.setCursor(ev.Seq)
	}
	return true
}

func (p *processor) setCursor(seq int64) {
	p.cursor = seq
	p.c.cursor.set(seq)
	for s := range p.held {
		if s <= seq {
			delete(p.held, s)
		}
	}
	if err := p.c.cfg.Cursor.Save(p.c.ctx, seq); err != nil && p.c.ctx.Err() == nil {
		p.c.log.Warn("mqim: cannot save cursor", "seq", seq, "error", err)
	}
}

// catchUp syncs from the cursor until the server has nothing more
// [IM-5.2-4], applying the events in order. Held live events fill in as the
// cursor reaches them.
func (p *processor) catchUp() error {
	c := p.c
	if p.cursor == 0 && c.cfg.SkipBacklog {
		res, err := c.syncRPC(0, 0)
		if err != nil {
			return err
		}
		if res.Latest > 0 {
			p.setCursor(res.Latest)
		}
	}
	for {
		res, err := c.syncRPC(p.cursor, syncPage)
		if err != nil {
			return err
		}
		if c.hooks.afterSync != nil {
			c.hooks.afterSync(p.cursor, res)
		}
		if res.Reset || res.Latest < p.cursor {
			// The server lost what the cursor points into [IM-5.2-7].
			clear(p.held)
			if !p.emit(Event{Kind: KindReset, Seq: res.Latest}) {
				return c.ctx.Err()
			}
			p.setCursor(res.Latest)
			p.gap = false
			return nil
		}
		before := p.cursor
		for _, ev := range res.Events {
			if !p.apply(ev) {
				return c.ctx.Err()
			}
		}
		if !res.HasMore {
			// Everything up to latest is applied; held events beyond it
			// (none, normally) stay for the next round.
			p.gap = len(p.held) > 0 && p.cursor < res.Latest
			if p.gap {
				return errors.New("sync did not fill the gap")
			}
			return nil
		}
		if p.cursor == before {
			return errors.New("sync made no progress")
		}
	}
}

// syncRPC is one sync request of the processor; it retries across
// reconnects until the client closes.
func (c *Client) syncRPC(after int64, limit int) (SyncResult, error) {
	if c.hooks.beforeSync != nil {
		c.hooks.beforeSync(after)
	}
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	return c.Sync(ctx, after, limit)
}

// Event kinds of spec §14–§16.
const (
	KindRecall   = protocol.KindRecall   // stored: a message was recalled; Msg is it now
	KindEdit     = protocol.KindEdit     // stored: a message was edited; Msg is it now
	KindDelete   = protocol.KindDelete   // stored: the user deleted a message for itself
	KindSettings = protocol.KindSettings // stored: the user's conversation settings changed
	KindTyping   = protocol.KindTyping   // ephemeral (Seq 0): User is typing in Conv
	KindMention  = protocol.KindMention  // stored: User mentioned the user in Msg, of a read-fan-out group [IM-11.6-2]
)
