package mqtt

import (
	gosync "sync"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqim/mqim/im"
	"github.com/mqim/mqim/protocol"
)

// slot is one QoS 1 publish waiting for its PUBACK. Publishes are answered
// in the order they arrived on the connection [MQTT-4.6.0-2], although
// persistence finishes them out of order relative to RPCs.
type slot struct {
	conn     *conn
	packetID uint16
	ackType  byte // packets.Puback, or packets.Pubrec for a 3.1.1 QoS 2 publish
	done     bool
	out      []packets.Packet // the PUBACK, preceded by an error event for 3.1.1
}

// conn is the send-pipeline state of one connection, from its first
// publish to its disconnect.
type conn struct {
	cl       *mochi.Client
	sess     *im.Session
	mu       gosync.Mutex
	pending  []*slot
	flushing bool
	qos2     map[uint16]bool // 3.1.1 publishes read as QoS 2, by packet id
	room     chan struct{}   // closed (and replaced) when pending shrinks
	gone     chan struct{}   // closed at disconnect
}

// conns maps clients to their conn; entries live from the first publish
// to the disconnect. Slots keep their conn, so a commit that finishes after
// the disconnect does not bring the entry back.
type conns struct {
	m gosync.Map // *mochi.Client → *conn
}

// get returns cl's conn, made with sess (nil: not an authenticated
// device, whose publishes are all refused).
func (cs *conns) get(cl *mochi.Client, sess *im.Session) *conn {
	if c, ok := cs.m.Load(cl); ok {
		return c.(*conn)
	}
	if sess == nil {
		sess = NewSession(cl, "", "", protocol.MsgPack)
	}
	c, _ := cs.m.LoadOrStore(cl, &conn{cl: cl, sess: sess, room: make(chan struct{}), gone: make(chan struct{})})
	return c.(*conn)
}

// drop forgets cl's conn and wakes publishes waiting for room.
func (cs *conns) drop(cl *mochi.Client) {
	if c, ok := cs.m.LoadAndDelete(cl); ok {
		close(c.(*conn).gone)
	}
}

// markQoS2 notes that the publish with packetID arrived as QoS 2; mochi
// downgrades it to QoS 1 before OnPublish sees it.
func (c *conn) markQoS2(packetID uint16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.qos2 == nil {
		c.qos2 = make(map[uint16]bool)
	}
	c.qos2[packetID] = true
}

// push appends a slot for packetID while fewer than max are pending. When
// max are, it fails if wait is false (MQTT 5: the client broke Receive
// Maximum); otherwise it waits for room (MQTT 3.1.1, which has no Receive
// Maximum: the connection's reading stops, which pushes back on the client)
// and fails only if the connection goes.
func (c *conn) push(packetID uint16, max int, wait bool) (*slot, bool) {
	c.mu.Lock()
	for len(c.pending) >= max {
		if !wait {
			c.mu.Unlock()
			return nil, false
		}
		room := c.room
		c.mu.Unlock()
		select {
		case <-room:
		case <-c.gone:
			return nil, false
		}
		c.mu.Lock()
	}
	defer c.mu.Unlock()
	s := &slot{conn: c, packetID: packetID, ackType: packets.Puback}
	if c.qos2[packetID] {
		delete(c.qos2, packetID)
		s.ackType = packets.Pubrec
	}
	c.pending = append(c.pending, s)
	return s, true
}

// resolve completes s with out and writes every completed slot at the head
// of the queue. Writing happens on a goroutine of the conn's own, so that a
// client that does not read stalls nobody but itself.
func (c *conn) resolve(s *slot, out []packets.Packet, spawn func(*im.Session, func())) {
	c.mu.Lock()
	s.out, s.done = out, true
	start := !c.flushing && len(c.pending) > 0 && c.pending[0].done
	if start {
		c.flushing = true
	}
	c.mu.Unlock()
	if start {
		spawn(c.sess, c.flush)
	}
}

func (c *conn) flush() {
	for {
		c.mu.Lock()
		n := 0
		for n < len(c.pending) && c.pending[n].done {
			n++
		}
		if n == 0 {
			c.flushing = false
			c.mu.Unlock()
			return
		}
		ready := make([]*slot, n)
		copy(ready, c.pending)
		c.pending = c.pending[n:]
		close(c.room)
		c.room = make(chan struct{})
		c.mu.Unlock()
		for _, s := range ready {
			for _, pk := range s.out {
				// A closed connection fails the write; the client resends the
				// publish on reconnect and the cmid makes that harmless.
				_ = c.cl.WritePacket(pk)
			}
		}
	}
}
