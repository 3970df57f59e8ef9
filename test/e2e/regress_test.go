package e2e

import (
	"bytes"
	"math"
	"testing"

	"github.com/mqim/mqim/protocol"
)

// TestNonFiniteNumbersRefused [IM-4.2-4]: MessagePack can carry NaN and
// infinities, JSON cannot; a stored NaN would make every JSON device's
// sync fail for good, so such a body is refused.
func TestNonFiniteNumbersRefused(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		alice := dl.dial(t, n, "alice")
		dl.dial(t, n, "bob", noSubscribe())
		for i, x := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
			s := protocol.Send{Cmid: "nan" + string(rune('a'+i)), To: "bob", Type: protocol.TypeCustom,
				Body: map[string]any{"x": []any{1, map[string]any{"y": x}}}}
			mark := alice.mark()
			r := alice.publish(protocol.SendTopic("alice"), mustEncode(t, protocol.MsgPack, &s))
			alice.expectRefused(mark, r, protocol.CodeBadRequest, s.Cmid)
		}
		alice.sendOK(text("after", "bob", "still fine"))
	})
}

// TestResponseToAnotherDeviceUnchanged [IM-7.1-6]: a response goes to the
// reply topic in the requester's format, even when that topic belongs to
// another device of the user that reads JSON.
func TestResponseToAnotherDeviceUnchanged(t *testing.T) {
	forEachStore(t, func(t *testing.T, be backend) {
		n := startNode(t, be)
		dl := dialer{5}
		mp := dl.dial(t, n, "alice")
		js := dl.dial(t, n, "alice", withFormatProp("json"))
		mark := len(js.strays())
		mp.publish(protocol.RPCTopic("alice", protocol.MethodSync), mustEncode(t, protocol.MsgPack, &protocol.SyncRequest{Limit: 0}),
			withResponse(js.replyTopic(), []byte("x1")))
		var got inbound
		if !waitUntil(waitTimeout, func() bool {
			s := js.strays()
			if len(s) > mark {
				got = s[mark]
				return true
			}
			return false
		}) {
			t.Fatal("the JSON device got no response")
		}
		if got.ContentType != protocol.ContentTypeMsgPack || !bytes.Equal(got.Correlation, []byte("x1")) {
			t.Fatalf("response content type %q, correlation %q", got.ContentType, got.Correlation)
		}
		var resp protocol.Response
		if err := protocol.Decode(protocol.MsgPack, got.Payload, &resp); err != nil || !resp.OK {
			t.Fatalf("response %+v: %v", resp, err)
		}
	})
}
