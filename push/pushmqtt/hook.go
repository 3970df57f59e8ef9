// Package pushmqtt is the glue between mochi and push: the PUBACK of an
// inbox or group-topic delivery tells push that a device of the user got
// the message live, and a CONNECT lets push drop another user's
// registrations of the client id.
package pushmqtt

import (
	"bytes"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	imqtt "github.com/mqim/mqim/mqtt"
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// Sink is what push takes from the broker.
type Sink interface {
	Acked(user, conv string, seq int64)
	Connected(user, client string)
}

// Hook reports acknowledged deliveries and connects to a Sink.
type Hook struct {
	mqtt.HookBase
	devices *imqtt.Sessions
	sink    Sink
}

// New returns the hook.
func New(devices *imqtt.Sessions, sink Sink) *Hook { return &Hook{devices: devices, sink: sink} }

// ID names the hook.
func (h *Hook) ID() string { return "mqim-push" }

// Provides says which events the hook handles.
func (h *Hook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnPacketRead, mqtt.OnSessionEstablished}, []byte{b})
}

// OnSessionEstablished tells push about the CONNECT.
func (h *Hook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	if d := h.devices.Get(cl); d != nil && cl.ID != "" {
		h.sink.Connected(d.User, cl.ID)
	}
}

// OnPacketRead sees a device's PUBACK before mochi settles it (mochi's
// OnQosComplete gets the PUBACK only, not what it acknowledges): for the
// delivery of a message on its inbox or a group topic, push learns
// (conv, seq).
func (h *Hook) OnPacketRead(cl *mqtt.Client, ack packets.Packet) (packets.Packet, error) {
	if ack.FixedHeader.Type == packets.Puback && ack.ReasonCode < packets.ErrUnspecifiedError.Code && !cl.Net.Inline {
		if pk, ok := cl.State.Inflight.Get(ack.PacketID); ok && pk.FixedHeader.Type == packets.Publish {
			h.acked(cl, pk)
		}
	}
	return ack, nil
}

func (h *Hook) acked(cl *mqtt.Client, pk packets.Packet) {
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
