package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqim/mqim/protocol"
)

// TestWillNeverPublished: wills are accepted at CONNECT and never published
// [IM-1.3-4]; a will would otherwise bypass the publish ACL.
func TestWillNeverPublished(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		bob := dl.dial(t, n, "bob")
		carol := dl.dial(t, n, "carol")
		fake := mustEncode(t, protocol.JSON, &protocol.Event{Kind: protocol.KindMessage, Seq: 1, Conv: "d:alice:bob", ConvSeq: 1,
			Msg: &protocol.Message{ID: 1, Conv: "d:alice:bob", Seq: 1, From: "alice", Cmid: "x", Type: "text", Body: map[string]any{"text": "spoofed"}}})
		for _, topic := range []string{protocol.InboxTopic("bob"), protocol.SendTopic("alice")} {
			alice := dl.dial(t, n, "alice", withWill(topic, fake))
			alice.closeAbruptly()
		}
		// bob's first event is carol's message: no will reached him, and
		// the will on alice's send topic was not sent as a message.
		carol.sendOK(text("c1", "bob", "real"))
		if ev := bob.nextMessage(); ev.Seq != 1 || ev.Msg.From != "carol" {
			t.Fatalf("bob: %v", ev)
		}
		if h := call[protocol.HistoryResult](bob, protocol.MethodHistory, protocol.HistoryRequest{With: "alice"}); len(h.Messages) != 0 {
			t.Fatalf("the will was stored: %+v", h.Messages)
		}
	})
}

// TestQoS2 [IM-1.3-2]: a QoS 2 subscription is granted QoS 1. A QoS 2 send
// from an MQTT 5 device, which was told Maximum QoS 1, ends the connection
// with DISCONNECT 0x9B; from a 3.1.1 device it is stored and answered with
// PUBREC, then PUBREL/PUBCOMP complete it.
func TestQoS2(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		dl.dial(t, n, "bob", noSubscribe())
		raw, ca := dialRawOK(t, n, dl, "alice")
		if dl.v5() && (!ca.Properties.MaximumQosFlag || ca.Properties.MaximumQos != 1) {
			t.Fatalf("CONNACK Maximum QoS %d (flag %v), want 1", ca.Properties.MaximumQos, ca.Properties.MaximumQosFlag)
		}
		sub := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe}, PacketID: 1,
			Filters: packets.Subscriptions{{Filter: protocol.InboxTopic("alice"), Qos: 2}}}
		raw.write(sub)
		if pk := raw.read(); pk.FixedHeader.Type != packets.Suback || len(pk.ReasonCodes) != 1 || pk.ReasonCodes[0] != 1 {
			t.Fatalf("SUBACK %+v %x, want granted QoS 1", pk.FixedHeader, pk.ReasonCodes)
		}
		s := text("q2", "bob", "exactly once?")
		raw.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 2}, PacketID: 9,
			TopicName: protocol.SendTopic("alice"), Payload: mustEncode(t, protocol.JSON, &s)})
		if dl.v5() {
			pk := raw.read()
			if pk.FixedHeader.Type != packets.Disconnect || pk.ReasonCode != packets.ErrQosNotSupported.Code {
				t.Fatalf("got %+v (reason %#x), want DISCONNECT 0x9B", pk.FixedHeader, pk.ReasonCode)
			}
			return
		}
		var recd, completed, seen bool
		for !completed || !seen {
			pk := raw.read()
			switch {
			case pk.FixedHeader.Type == packets.Pubrec && pk.PacketID == 9 && !recd:
				recd = true
				raw.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel}, PacketID: 9})
			case pk.FixedHeader.Type == packets.Pubcomp && pk.PacketID == 9 && recd:
				completed = true
			case pk.FixedHeader.Type == packets.Publish:
				if pk.FixedHeader.Qos != 1 {
					t.Fatalf("delivered with QoS %d", pk.FixedHeader.Qos)
				}
				var ev protocol.Event
				if err := protocol.Decode(protocol.Detect(pk.Payload, pk.Properties.ContentType), pk.Payload, &ev); err != nil || ev.Msg == nil || ev.Msg.Cmid != "q2" {
					t.Fatalf("event %+v: %v", ev, err)
				}
				raw.puback(pk.PacketID)
				seen = true
			default:
				t.Fatalf("unexpected packet %+v (reason %#x)", pk.FixedHeader, pk.ReasonCode)
			}
		}
	})
}

// TestPacketTooLarge: a packet over 256 KiB ends the connection; MQTT 5 is
// told the limit in CONNACK and gets DISCONNECT 0x95 [IM-1.3-1].
func TestPacketTooLarge(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		raw, ca := dialRawOK(t, n, dl, "alice")
		if dl.v5() && ca.Properties.MaximumPacketSize != 256<<10 {
			t.Fatalf("CONNACK Maximum Packet Size %d, want %d", ca.Properties.MaximumPacketSize, 256<<10)
		}
		s := text("big", "bob", strings.Repeat("x", 300<<10))
		raw.publish(1, protocol.SendTopic("alice"), mustEncode(t, protocol.JSON, &s))
		deadline := time.After(waitTimeout)
		var disconnect *packets.Packet
		for {
			select {
			case pk, ok := <-raw.in:
				if !ok {
					if dl.v5() && disconnect == nil {
						t.Fatal("connection closed without DISCONNECT 0x95")
					}
					if dl.v5() && disconnect.ReasonCode != 0x95 {
						t.Fatalf("DISCONNECT %#x, want 0x95", disconnect.ReasonCode)
					}
					return
				}
				if pk.FixedHeader.Type == packets.Disconnect {
					disconnect = &pk
					continue
				}
				t.Fatalf("unexpected packet %+v", pk.FixedHeader)
			case <-deadline:
				t.Fatal("the connection stayed open")
			}
		}
	})
}
