package e2e

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/mqim/mqim/protocol"
)

// TestFormats: each device reads the output format chosen at CONNECT
// [IM-1.2-3], marked with Content Type for MQTT 5 [IM-1.2-4], with message
// ids as strings in JSON and integers in MessagePack [IM-1.2-5]; JSON and
// MessagePack input are both accepted on one connection [IM-1.2-2].
func TestFormats(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		type reader struct {
			d    *device
			want protocol.Format
		}
		var readers []reader
		add := func(want protocol.Format, opts ...dialOpt) {
			readers = append(readers, reader{dl.dial(t, n, "bob", opts...), want})
		}
		if dl.v5() {
			add(protocol.MsgPack)                                                                   // default for MQTT 5
			add(protocol.JSON, withFormatProp("json"))                                              // CONNECT user property
			add(protocol.JSON, withToken(tokenFmt(t, "bob", "json")))                               // token claim fmt
			add(protocol.MsgPack, withFormatProp("msgpack"), withToken(tokenFmt(t, "bob", "json"))) // property wins
			add(protocol.JSON, withFormatProp("xml"), withToken(tokenFmt(t, "bob", "json")))        // unknown value ignored
		} else {
			add(protocol.JSON) // default for 3.1.1
			add(protocol.MsgPack, withToken(tokenFmt(t, "bob", "msgpack")))
			add(protocol.JSON, withToken(tokenFmt(t, "bob", "yaml")))
		}
		alice := dl.dial(t, n, "alice")

		// Input in both encodings, detected by first byte or Content Type.
		inputs := []struct {
			payload []byte
			ct      string
		}{
			{mustEncode(t, protocol.JSON, text("j1", "bob", "json")), ""},
			{mustEncode(t, protocol.MsgPack, text("m1", "bob", "msgpack")), ""},
			{append([]byte(" \r\n\t"), mustEncode(t, protocol.JSON, text("j2", "bob", "json after spaces"))...), ""},
		}
		if dl.v5() {
			inputs = append(inputs,
				struct {
					payload []byte
					ct      string
				}{mustEncode(t, protocol.JSON, text("j3", "bob", "json content type")), protocol.ContentTypeJSON},
				struct {
					payload []byte
					ct      string
				}{mustEncode(t, protocol.MsgPack, text("m2", "bob", "x-msgpack")), "application/x-msgpack"})
		}
		var cmids []string
		for _, in := range inputs {
			var opts []pubOpt
			if in.ct != "" {
				opts = append(opts, withContentType(in.ct))
			}
			mark := alice.mark()
			r := alice.publish(protocol.SendTopic("alice"), in.payload, opts...)
			if r.Err != nil || r.Code != 0 {
				t.Fatalf("input %q: PUBACK %#x %q %v", in.payload, r.Code, r.Reason, r.Err)
			}
			var s protocol.Send
			if err := protocol.Decode(protocol.Detect(in.payload, in.ct), in.payload, &s); err != nil {
				t.Fatal(err)
			}
			cmids = append(cmids, s.Cmid)
			if !dl.v5() { // success shows as the message event [IM-4.4-6]
				if ev := alice.waitFrom(mark, "outcome", func(e event) bool { return e.Kind != "" }); ev.Kind != protocol.KindMessage || ev.Msg.Cmid != s.Cmid {
					t.Fatalf("input %q: %v", in.payload, ev)
				}
			}
		}

		for _, rd := range readers {
			d := rd.d
			for i, cmid := range cmids {
				ev := d.nextMessage()
				if ev.Msg.Cmid != cmid || ev.Seq != int64(i+1) {
					t.Fatalf("%s: %v, want %s", d.id, ev, cmid)
				}
				checkFormat(t, d, ev.In, rd.want)
			}
			// RPC responses are in the device's format too.
			resp := d.rpc(protocol.MethodSync, protocol.SyncRequest{Limit: 1})
			checkFormat(t, d, resp.In, rd.want)
		}
	})
}

// checkFormat checks the encoding of a publish the server sent to d.
func checkFormat(t *testing.T, d *device, in inbound, want protocol.Format) {
	t.Helper()
	if d.v5 && in.ContentType != want.ContentType() {
		t.Fatalf("%s: Content Type %q, want %q", d.id, in.ContentType, want.ContentType())
	}
	var m map[string]any
	switch want {
	case protocol.JSON:
		if len(in.Payload) == 0 || in.Payload[0] != '{' {
			t.Fatalf("%s: payload %.40q is not JSON", d.id, in.Payload)
		}
		dec := json.NewDecoder(bytes.NewReader(in.Payload))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("%s: %v", d.id, err)
		}
	default:
		if in.Payload[0]&0xf0 != 0x80 && in.Payload[0] != 0xde {
			t.Fatalf("%s: payload %.40q is not a MessagePack map", d.id, in.Payload)
		}
		if err := msgpack.Unmarshal(in.Payload, &m); err != nil {
			t.Fatalf("%s: %v", d.id, err)
		}
	}
	// Find a message id: in an event's msg, or in a sync result's events.
	msg, _ := m["msg"].(map[string]any)
	if res, ok := m["result"].(map[string]any); ok {
		if evs, _ := res["events"].([]any); len(evs) > 0 {
			msg, _ = evs[0].(map[string]any)["msg"].(map[string]any)
		}
	}
	if msg == nil {
		t.Fatalf("%s: no message in %v", d.id, m)
	}
	switch id := msg["id"].(type) {
	case string:
		if want != protocol.JSON {
			t.Fatalf("%s: MessagePack id is a string %q", d.id, id)
		}
	case int64, uint64, int8, int16, int32, uint8, uint16, uint32:
		if want != protocol.MsgPack {
			t.Fatalf("%s: JSON id is a number %v", d.id, id)
		}
	default:
		t.Fatalf("%s: message id %v of type %T", d.id, id, id)
	}
}
