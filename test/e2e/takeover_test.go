package e2e

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqim/mqim/protocol"
)

// TestSessionTakeover: a device reconnecting with its client id takes the
// old connection over [IM-3.1-6] (MQTT 5: DISCONNECT 0x8E), and the new
// connection gets every delivery: the old connection's teardown must not
// remove the new one's subscriptions (they share the client id). Repeated,
// because the teardown races with the new connection.
func TestSessionTakeover(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		alice := dl.dial(t, n, "alice", noSubscribe())
		prev := dl.dial(t, n, "bob", withClientID("bob.phone"))
		for i := range 15 {
			cur := dl.dial(t, n, "bob", withClientID("bob.phone"))
			select {
			case <-prev.c.done():
			case <-time.After(waitTimeout):
				t.Fatalf("round %d: the old connection is still up", i)
			}
			if dl.v5() {
				prev.expectServerDisconnect(0x8E)
			}
			s := text(fmt.Sprintf("t%d", i), "bob", "after takeover")
			if r := alice.send(s); r.Err != nil || r.Code != 0 {
				t.Fatalf("round %d: send: %+v", i, r)
			}
			if ev := cur.nextMessage(); ev.Msg.Cmid != s.Cmid {
				t.Fatalf("round %d: %v", i, ev)
			}
			call[protocol.SyncResult](cur, protocol.MethodSync, protocol.SyncRequest{Limit: 0})
			prev = cur
		}
	})
}

// TestRawSessionTakeover is TestSessionTakeover packet by packet: the old
// connection gets DISCONNECT 0x8E (MQTT 5; 3.1.1: the connection is
// closed) before the new one's CONNACK, which comes once the old one is torn
// down (the CONNECT waits on mochi's Client.Detached, bounded, instead of
// polling), and the new connection's subscription gets the next delivery.
func TestRawSessionTakeover(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		alice := dl.dial(t, n, "alice", noSubscribe())
		inbox := protocol.InboxTopic("bob")
		prev, _ := dialRaw(t, n.MQTTAddr(), dl.version, "bob", "bob.raw", token(t, "bob"))
		if codes, _ := prev.subscribe(1, inbox); len(codes) != 1 || codes[0] != 1 {
			t.Fatalf("SUBACK %v", codes)
		}
		for i := range 5 {
			cur, ca := dialRaw(t, n.MQTTAddr(), dl.version, "bob", "bob.raw", token(t, "bob"))
			if ca.ReasonCode != 0 {
				t.Fatalf("round %d: CONNACK %#x", i, ca.ReasonCode)
			}
			// The old connection has ended by now: what it got last is
			// queued in the test's reader.
			var last packets.Packet
			for pk := range prev.in {
				last = pk
			}
			if dl.v5() && (last.FixedHeader.Type != packets.Disconnect || last.ReasonCode != packets.ErrSessionTakenOver.Code) {
				t.Fatalf("round %d: the old connection's last packet: type %d reason %#x, want DISCONNECT 0x8E", i, last.FixedHeader.Type, last.ReasonCode)
			}
			if codes, _ := cur.subscribe(1, inbox); len(codes) != 1 || codes[0] != 1 {
				t.Fatalf("round %d: SUBACK %v", i, codes)
			}
			s := text(fmt.Sprintf("raw-t%d", i), "bob", "after takeover")
			if r := alice.send(s); r.Err != nil || r.Code != 0 {
				t.Fatalf("round %d: send: %+v", i, r)
			}
			for {
				pk := cur.read()
				if pk.FixedHeader.Type == packets.Publish && pk.TopicName == inbox && bytes.Contains(pk.Payload, []byte(s.Cmid)) {
					break
				}
			}
			prev = cur
		}
	})
}
