package mqtt

import (
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// HardPacketFactor sets mochi's own packet limit above the announced one.
// mochi drops a connection whose packet exceeds its limit while reading the
// fixed header, without the DISCONNECT 0x95 MQTT 5 asks for; packets between
// the announced limit and mochi's are read and answered properly here, and
// only grossly oversized ones (more than 4× the limit) are cut off unread.
const HardPacketFactor = 4

// packetLimit is the hook that enforces the announced Maximum Packet Size
// [IM-1.3-1] with DISCONNECT 0x95 for MQTT 5 (3.1.1 has no such code: the
// connection is closed).
// NewPacketLimit returns the hook; add it first, so that an oversized
// packet is refused before other hooks look at it.
func NewPacketLimit(max uint32, server *mochi.Server) mochi.Hook {
	return &packetLimit{max: max, server: server}
}

type packetLimit struct {
	mochi.HookBase
	max    uint32
	server *mochi.Server
}

func (p *packetLimit) ID() string           { return "mqim-packet-limit" }
func (p *packetLimit) Provides(b byte) bool { return b == mochi.OnPacketRead }

func (p *packetLimit) OnPacketRead(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if packetSize(pk.FixedHeader.Remaining) <= p.max || cl.Net.Inline {
		return pk, nil
	}
	if cl.Properties.ProtocolVersion == 5 {
		_ = p.server.DisconnectClient(cl, packets.ErrPacketTooLarge)
	}
	return pk, packets.ErrRejectPacket // ends the connection
}

// packetSize is the size of a whole packet with the given remaining length.
func packetSize(remaining int) uint32 {
	n := uint32(1 + 1 + remaining) // fixed header byte, first length byte
	for r := remaining; r > 127; r >>= 7 {
		n++
	}
	return n
}
