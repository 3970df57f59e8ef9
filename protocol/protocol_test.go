package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

func TestParseTopic(t *testing.T) {
	cases := []struct {
		topic  string
		kind   TopicKind
		user   string
		method string
	}{
		{"im/v1/u/alice/send", TopicSend, "alice", ""},
		{"im/v1/u/alice/inbox", TopicInbox, "alice", ""},
		{"im/v1/u/alice/rpc/sync", TopicRPC, "alice", "sync"},
		{"im/v1/u/alice/reply/dev-1/x", TopicReply, "alice", "dev-1/x"},
		{"im/v1/u/alice/rpc/", TopicUnknown, "", ""},
		{"im/v1/u/alice/rpc/a/b", TopicUnknown, "", ""},
		{"im/v1/u/al ice/send", TopicUnknown, "", ""},
		{"im/v1/u//send", TopicUnknown, "", ""},
		{"im/v1/u/alice/sendx", TopicUnknown, "", ""},
		{"im/v1/u/alice", TopicUnknown, "", ""},
		{"foo", TopicUnknown, "", ""},
	}
	for _, c := range cases {
		got := ParseTopic(c.topic)
		if got.Kind != c.kind || got.User != c.user || got.Method != c.method {
			t.Errorf("ParseTopic(%q) = %+v, want kind %d user %q method %q", c.topic, got, c.kind, c.user, c.method)
		}
	}
}

// [IM-2.2-2]
func TestSubscribeAllowed(t *testing.T) {
	allowed := []string{"im/v1/u/bob/inbox", "im/v1/u/bob/reply/#", "im/v1/u/bob/reply/+", "im/v1/u/bob/reply/dev1"}
	refused := []string{"im/v1/u/alice/inbox", "#", "im/v1/u/+/inbox", "im/v1/u/bob/#", "$share/g/im/v1/u/bob/inbox",
		"$SYS/#", "im/v1/u/bob/reply/", "im/v1/u/bob/send", "im/v1/u/bob/rpc/sync"}
	for _, f := range allowed {
		if !SubscribeAllowed("bob", f) {
			t.Errorf("bob may not subscribe to %q, want allowed", f)
		}
	}
	for _, f := range refused {
		if SubscribeAllowed("bob", f) {
			t.Errorf("bob may subscribe to %q, want refused", f)
		}
	}
}

func TestDirectConv(t *testing.T) {
	if a, b := DirectConv("bob", "alice"), DirectConv("alice", "bob"); a != b || a != "d:alice:bob" {
		t.Fatalf("DirectConv = %q, %q", a, b)
	}
	if a, b, ok := DirectPeers("d:alice:bob"); !ok || a != "alice" || b != "bob" {
		t.Fatalf("DirectPeers = %q %q %v", a, b, ok)
	}
	for _, bad := range []string{"d:bob:alice", "d:alice", "g:alice:bob", "d:alice:b/ob"} {
		if _, _, ok := DirectPeers(bad); ok {
			t.Errorf("DirectPeers(%q) ok, want not", bad)
		}
	}
}

// [IM-1.2-2]
func TestDetect(t *testing.T) {
	mp, _ := Encode(MsgPack, &Send{Cmid: "c", To: "bob", Type: TypeText, Body: map[string]any{"text": "hi"}})
	cases := []struct {
		payload []byte
		ct      string
		want    Format
	}{
		{[]byte(`{"cmid":"c"}`), "", JSON},
		{[]byte(" \n\t{}"), "", JSON},
		{mp, "", MsgPack},
		{[]byte(`{"cmid":"c"}`), ContentTypeMsgPack, MsgPack},
		{mp, ContentTypeJSON, JSON},
		{nil, "", MsgPack},
	}
	for _, c := range cases {
		if got := Detect(c.payload, c.ct); got != c.want {
			t.Errorf("Detect(%q, %q) = %v, want %v", c.payload, c.ct, got, c.want)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	ev := Event{Kind: KindMessage, Seq: 7, Conv: "d:alice:bob", ConvSeq: 3, TS: 1700000000000,
		Msg: &Message{ID: 1 << 60, Conv: "d:alice:bob", Seq: 3, From: "alice", Cmid: "c1", Type: TypeText,
			Body: map[string]any{"text": "héllo"}, TS: 1700000000000}}
	for _, f := range []Format{MsgPack, JSON} {
		b, err := Encode(f, &ev)
		if err != nil {
			t.Fatal(err)
		}
		var got Event
		if err := Decode(f, b, &got); err != nil {
			t.Fatal(err)
		}
		if got.Msg == nil || got.Msg.ID != ev.Msg.ID || got.Msg.Body["text"] != "héllo" || got.Seq != 7 {
			t.Fatalf("%v round trip: %+v", f, got)
		}
	}
	// Message ids are strings in JSON, so JavaScript keeps all 64 bits [IM-1.2].
	b, _ := Encode(JSON, ev.Msg)
	if !bytes.Contains(b, []byte(`"id":"1152921504606846976"`)) {
		t.Fatalf("JSON id not a string: %s", b)
	}
	// The same value encodes to the same MessagePack bytes (digests rely on it).
	m1, _ := Encode(MsgPack, map[string]any{"b": 1, "a": "x", "c": []any{1, 2}})
	m2, _ := Encode(MsgPack, map[string]any{"c": []any{1, 2}, "a": "x", "b": 1})
	if !bytes.Equal(m1, m2) {
		t.Fatal("MessagePack encoding of equal maps differs")
	}
}

func TestDecodeErrorsAreBadPayload(t *testing.T) {
	for _, p := range [][]byte{[]byte(`[1,2]`), []byte(`{"cmid":`), {0x93, 1, 2, 3}, {0xc1}, {0x85, 0xa1}} {
		var s Send
		err := Decode(Detect(p, ""), p, &s)
		var pe *Error
		if !errors.As(err, &pe) || pe.Code != CodeBadPayload {
			t.Errorf("Decode(%x) = %v, want bad_payload", p, err)
		}
	}
}

func TestErrorReasons(t *testing.T) {
	want := map[string]byte{CodeBadPayload: 0x99, CodeBadRequest: 0x99, CodeUnknownType: 0x99, CodeTooLarge: 0x99,
		CodeNotAuthorized: 0x87, CodeNotMember: 0x87, CodeUnknownUser: 0x83, CodeCmidConflict: 0x83,
		CodeUnknownMethod: 0x83, CodeUnavailable: 0x80, CodeOverloaded: 0x97, CodeRateLimited: 0x97, CodeInternal: 0x80}
	for code, r := range want {
		if got := (&Error{Code: code}).Reason(); got != r {
			t.Errorf("%s → %#x, want %#x", code, got, r)
		}
	}
	if !errors.Is(Errorf(CodeTooLarge, "x"), &Error{Code: CodeTooLarge}) {
		t.Error("errors.Is does not match by code")
	}
}

// FuzzDecodeSend: no input may panic a decoder [IM-6].
func FuzzDecodeSend(f *testing.F) {
	mp, _ := Encode(MsgPack, &Send{Cmid: "c", To: "bob", Type: TypeText, Body: map[string]any{"text": "hi", "n": []any{1.5, nil}}})
	js, _ := json.Marshal(&Send{Cmid: "c", To: "bob", Type: TypeText, Body: map[string]any{"text": "hi"}})
	for _, s := range [][]byte{mp, js, []byte(`{}`), {0x80}, {0xdf, 0xff, 0xff, 0xff, 0xff}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		var s Send
		_ = Decode(Detect(p, ""), p, &s)
		var ev Event
		_ = Decode(Detect(p, ""), p, &ev)
	})
}
