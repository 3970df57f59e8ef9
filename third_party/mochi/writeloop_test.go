// mqim patch: regression test for the WriteLoop flush (README.md).

package mqtt

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/mochi-mqtt/server/v2/system"
)

// A packet written while the queue holds one that then fails to write (too
// large for the client) must still reach the client: v2.7.9 left it in the
// write buffer until some later write, and a SUBACK never came.
func TestWriteLoopFlushesAfterFailedWrite(t *testing.T) {
	server, client := net.Pipe()
	defer server.Close()
	defer client.Close()
	cl := newClient(server, &ops{
		options: &Options{Capabilities: NewDefaultServerCapabilities(), ClientNetWriteBufferSize: 2048},
		info:    new(system.Info),
		hooks:   &Hooks{Log: fuzzLog},
		log:     fuzzLog,
	})
	cl.Properties.ProtocolVersion = 5
	cl.Properties.Props.MaximumPacketSize = 64
	defer cl.Stop(nil)

	big := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, TopicName: "t", Payload: make([]byte, 100)}
	cl.State.outbound <- &big // fails in WritePacket: larger than the client takes
	suback := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Suback}, PacketID: 7, ReasonCodes: []byte{1}}
	if err := cl.WritePacket(suback); err != nil { // buffered: the queue is not empty
		t.Fatal(err)
	}
	go cl.WriteLoop()

	_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(client)
	h, err := r.ReadByte()
	if err != nil {
		t.Fatalf("no packet reached the client: %v", err)
	}
	if h>>4 != packets.Suback {
		t.Fatalf("got packet type %d, want SUBACK", h>>4)
	}
}
