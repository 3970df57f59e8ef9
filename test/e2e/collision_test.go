package e2e

import (
	"fmt"
	"slices"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqim/mqim/protocol"
)

// TestPacketIDCollision (BROKER-NOTES.md, "Packet-id collision"): a device
// holds QoS 1 deliveries unacknowledged while it publishes QoS 1 sends with
// the same packet ids (ids of the two directions are independent in MQTT).
// mochi would drop those deliveries for good; they must be re-sent under new
// ids [IM-5.2-1]. A raw client makes the collision deterministic.
func TestPacketIDCollision(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		alice := dl.dial(t, n, "alice")
		bob, _ := dialRawOK(t, n, dl, "bob")
		if codes, _ := bob.subscribe(1, protocol.InboxTopic("bob")); len(codes) != 1 || codes[0] != 1 {
			t.Fatalf("SUBACK %x", codes)
		}

		const k = 5
		for i := 1; i <= k; i++ {
			alice.sendOK(text(fmt.Sprintf("a%d", i), "bob", "from alice"))
		}
		decode := func(pk packets.Packet) protocol.Event {
			t.Helper()
			var ev protocol.Event
			if err := protocol.Decode(protocol.Detect(pk.Payload, pk.Properties.ContentType), pk.Payload, &ev); err != nil {
				t.Fatal(err)
			}
			return ev
		}
		// Receive the k deliveries and do not acknowledge them.
		held := map[uint16]int64{}
		for len(held) < k {
			pk := bob.read()
			if pk.FixedHeader.Type != packets.Publish || pk.FixedHeader.Qos != 1 || pk.TopicName != protocol.InboxTopic("bob") {
				t.Fatalf("unexpected packet %+v", pk.FixedHeader)
			}
			held[pk.PacketID] = decode(pk).Seq
		}
		ids := make([]uint16, 0, k)
		for id := range held {
			ids = append(ids, id)
		}
		slices.Sort(ids)

		// Publish sends with exactly those packet ids.
		for i, id := range ids {
			s := text(fmt.Sprintf("b%d", i+1), "alice", "from bob")
			bob.publish(id, protocol.SendTopic("bob"), mustEncode(t, protocol.JSON, &s))
		}

		var acked []uint16
		resent := map[int64]uint16{} // seq → new packet id
		own := map[int64]bool{}
		for len(acked) < k || len(resent) < k || len(own) < k {
			pk := bob.read()
			switch pk.FixedHeader.Type {
			case packets.Puback:
				if pk.ReasonCode != 0 {
					t.Fatalf("PUBACK %d: reason %#x", pk.PacketID, pk.ReasonCode)
				}
				acked = append(acked, pk.PacketID)
			case packets.Publish:
				ev := decode(pk)
				switch {
				case ev.Seq >= 1 && ev.Seq <= k:
					if _, dup := resent[ev.Seq]; dup {
						t.Fatalf("seq %d re-sent twice", ev.Seq)
					}
					if _, colliding := held[pk.PacketID]; colliding {
						t.Fatalf("seq %d re-sent under packet id %d, still in use by the device's publish", ev.Seq, pk.PacketID)
					}
					resent[ev.Seq] = pk.PacketID
				case ev.Seq > k && ev.Seq <= 2*k && ev.Msg != nil && ev.Msg.From == "bob":
					own[ev.Seq] = true
				default:
					t.Fatalf("unexpected event %+v", ev)
				}
				bob.puback(pk.PacketID)
			default:
				t.Fatalf("unexpected packet type %d", pk.FixedHeader.Type)
			}
		}
		if !slices.Equal(acked, ids) {
			t.Fatalf("PUBACKs %v, want %v in order", acked, ids)
		}
		for seq := int64(1); seq <= k; seq++ {
			if _, ok := resent[seq]; !ok {
				t.Fatalf("delivery of seq %d was lost", seq)
			}
		}
		// The sends were stored (alice sees them) and the connection is fine.
		for i := 1; i <= k; i++ {
			alice.waitFrom(0, fmt.Sprintf("message b%d", i), func(e event) bool {
				return e.Kind == protocol.KindMessage && e.Msg.Cmid == fmt.Sprintf("b%d", i)
			})
		}
	})
}

// TestPacketIDCollisionSubscribe: a SUBSCRIBE whose packet id is that of
// an unacknowledged delivery is granted (mochi would answer 0x91, packet
// identifier in use, for ids of the other direction), and the delivery is
// re-sent under a new id. A device subscribing to a group topic right after
// the switch event met it ([IM-11.3-5]).
func TestPacketIDCollisionSubscribe(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		alice := dl.dial(t, n, "alice")
		bob, _ := dialRawOK(t, n, dl, "bob")
		if codes, _ := bob.subscribe(1, protocol.InboxTopic("bob")); len(codes) != 1 || codes[0] != 1 {
			t.Fatalf("SUBACK %x", codes)
		}
		alice.sendOK(text("a1", "bob", "from alice"))
		pk := bob.read()
		if pk.FixedHeader.Type != packets.Publish || pk.FixedHeader.Qos != 1 {
			t.Fatalf("unexpected packet %+v", pk.FixedHeader)
		}
		held := pk.PacketID
		codes, other := bob.subscribe(held, "im/v1/u/bob/reply/#")
		if len(codes) != 1 || codes[0] != 1 {
			t.Fatalf("SUBACK %x for packet id %d of a held delivery", codes, held)
		}
		for len(other) == 0 {
			other = append(other, bob.read())
		}
		re := other[0]
		if re.FixedHeader.Type != packets.Publish || re.PacketID == held || string(re.Payload) != string(pk.Payload) {
			t.Fatalf("re-sent delivery: %+v (id %d), want the held one under a new id", re.FixedHeader, re.PacketID)
		}
		bob.puback(re.PacketID)
	})
}

// A client publish reusing the packet id of a delivery still held for the
// device's Receive Maximum moves that delivery to a free id and keeps it
// held: the device never has more unacknowledged deliveries than it allows
// (the re-issue used to write held deliveries at once), and gets each once.
func TestPacketIDCollisionHeld(t *testing.T) { forEachStore(t, testPacketIDCollisionHeld) }

func testPacketIDCollisionHeld(t *testing.T, be backend) {
	n := startNode(t, be)
	alice := dialer{5}.dial(t, n, "alice")
	bob, _ := dialRawProps(t, n.MQTTAddr(), 5, "bob", "bob.raw", token(t, "bob"), packets.Properties{ReceiveMaximum: 1})
	if codes, _ := bob.subscribe(1, protocol.InboxTopic("bob")); len(codes) != 1 || codes[0] != 1 {
		t.Fatalf("SUBACK %x", codes)
	}
	const k = 3
	for i := 1; i <= k; i++ {
		alice.sendOK(text(fmt.Sprintf("h%d", i), "bob", "from alice"))
	}
	first := bob.read()
	if first.FixedHeader.Type != packets.Publish {
		t.Fatalf("unexpected packet %+v", first.FixedHeader)
	}
	// The next deliveries wait for quota under the ids that follow; reuse them.
	for i := uint16(1); i < k; i++ {
		s := text(fmt.Sprintf("own-%d", i), "alice", "from bob")
		bob.publish(first.PacketID+i, protocol.SendTopic("bob"), mustEncode(t, protocol.JSON, &s))
		for {
			pk := bob.read()
			if pk.FixedHeader.Type == packets.Publish {
				t.Fatalf("a second delivery (id %d) while %d is unacknowledged: Receive Maximum 1 exceeded", pk.PacketID, first.PacketID)
			}
			if pk.FixedHeader.Type == packets.Puback && pk.PacketID == first.PacketID+i {
				break
			}
		}
	}
	// Acknowledge one at a time: the rest come, each once, one by one.
	seqs := map[int64]bool{}
	pk := first
	for {
		var ev protocol.Event
		if err := protocol.Decode(protocol.Detect(pk.Payload, pk.Properties.ContentType), pk.Payload, &ev); err != nil {
			t.Fatal(err)
		}
		if seqs[ev.Seq] {
			t.Fatalf("seq %d delivered twice", ev.Seq)
		}
		seqs[ev.Seq] = true
		bob.puback(pk.PacketID)
		if len(seqs) == k+k-1 { // alice's k and bob's own k-1 sends
			return
		}
		for pk = bob.read(); pk.FixedHeader.Type != packets.Publish; pk = bob.read() {
		}
	}
}
