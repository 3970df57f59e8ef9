package server

import (
	gosync "sync"

	"github.com/nats-io/nats.go"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/mqim/mqim/protocol"
)

// signalSubject carries ephemeral events (typing) between nodes over core
// NATS: at most once, never stored [IM-15.1-2].
const signalSubject = "mqim.v1.signal"

// signalMsg is one ephemeral event for a user's devices.
type signalMsg struct {
	Origin  string `msgpack:"o"` // node that sent it; it delivered locally already
	User    string `msgpack:"u"`
	Payload []byte `msgpack:"p"` // the event, MessagePack
}

// Signal relays an ephemeral event to the user's devices on this node and,
// in a cluster, on the others.
func (n *Node) Signal(user string, ev *protocol.Event) {
	payload, err := protocol.Encode(protocol.MsgPack, ev)
	if err != nil {
		n.log.Error("encode signal", "error", err)
		return
	}
	n.deliverSignal(user, payload)
	if n.cfg.NATS == nil || n.cfg.Standalone {
		return
	}
	b, err := msgpack.Marshal(&signalMsg{Origin: n.cfg.NodeName, User: user, Payload: payload})
	if err == nil {
		err = n.cfg.NATS.Publish(signalSubject, b)
	}
	if err != nil {
		n.log.Warn("publish signal", "error", err)
	}
}

// subscribeSignals delivers other nodes' signals to local devices.
func (n *Node) subscribeSignals() error {
	if n.cfg.NATS == nil || n.cfg.Standalone {
		return nil
	}
	sub, err := n.cfg.NATS.Subscribe(signalSubject, func(m *nats.Msg) {
		var s signalMsg
		if err := msgpack.Unmarshal(m.Data, &s); err != nil || s.Origin == n.cfg.NodeName || !protocol.ValidID(s.User) {
			return
		}
		n.deliverSignal(s.User, s.Payload)
	})
	if err != nil {
		return err
	}
	n.signals.sub = sub
	return nil
}

// signals is the subscription to other nodes' signals. off is set once
// fanout may stop; a callback still running after Unsubscribe sees it.
type signals struct {
	mu  gosync.RWMutex
	off bool
	sub *nats.Subscription
}

func (n *Node) stopSignals() {
	n.signals.mu.Lock()
	defer n.signals.mu.Unlock()
	n.signals.off = true
	if n.signals.sub != nil {
		_ = n.signals.sub.Unsubscribe()
	}
}

// deliverSignal hands an encoded signal to fanout unless it is stopping.
func (n *Node) deliverSignal(user string, payload []byte) {
	n.signals.mu.RLock()
	defer n.signals.mu.RUnlock()
	if !n.signals.off {
		n.fanout.DeliverEncoded(user, payload)
	}
}

// userOnline reports whether a device of user is connected [IM-15.2-2]: to
// any node by the routing table, or, on a node without NATS, to this one.
func (n *Node) userOnline(user string) bool {
	if n.table != nil {
		return n.table.UserOnline(user)
	}
	for _, cl := range n.mqtt.Clients.GetAll() {
		if !cl.Net.Inline && !cl.Closed() && string(cl.Properties.Username) == user {
			return true
		}
	}
	return false
}
