// Package delivery gets committed events to devices. The core hands them
// to one port, the Dispatcher (deliver inbox events, broadcast a
// read-fan-out group message, membership changed, typing signal), which
// wraps each in an Envelope and passes the same envelopes to every Sink:
// local (push to the devices connected to this node) and cluster (the
// other nodes, over NATS, which hand them to their own local sink). An
// event is encoded once, by whichever sink needs its bytes first; devices
// that read JSON get it transcoded once per format (mqtt.NewOutbound).
//
// Push is the fast path: a device that misses an event sees a seq gap and
// pulls it with sync [IM-5.2-3], so sinks may drop under pressure (counted)
// but never reorder a user's events, and never block the caller.
//
// routes, beside it, is the cluster's routing table (presence, live nodes).
package delivery

import (
	"fmt"
	gosync "sync"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// Kind says what an Envelope carries.
type Kind uint8

const (
	// Inbox is a stored inbox event for User [IM-5.1].
	Inbox Kind = iota + 1
	// Group is a message of a read-fan-out group, for the topic of Conv
	// [IM-11.3-4].
	Group
	// Members is a committed membership change of Conv: every node drops
	// its cached membership answers and the removed users' subscriptions
	// [IM-11.4-4].
	Members
	// Signal is an ephemeral event for User (typing): never stored, at most
	// once [IM-15.1-2].
	Signal
)

// Envelope is one unit of delivery, shared by every sink. Its payload is
// the event as devices receive it, MessagePack (the outbound hook
// transcodes per device format), encoded once on first use.
type Envelope struct {
	Kind    Kind
	User    string   // Inbox, Signal: the recipient
	Conv    string   // Group, Members: the group
	Added   []string // Members
	Removed []string // Members

	once    gosync.Once
	ev      *store.InboxEvent // Inbox committed here
	msg     *store.Message    // Group committed here
	payload []byte
	err     error
}

// Received returns an envelope whose payload was encoded elsewhere (by the
// node that committed it).
func Received(kind Kind, user, conv string, payload []byte, added, removed []string) *Envelope {
	e := &Envelope{Kind: kind, User: user, Conv: conv, Added: added, Removed: removed, payload: payload}
	e.once.Do(func() {})
	return e
}

// Key is what orders envelopes: the user for inbox events and signals,
// the group for group events and membership changes.
func (e *Envelope) Key() string {
	if e.Kind == Group || e.Kind == Members {
		return e.Conv
	}
	return e.User
}

// Payload returns the encoded event (nil for Members), encoding it on the
// first call.
func (e *Envelope) Payload() ([]byte, error) {
	e.once.Do(func() {
		switch {
		case e.ev != nil:
			e.payload, e.err = EncodeEvent(e.ev)
		case e.msg != nil:
			e.payload, e.err = EncodeGroupEvent(e.msg)
		}
		if e.err != nil {
			e.err = fmt.Errorf("encode %s event for %s: %w", e.Kind, e.Key(), e.err)
		}
	})
	return e.payload, e.err
}

func (k Kind) String() string {
	switch k {
	case Inbox:
		return "inbox"
	case Group:
		return "group"
	case Members:
		return "members"
	case Signal:
		return "signal"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// A Sink takes envelopes, in the order of the calls, without blocking. It
// must not change them.
type Sink interface {
	Take(envs []*Envelope)
}

// Dispatcher is the port the core delivers through: the methods keep the
// shapes of the core's Consumer, Groups and Signaler (package im).
type Dispatcher struct {
	sinks []Sink
}

// NewDispatcher returns a Dispatcher handing every envelope to each sink,
// in this order.
func NewDispatcher(sinks ...Sink) *Dispatcher {
	return &Dispatcher{sinks: sinks}
}

func (d *Dispatcher) take(envs []*Envelope) {
	for _, s := range d.sinks {
		s.Take(envs)
	}
}

// Deliver hands committed inbox events, in commit order.
func (d *Dispatcher) Deliver(events []store.InboxEvent) {
	if len(events) == 0 {
		return
	}
	envs := make([]*Envelope, len(events))
	for i := range events {
		envs[i] = &Envelope{Kind: Inbox, User: events[i].User, ev: &events[i]}
	}
	d.take(envs)
}

// Broadcast hands a committed message of a read-fan-out group, for its
// group topic.
func (d *Dispatcher) Broadcast(msg *store.Message) {
	d.take([]*Envelope{{Kind: Group, Conv: msg.Conv, msg: msg}})
}

// MembersChanged hands a committed membership change. The local sink
// applies it before it returns: nothing published on the group topic after
// that reaches a removed member (mochi checks the ACL on every delivery).
func (d *Dispatcher) MembersChanged(conv string, added, removed []string) {
	d.take([]*Envelope{{Kind: Members, Conv: conv, Added: added, Removed: removed}})
}

// Signal hands an ephemeral event for user's devices [IM-15.1-2].
func (d *Dispatcher) Signal(user string, ev *protocol.Event) {
	e := &Envelope{Kind: Signal, User: user}
	e.once.Do(func() {
		if e.payload, e.err = protocol.Encode(protocol.MsgPack, ev); e.err != nil {
			e.err = fmt.Errorf("encode signal for %s: %w", user, e.err)
		}
	})
	d.take([]*Envelope{e})
}

// EncodeEvent encodes an inbox event as MessagePack, the form in which
// events travel inside the server; the outbound hook transcodes per device.
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
