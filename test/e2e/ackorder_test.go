package e2e

import (
	"fmt"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqim/mqim/protocol"
)

// TestPubackOrder [IM-4.4-5], [MQTT-4.6.0-2]: PUBACKs come in the order the
// publishes arrived, though sends wait for a commit while RPC requests,
// refused publishes and invalid sends are answered at once.
func TestPubackOrder(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		dl.dial(t, n, "bob", noSubscribe())
		raw, _ := dialRawOK(t, n, dl, "alice")
		const rounds = 40
		var want []uint16
		id := uint16(0)
		for i := range rounds {
			s := text(fmt.Sprintf("o%02d", i), "bob", "in order")
			id++
			raw.publish(id, protocol.SendTopic("alice"), mustEncode(t, protocol.JSON, &s)) // waits for a commit
			want = append(want, id)
			id++
			raw.publish(id, protocol.RPCTopic("alice", protocol.MethodSync), // answered at once
				[]byte(`{"reply_to":"im/v1/u/alice/reply/raw","limit":0}`))
			want = append(want, id)
			id++
			raw.publish(id, "elsewhere", []byte(`{}`)) // refused at once
			want = append(want, id)
		}
		var got []uint16
		for len(got) < len(want) {
			pk := raw.read()
			if pk.FixedHeader.Type == packets.Puback {
				got = append(got, pk.PacketID)
			}
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("PUBACK %d is for packet %d, want %d (got %v)", i, got[i], want[i], got)
			}
		}
	})
}
