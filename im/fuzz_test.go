package im

import (
	"testing"

	"github.com/mqim/mqim/protocol"
)

// FuzzCheckSend: the send validation never panics, and a body it accepts
// can be delivered in both formats [IM-4.2-4]: devices that asked for JSON
// must be able to read what a MessagePack device sent.
func FuzzCheckSend(f *testing.F) {
	for _, s := range []protocol.Send{
		{Cmid: "c1", To: "bob", Type: protocol.TypeText, Body: map[string]any{"text": "hi"}},
		{Cmid: "c\x01", To: "bob", Type: protocol.TypeImage, Body: map[string]any{"url": "/v1/media/ab", "w": []any{1.5, nil}}},
	} {
		for _, fm := range []protocol.Format{protocol.MsgPack, protocol.JSON} {
			p, err := protocol.Encode(fm, &s)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(p)
		}
	}
	f.Add([]byte{0x81, 0xa4, 'b', 'o', 'd', 'y', 0x81, 0xa1, 'x', 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0}) // NaN
	f.Fuzz(func(t *testing.T, p []byte) {
		var s protocol.Send
		if protocol.Decode(protocol.Detect(p, ""), p, &s) != nil {
			return
		}
		_ = validCmid(s.Cmid)
		if checkBody(s.Body, maxDepth) != nil {
			return
		}
		_ = protocol.CheckBody(s.Type, s.Body)
		for _, fm := range []protocol.Format{protocol.MsgPack, protocol.JSON} {
			if _, err := protocol.Encode(fm, s.Body); err != nil {
				t.Fatalf("accepted body %#v cannot be encoded as %s: %v", s.Body, fm, err)
			}
		}
	})
}
