package mqtt

import (
	"log/slog"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqim/mqim/protocol"
)

// EventContentType marks inbox events inside the node: MessagePack, to be
// written in each device's format. It never reaches a device. (The topic
// cannot tell events apart: mochi blanks it when it uses a topic alias.)
const EventContentType = "application/x-mqim-event+msgpack"

// outbound is the hook that writes inbox events in each device's format
// [IM-1.2-3]. Events travel inside the node as MessagePack, marked by
// EventContentType; devices that read JSON get them transcoded here, once
// per delivery (JSON is the debugging path). RPC responses are already in
// the requester's format and pass unchanged.
// PresenceContentType marks retained presence publishes, which the
// outbound hook transcodes per device like events.
const PresenceContentType = "application/x-mqim-presence+msgpack"

// NewOutbound returns the hook; maxPacket is announced in CONNACK.
func NewOutbound(devices *Sessions, log *slog.Logger, maxPacket uint32) mochi.Hook {
	return &outbound{devices: devices, log: log, maxPacket: maxPacket}
}

type outbound struct {
	mochi.HookBase
	devices   *Sessions
	log       *slog.Logger
	maxPacket uint32 // announced in CONNACK
}

func (o *outbound) ID() string           { return "mqim-outbound" }
func (o *outbound) Provides(b byte) bool { return b == mochi.OnPacketEncode }

func (o *outbound) OnPacketEncode(cl *mochi.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type == packets.Connack && pk.ReasonCode == 0 {
		// mochi enforces its Maximum Packet Size but does not announce it
		// [IM-1.3]; the property is only encoded for MQTT 5.
		pk.Properties.MaximumPacketSize = o.maxPacket
		return pk
	}
	if pk.FixedHeader.Type == packets.Publish && pk.Properties.ContentType == PresenceContentType {
		return o.transcode(cl, pk, &protocol.Presence{})
	}
	if pk.FixedHeader.Type != packets.Publish || pk.Properties.ContentType != EventContentType {
		return pk
	}
	pk.Properties.ContentType = protocol.ContentTypeMsgPack
	dev := o.devices.Get(cl)
	if dev == nil || dev.Format == protocol.MsgPack {
		return pk
	}
	var ev protocol.Event
	payload, err := protocol.Transcode(pk.Payload, protocol.MsgPack, dev.Format, &ev)
	if err != nil {
		o.log.Error("transcode event", "client", cl.ID, "error", err)
		return pk
	}
	pk.Payload = payload
	pk.Properties.ContentType = dev.Format.ContentType()
	return pk
}

// transcode re-encodes a server publish of MessagePack v for the device's
// output format [IM-1.2-3].
func (o *outbound) transcode(cl *mochi.Client, pk packets.Packet, v any) packets.Packet {
	pk.Properties.ContentType = protocol.ContentTypeMsgPack
	dev := o.devices.Get(cl)
	if dev == nil || dev.Format == protocol.MsgPack {
		return pk
	}
	payload, err := protocol.Transcode(pk.Payload, protocol.MsgPack, dev.Format, v)
	if err != nil {
		o.log.Error("transcode", "client", cl.ID, "topic", pk.TopicName, "error", err)
		return pk
	}
	pk.Payload = payload
	pk.Properties.ContentType = dev.Format.ContentType()
	return pk
}
