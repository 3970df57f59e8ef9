package ingest

import (
	"context"
	"errors"
	gosync "sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqim/mqim/hooks/device"
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// Signaler relays an ephemeral event to a user's online devices, on every
// node [IM-15.1-2]. Nothing of it is stored.
type Signaler interface {
	Signal(user string, ev *protocol.Event)
}

// Typing rate limit per connection [IM-15.1-3]: a bucket of typingBurst
// signals, refilled at one per typingEvery.
const (
	typingBurst = 5
	typingEvery = time.Second
)

// limiter is a token bucket per connection.
type limiter struct {
	mu      gosync.Mutex
	buckets map[*mqtt.Client]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func (l *limiter) allow(cl *mqtt.Client, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = make(map[*mqtt.Client]*bucket)
	}
	b, ok := l.buckets[cl]
	if !ok {
		b = &bucket{tokens: typingBurst, last: now}
		l.buckets[cl] = b
	}
	b.tokens = min(typingBurst, b.tokens+now.Sub(b.last).Seconds()/typingEvery.Seconds())
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (l *limiter) forget(cl *mqtt.Client) {
	l.mu.Lock()
	delete(l.buckets, cl)
	l.mu.Unlock()
}

// extTopic handles publishes to the topics of spec §15; it reports whether
// the topic was one of them.
func (h *Hook) extTopic(cl *mqtt.Client, dev *device.Device, s *slot, pk packets.Packet) bool {
	user, ok := protocol.ParseTypingTopic(pk.TopicName)
	if !ok || h.cfg.Signal == nil {
		return false
	}
	if user != dev.User {
		h.fail(cl, s, "", protocol.Errorf(protocol.CodeNotAuthorized, "may not publish to %q", pk.TopicName))
		return true
	}
	var t protocol.Typing
	if err := protocol.Decode(protocol.Detect(pk.Payload, pk.Properties.ContentType), pk.Payload, &t); err != nil {
		pe := protocol.Errorf(protocol.CodeBadPayload, "undecodable typing signal")
		errors.As(err, &pe)
		h.fail(cl, s, "", pe)
		return true
	}
	switch {
	case !protocol.ValidID(t.To) || t.To == dev.User:
		h.fail(cl, s, "", protocol.Errorf(protocol.CodeBadRequest, "to must be another user's id"))
		return true
	case t.State == "":
		t.State = protocol.StateTyping
	case t.State != protocol.StateTyping && t.State != protocol.StatePaused:
		h.fail(cl, s, "", protocol.Errorf(protocol.CodeBadRequest, "state must be typing or paused"))
		return true
	}
	ev := &protocol.Event{Kind: protocol.KindTyping, Conv: protocol.DirectConv(dev.User, t.To), User: dev.User,
		State: t.State, TS: time.Now().UnixMilli()}
	if !h.typing.allow(cl, time.Now()) {
		h.ack(cl, s, nil) // over the rate: dropped [IM-15.1-3]
		return true
	}
	// The block check runs here, on the publisher's read goroutine: it
	// costs only this (rate-limited) connection a short wait, keeps the
	// committer free for sends, and orders the signal after every block
	// change answered before it was read [IM-13.2-3].
	if h.allowedSignal(dev.User, t.To) {
		h.cfg.Signal.Signal(t.To, ev)
	}
	h.ack(cl, s, nil)
	return true
}

// typingTimeout bounds the block check of a typing signal; on a slow store
// the signal is dropped rather than the connection stalled.
const typingTimeout = 2 * time.Second

// allowedSignal reports whether to may receive from's signals: to has not
// blocked from, as far as the store can tell in time.
func (h *Hook) allowedSignal(from, to string) bool {
	if h.cfg.Ext == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), min(typingTimeout, h.cfg.Timeout))
	defer cancel()
	rels, err := h.cfg.Ext.Relations(ctx, []store.Pair{{Owner: to, Peer: from}})
	return err == nil && len(rels) == 1 && !rels[0].Blocked
}
