package mqtt

import (
	"log/slog"
	gosync "sync"

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
// per event and format when the publish carries Encodings (the hook runs
// once per subscriber). RPC responses are already in the requester's
// format and pass unchanged.
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
	var payload []byte
	var err error
	if enc, ok := pk.Shared.(*Encodings); ok {
		payload, err = enc.in(dev.Format)
	} else {
		payload, err = protocol.Transcode(pk.Payload, protocol.MsgPack, dev.Format, &protocol.Event{})
	}
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

// Encodings caches an event's encodings for the formats devices read. The
// node hangs one on each event it publishes (packets.Packet.Shared, kept by
// every subscriber's copy), so that the first JSON device transcodes and
// the others reuse it.
type Encodings struct {
	msgpack []byte
	once    gosync.Once
	json    []byte
	err     error
}

// NewEncodings returns the cache for an event encoded as MessagePack.
func NewEncodings(msgpack []byte) *Encodings { return &Encodings{msgpack: msgpack} }

func (e *Encodings) in(f protocol.Format) ([]byte, error) {
	if f == protocol.MsgPack {
		return e.msgpack, nil
	}
	e.once.Do(func() {
		e.json, e.err = protocol.Transcode(e.msgpack, protocol.MsgPack, protocol.JSON, &protocol.Event{})
	})
	return e.json, e.err
}
