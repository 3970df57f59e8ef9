package mqtt

import (
	"bytes"
	"log/slog"
	"testing"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqim/mqim/protocol"
)

// An event published to several JSON devices is transcoded once: every
// subscriber's copy carries the same Encodings, and the hook reuses the
// first device's JSON. MessagePack devices get the bytes as published.
func TestOutboundEncodesOncePerFormat(t *testing.T) {
	ev := protocol.Event{Kind: protocol.KindMessage, Seq: 7, Conv: "d:alice:bob", ConvSeq: 3, TS: 1}
	mp, err := protocol.Encode(protocol.MsgPack, &ev)
	if err != nil {
		t.Fatal(err)
	}
	devices := &Sessions{}
	var json1, json2, packed mochi.Client
	devices.Set(&json1, NewSession(&json1, "bob", "", protocol.JSON))
	devices.Set(&json2, NewSession(&json2, "bob", "", protocol.JSON))
	devices.Set(&packed, NewSession(&packed, "bob", "", protocol.MsgPack))
	h := NewOutbound(devices, slog.Default(), 1<<20)

	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, TopicName: protocol.InboxTopic("bob"),
		Payload: mp, Properties: packets.Properties{ContentType: EventContentType}, Shared: NewEncodings(mp)}
	a := h.OnPacketEncode(&json1, pk.Copy(false))
	b := h.OnPacketEncode(&json2, pk.Copy(false))
	c := h.OnPacketEncode(&packed, pk.Copy(false))

	var got protocol.Event
	if err := protocol.Decode(protocol.JSON, a.Payload, &got); err != nil || got.Seq != 7 || a.Properties.ContentType != protocol.JSON.ContentType() {
		t.Fatalf("JSON device got %q (%s): %v", a.Payload, a.Properties.ContentType, err)
	}
	if &a.Payload[0] != &b.Payload[0] {
		t.Error("the second JSON device's copy was transcoded again")
	}
	if !bytes.Equal(c.Payload, mp) || c.Properties.ContentType != protocol.ContentTypeMsgPack {
		t.Errorf("MessagePack device got %q (%s)", c.Payload, c.Properties.ContentType)
	}
}
