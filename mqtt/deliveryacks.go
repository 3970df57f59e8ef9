package mqtt

// The delivery-acks hook is the glue between mochi and offline push: the
// PUBACK of an inbox or group-topic delivery tells push that a device of the
// user got the message live, and a CONNECT lets push drop another user's
// registrations of the client id.

import (
	"bytes"
	"strings"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// AckSink is what push takes from the broker.
type AckSink interface {
	Acked(user, conv string, seq int64)
	Connected(user, client string)
}

// DeliveryAcks reports acknowledged deliveries and connects to an AckSink.
type DeliveryAcks struct {
	mochi.HookBase
	devices *Sessions
	sink    AckSink
}

// NewDeliveryAcks returns the hook.
func NewDeliveryAcks(devices *Sessions, sink AckSink) *DeliveryAcks {
	return &DeliveryAcks{devices: devices, sink: sink}
}

// ID names the hook.
func (h *DeliveryAcks) ID() string { return "mqim-delivery-acks" }

// Provides says which events the hook handles.
func (h *DeliveryAcks) Provides(b byte) bool {
	return bytes.Contains([]byte{mochi.OnPacketRead, mochi.OnSessionEstablished}, []byte{b})
}

// OnSessionEstablished tells push about the CONNECT.
func (h *DeliveryAcks) OnSessionEstablished(cl *mochi.Client, _ packets.Packet) {
	if d := h.devices.Get(cl); d != nil && cl.ID != "" {
		h.sink.Connected(d.User, cl.ID)
	}
}

// OnPacketRead sees a device's PUBACK before mochi settles it (mochi's
// OnQosComplete gets the PUBACK only, not what it acknowledges): for the
// delivery of a message on its inbox or a group topic, push learns
// (conv, seq).
func (h *DeliveryAcks) OnPacketRead(cl *mochi.Client, ack packets.Packet) (packets.Packet, error) {
	if ack.FixedHeader.Type == packets.Puback && ack.ReasonCode < packets.ErrUnspecifiedError.Code && !cl.Net.Inline {
		if pk, ok := cl.State.Inflight.Get(ack.PacketID); ok && pk.FixedHeader.Type == packets.Publish {
			h.acked(cl, pk)
		}
	}
	return ack, nil
}

func (h *DeliveryAcks) acked(cl *mochi.Client, pk packets.Packet) {
	if !strings.HasSuffix(pk.TopicName, "/inbox") && !strings.HasPrefix(pk.TopicName, protocol.GroupTopic("")) {
		return
	}
	d := h.devices.Get(cl)
	if d == nil {
		return
	}
	var ev struct {
		Kind    string `json:"kind" msgpack:"kind"`
		Conv    string `json:"conv" msgpack:"conv"`
		ConvSeq int64  `json:"conv_seq" msgpack:"conv_seq"`
		Msg     *struct {
			Conv string `json:"conv" msgpack:"conv"`
			Seq  int64  `json:"seq" msgpack:"seq"`
		} `json:"msg" msgpack:"msg"`
	}
	if protocol.Decode(protocol.Detect(pk.Payload, pk.Properties.ContentType), pk.Payload, &ev) != nil {
		return
	}
	conv, seq := ev.Conv, ev.ConvSeq
	if ev.Msg != nil && seq == 0 {
		conv, seq = ev.Msg.Conv, ev.Msg.Seq
	}
	if ev.Kind != store.KindMessage && ev.Kind != store.KindMention || conv == "" || seq == 0 {
		return
	}
	h.sink.Acked(d.User, conv, seq)
}
