package broker

import (
	"context"
	"log/slog"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqim/mqim/hooks/device"
	"github.com/mqim/mqim/protocol"
)

// eventContentType marks inbox events inside the node: MessagePack, to be
// written in each device's format. It never reaches a device. (The topic
// cannot tell events apart: mochi blanks it when it uses a topic alias.)
const eventContentType = "application/x-mqim-event+msgpack"

// outbound is the hook that writes inbox events in each device's format
// [IM-1.2-3]. Events travel inside the node as MessagePack, marked by
// eventContentType; devices that read JSON get them transcoded here, once
// per delivery (JSON is the debugging path). RPC responses are already in
// the requester's format and pass unchanged.
type outbound struct {
	mqtt.HookBase
	devices   *device.Registry
	log       *slog.Logger
	maxPacket uint32 // announced in CONNACK
}

func (o *outbound) ID() string           { return "mqim-outbound" }
func (o *outbound) Provides(b byte) bool { return b == mqtt.OnPacketEncode }

func (o *outbound) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type == packets.Connack && pk.ReasonCode == 0 {
		// mochi enforces its Maximum Packet Size but does not announce it
		// [IM-1.3]; the property is only encoded for MQTT 5.
		pk.Properties.MaximumPacketSize = o.maxPacket
		return pk
	}
	if pk.FixedHeader.Type == packets.Publish && pk.Properties.ContentType == presenceContentType {
		return o.transcode(cl, pk, &protocol.Presence{}) // presence.go
	}
	if pk.FixedHeader.Type != packets.Publish || pk.Properties.ContentType != eventContentType {
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

// redact is a slog handler for mochi's logger that drops packet and will
// attributes (mochi logs whole packets, message bodies included) and keeps
// only warnings and errors: the node logs its own start-up.
type redact struct{ slog.Handler }

func (r redact) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && r.Handler.Enabled(ctx, l)
}

func (r redact) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, rec.Message, rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "pk", "packet", "will":
		default:
			out.AddAttrs(a)
		}
		return true
	})
	return r.Handler.Handle(ctx, out)
}

func (r redact) WithAttrs(as []slog.Attr) slog.Handler { return redact{r.Handler.WithAttrs(as)} }
func (r redact) WithGroup(g string) slog.Handler       { return redact{r.Handler.WithGroup(g)} }
