package e2e

import (
	"strings"
	"testing"

	"github.com/mqim/mqim/protocol"
)

// TestBadInput: every malformed or invalid send gets its documented code
// [IM-4.1-3], [IM-6.1-1], reported per [IM-4.4-3] / [IM-4.4-6]; the
// connection stays usable [IM-6.1-3]; nothing is stored and a message
// acknowledged before stays intact.
func TestBadInput(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		alice := dl.dial(t, n, "alice")
		bob := dl.dial(t, n, "bob")
		good := alice.sendOK(text("good-1", "bob", "keep me"))
		orig := alice.historyAll("d:alice:bob")[0]

		enc := func(v any) []byte { return alice.encode(v) }
		mp := func(v any) []byte { return mustEncode(t, protocol.MsgPack, v) }
		valid := mp(text("x-1", "bob", "y"))
		body := map[string]any{"text": "x"}
		// The body limit is 16384 bytes of canonical MessagePack [IM-1.3]:
		// {"text": s} takes 9 bytes besides s (map, key, str 16 header).
		atLimit := strings.Repeat("a", 16384-9)
		deep := map[string]any{"text": "deep"}
		for range 40 {
			deep = map[string]any{"text": "deep", "n": deep}
		}
		cases := []struct {
			name    string
			payload []byte
			ct      string // MQTT 5 Content Type
			code    string
			cmid    string
		}{
			{"garbage bytes", []byte{0xc1, 0xff, 0x00, 0x13, 0x37}, "", protocol.CodeBadPayload, ""},
			{"empty payload", []byte{}, "", protocol.CodeBadPayload, ""},
			{"JSON array", []byte(`[1,2,3]`), "", protocol.CodeBadPayload, ""},
			{"JSON array, Content Type JSON", []byte(`[{"cmid":"a"}]`), protocol.ContentTypeJSON, protocol.CodeBadPayload, ""},
			{"JSON string", []byte(`"hello"`), protocol.ContentTypeJSON, protocol.CodeBadPayload, ""},
			{"JSON null", []byte(`null`), protocol.ContentTypeJSON, protocol.CodeBadPayload, ""},
			{"MessagePack nil", []byte{0xc0}, "", protocol.CodeBadPayload, ""},
			{"MessagePack array", mp([]any{"cmid", "x"}), "", protocol.CodeBadPayload, ""},
			{"MessagePack integer", mp(7), "", protocol.CodeBadPayload, ""},
			{"truncated MessagePack", valid[:len(valid)/2], "", protocol.CodeBadPayload, ""},
			{"truncated JSON", []byte(`{"cmid":"t-1","to":"bob"`), "", protocol.CodeBadPayload, anyCmid},
			{"field of the wrong type", []byte(`{"cmid":5,"to":"bob","type":"text","body":{"text":"x"}}`), "", protocol.CodeBadPayload, ""},
			{"body not an object", []byte(`{"cmid":"t-3","to":"bob","type":"text","body":"x"}`), "", protocol.CodeBadPayload, "t-3"},
			{"to of the wrong type", []byte(`{"cmid":"t-20","to":5,"type":"text","body":{"text":"x"}}`), "", protocol.CodeBadPayload, "t-20"},
			{"type of the wrong type", enc(map[string]any{"cmid": "t-21", "to": "bob", "type": []any{"text"}, "body": body}), "", protocol.CodeBadPayload, "t-21"},
			{"body an array", enc(map[string]any{"cmid": "t-4", "to": "bob", "type": "custom", "body": []any{1}}), "", protocol.CodeBadPayload, "t-4"},
			{"unknown type", enc(protocol.Send{Cmid: "t-5", To: "bob", Type: "sticker", Body: body}), "", protocol.CodeUnknownType, "t-5"},
			{"missing type", enc(map[string]any{"cmid": "t-6", "to": "bob", "body": body}), "", protocol.CodeBadRequest, "t-6"},
			{"text without body.text", enc(protocol.Send{Cmid: "t-7", To: "bob", Type: "text", Body: map[string]any{"lang": "en"}}), "", protocol.CodeBadRequest, "t-7"},
			{"empty body.text", enc(text("t-8", "bob", "")), "", protocol.CodeBadRequest, "t-8"},
			{"body.text not a string", enc(protocol.Send{Cmid: "t-9", To: "bob", Type: "text", Body: map[string]any{"text": 5}}), "", protocol.CodeBadRequest, "t-9"},
			{"missing body", enc(map[string]any{"cmid": "t-10", "to": "bob", "type": "custom"}), "", protocol.CodeBadRequest, "t-10"},
			{"body over 16 KiB", enc(text("t-11", "bob", atLimit+"a")), "", protocol.CodeTooLarge, "t-11"},
			{"body nested too deep", enc(protocol.Send{Cmid: "t-12", To: "bob", Type: "text", Body: deep}), "", protocol.CodeBadRequest, "t-12"},
			{"missing cmid", enc(map[string]any{"to": "bob", "type": "text", "body": body}), "", protocol.CodeBadRequest, ""},
			{"cmid too long", enc(text(strings.Repeat("c", 65), "bob", "x")), "", protocol.CodeBadRequest, strings.Repeat("c", 65)},
			{"cmid with a control character", enc(text("t\n13", "bob", "x")), "", protocol.CodeBadRequest, "t\n13"},
			{"missing to", enc(map[string]any{"cmid": "t-14", "type": "text", "body": body}), "", protocol.CodeBadRequest, "t-14"},
			{"to not a user id", enc(text("t-15", "bob/x", "x")), "", protocol.CodeBadRequest, "t-15"},
			{"to a conversation id", enc(text("t-16", "d:alice:bob", "x")), "", protocol.CodeBadRequest, "t-16"},
			{"to yourself", enc(text("t-17", "alice", "x")), "", protocol.CodeBadRequest, "t-17"},
			{"to a user that does not exist", enc(text("t-18", "nobody", "x")), "", protocol.CodeUnknownUser, "t-18"},
			{"too large comes before unknown user", enc(text("t-19", "nobody", atLimit+"a")), "", protocol.CodeTooLarge, "t-19"},
			{"the acknowledged cmid with an unknown type", enc(protocol.Send{Cmid: "good-1", To: "bob", Type: "sticker", Body: body}), "", protocol.CodeUnknownType, "good-1"},
			{"the acknowledged cmid with a bad body", enc(text("good-1", "bob", "")), "", protocol.CodeBadRequest, "good-1"},
		}
		if dl.v5() {
			// The Content Type decides, not the first byte [IM-1.2-2].
			cases = append(cases, struct {
				name    string
				payload []byte
				ct      string
				code    string
				cmid    string
			}{"JSON declared as MessagePack", []byte(`{"cmid":"t-2","to":"bob","type":"text","body":{"text":"x"}}`), protocol.ContentTypeMsgPack, protocol.CodeBadPayload, ""})
		}
		for _, c := range cases {
			var opts []pubOpt
			if c.ct != "" && dl.v5() {
				opts = append(opts, withContentType(c.ct))
			}
			mark := alice.mark()
			r := alice.publish(protocol.SendTopic("alice"), c.payload, opts...)
			if r.Err != nil {
				t.Fatalf("%s: no PUBACK: %v", c.name, r.Err)
			}
			if err := alice.checkRefused(mark, r, c.code, c.cmid); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		}
		// The limits themselves are accepted.
		cmid64 := strings.Repeat("c", 64)
		alice.sendOK(text(cmid64, "bob", "64-byte cmid"))
		alice.sendOK(text("limit-1", "bob", atLimit))

		// RPC: undecodable request → bad_payload response [IM-7.1-7].
		for _, p := range [][]byte{{0xc1, 0xff}, []byte(`[1]`), {0xc0}} {
			expectErrResponse(t, "sync", alice.rpcRaw(protocol.MethodSync, p), protocol.CodeBadPayload)
		}
		alice.rpcErr("nosuchmethod", map[string]any{}, protocol.CodeUnknownMethod)
		// A response topic outside the device's reply prefix [IM-7.1-2],
		// [IM-7.1-3]: refused, no response.
		for _, topic := range []string{protocol.ReplyTopic("bob", "x"), "foo", protocol.ReplyPrefix("alice"), protocol.ReplyPrefix("alice") + "#"} {
			mark := alice.mark()
			var r pubResult
			if dl.v5() {
				r = alice.publish(protocol.RPCTopic("alice", protocol.MethodSync), mp(map[string]any{}), withResponse(topic, []byte("corr")))
			} else {
				r = alice.publish(protocol.RPCTopic("alice", protocol.MethodSync), enc(map[string]any{"id": "x", "reply_to": topic}))
			}
			alice.expectRefused(mark, r, protocol.CodeNotAuthorized, "")
		}
		if dl.v5() {
			mark := alice.mark()
			r := alice.publish(protocol.RPCTopic("alice", protocol.MethodSync), mp(map[string]any{"reply_to": protocol.ReplyTopic("bob", "x")}))
			alice.expectRefused(mark, r, protocol.CodeNotAuthorized, "")
		}
		// An RPC id over 64 bytes [IM-1.3].
		long := strings.Repeat("i", 65)
		resp := alice.rpcPublish(protocol.MethodSync, enc(map[string]any{"id": long, "reply_to": alice.replyTopic()}), "i:"+long+"|i:")
		expectErrResponse(t, "sync", resp, protocol.CodeBadRequest)

		// Invalid parameters → bad_request [IM-7.3-1], [IM-7.4-3], [IM-7.5-1], [IM-7.6-3].
		for _, c := range []struct {
			method string
			req    any
		}{
			{protocol.MethodSync, map[string]any{"after": -1}},
			{protocol.MethodSync, map[string]any{"limit": 1001}},
			{protocol.MethodSync, map[string]any{"limit": -1}},
			{protocol.MethodSync, map[string]any{"after": "x"}},
			{protocol.MethodHistory, map[string]any{}},
			{protocol.MethodHistory, map[string]any{"conv": "d:alice:bob", "with": "bob"}},
			{protocol.MethodHistory, map[string]any{"with": "alice"}},
			{protocol.MethodHistory, map[string]any{"with": "bob/x"}},
			{protocol.MethodHistory, map[string]any{"conv": "xyz"}},
			{protocol.MethodHistory, map[string]any{"conv": "d:bob:alice"}},
			{protocol.MethodHistory, map[string]any{"conv": "d:alice:bob", "before": -1}},
			{protocol.MethodHistory, map[string]any{"conv": "d:alice:bob", "limit": 201}},
			{protocol.MethodConversations, map[string]any{"limit": 501}},
			{protocol.MethodRead, map[string]any{"seq": 1}},
			{protocol.MethodRead, map[string]any{"conv": "d:alice:bob", "seq": -1}},
			{protocol.MethodRead, map[string]any{"conv": "xyz", "seq": 1}},
			{protocol.MethodRead, map[string]any{"conv": "d:bob:alice", "seq": 1}},
		} {
			resp := alice.rpc(c.method, c.req)
			code := protocol.CodeBadRequest
			if _, ok := c.req.(map[string]any)["after"].(string); ok {
				code = protocol.CodeBadPayload // a field of the wrong type
			}
			if resp.OK || resp.Error == nil || resp.Error.Code != code {
				t.Errorf("%s %v: ok=%v error=%v, want %s", c.method, c.req, resp.OK, resp.Error, code)
			}
		}
		if t.Failed() {
			t.FailNow()
		}

		// Still usable; only the accepted messages were stored, the first
		// unchanged.
		alice.sendOK(text("good-2", "bob", "still works"))
		msgs := alice.historyAll("d:alice:bob")
		want := []string{"good-1", cmid64, "limit-1", "good-2"}
		if len(msgs) != len(want) {
			t.Fatalf("history: %d messages, want %v", len(msgs), want)
		}
		for i, m := range msgs {
			if m.Cmid != want[i] {
				t.Fatalf("history[%d] = %s, want %s", i, m.Cmid, want[i])
			}
		}
		if m := msgs[0]; m.ID != good.ID || m.ID != orig.ID || m.TS != orig.TS || m.Type != orig.Type || !sameBody(m.Body, orig.Body) {
			t.Fatalf("the acknowledged message changed: %+v, was %+v", m, orig)
		}
		for i, c := range want {
			if ev := bob.nextMessage(); ev.Seq != int64(i+1) || ev.Msg.Cmid != c {
				t.Fatalf("bob: %v, want %s at seq %d", ev, c, i+1)
			}
		}
	})
}
