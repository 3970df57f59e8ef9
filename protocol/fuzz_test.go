package protocol

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// payloadTypes are the values every payload a device sends may be decoded
// into: the send, every RPC request and its envelope, typing signals, and
// the events and responses clients decode.
var payloadTypes = []func() any{
	func() any { return new(Send) },
	func() any { return new(Event) },
	func() any { return new(Message) },
	func() any { return new(RequestEnvelope) },
	func() any { return new(Response) },
	func() any { return new(SyncRequest) },
	func() any { return new(HistoryRequest) },
	func() any { return new(ConversationsRequest) },
	func() any { return new(ReadRequest) },
	func() any { return new(GroupRequest) },
	func() any { return new(ContactRequest) },
	func() any { return new(MessageRequest) },
	func() any { return new(Typing) },
	func() any { return new(PresenceRequest) },
	func() any { return new(SettingsRequest) },
	func() any { return new(map[string]any) },
}

// FuzzDecode: no payload panics Decode into any payload type, in either
// format [IM-6.1-3], and whatever decodes encodes again in both formats,
// as the server transcodes what it stores and delivers.
func FuzzDecode(f *testing.F) {
	seeds := []any{
		&Send{Cmid: "c1", To: "bob", Type: TypeText, Body: map[string]any{"text": "hi", "n": []any{1.5, nil, true}}},
		&RequestEnvelope{ID: "r1", ReplyTo: "im/v1/u/alice/reply/x"},
		&SyncRequest{After: 5, Limit: 10},
		&HistoryRequest{Conv: "d:alice:bob", Limit: 3},
		&ReadRequest{Conv: "d:alice:bob", Seq: 2},
		&GroupRequest{Group: "g1", Users: []string{"bob"}, Members: []string{"bob", "carol"}},
		&MessageRequest{},
		&Typing{},
		map[string]any{"cmid": string([]byte{1}), "to": 5, "body": map[string]any{"a": map[string]any{"b": []any{}}}},
	}
	for _, v := range seeds {
		for _, fm := range []Format{MsgPack, JSON} {
			p, err := Encode(fm, v)
			if err != nil {
				f.Fatal(err)
			}
			for i := range payloadTypes {
				f.Add(uint8(i), p)
			}
		}
	}
	for _, p := range [][]byte{{0x80}, {0xdf, 0xff, 0xff, 0xff, 0xff}, {0x81, 0xa1, 'a', 0xc4, 0x01}, []byte(`{"a":` + strings.Repeat("[", 100)), []byte("{\"cmid\":\"\xff\"}")} {
		f.Add(uint8(0), p)
	}
	f.Fuzz(func(t *testing.T, kind uint8, p []byte) {
		v := payloadTypes[int(kind)%len(payloadTypes)]()
		if err := Decode(Detect(p, ""), p, v); err != nil {
			var pe *Error
			if !asError(err, &pe) || pe.Code != CodeBadPayload {
				t.Fatalf("Decode error %v is not a bad_payload *Error", err)
			}
			return
		}
		for _, fm := range []Format{MsgPack, JSON} {
			out, err := Encode(fm, v)
			if err != nil {
				continue // e.g. NaN has no JSON form
			}
			w := reflect.New(reflect.TypeOf(v).Elem()).Interface()
			if err := Decode(fm, out, w); err != nil {
				t.Fatalf("%T encoded as %s does not decode again: %v\n%q", v, fm, err, out)
			}
		}
	})
}

func asError(err error, pe **Error) bool {
	e, ok := err.(*Error)
	if ok {
		*pe = e
	}
	return ok
}

// FuzzMsgPackGuard: the size guard never panics, and whatever it accepts
// the decoder reads without allocating beyond what the payload declares
// (it would panic or run out of memory otherwise).
func FuzzMsgPackGuard(f *testing.F) {
	for _, p := range [][]byte{{0x80}, {0x91, 0x91, 0x90}, {0xdd, 0xff, 0xff, 0xff, 0xff}, {0xc6, 0, 0, 0, 2, 'a', 'b'}, {0xd9, 0x05, 'a'}, {0xc7, 0x01, 0x05, 0x00}, {0xd4, 0xff, 0x00}} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		if checkMsgPackSizes(p) != nil {
			return
		}
		var v any
		_ = Decode(MsgPack, p, &v)
	})
}

// FuzzTopics: topic parsing and the subscribe ACL never panic, agree with
// the topic builders, and never let a user subscribe outside its own tree.
func FuzzTopics(f *testing.F) {
	for _, s := range []string{"im/v1/u/alice/send", "im/v1/u/alice/inbox", "im/v1/u/alice/rpc/sync", "im/v1/u/alice/reply/dev-1",
		"im/v1/u/alice/rpc/", "im/v1/u//send", "im/v1/g/g1", "im/v1/u/+/inbox", "im/v1/u/alice/#", "#", "$SYS/x", "im/v1/sys/notify"} {
		f.Add(s, "alice")
	}
	f.Fuzz(func(t *testing.T, topic, uid string) {
		pt := ParseTopic(topic)
		if pt.Kind != TopicUnknown && !ValidID(pt.User) {
			t.Fatalf("ParseTopic(%q) gave an invalid user %q", topic, pt.User)
		}
		switch pt.Kind {
		case TopicSend:
			if SendTopic(pt.User) != topic {
				t.Fatalf("send topic %q does not round-trip", topic)
			}
		case TopicInbox:
			if InboxTopic(pt.User) != topic {
				t.Fatalf("inbox topic %q does not round-trip", topic)
			}
		case TopicRPC:
			if RPCTopic(pt.User, pt.Method) != topic {
				t.Fatalf("rpc topic %q does not round-trip", topic)
			}
		}
		if SubscribeAllowed(uid, topic) && !strings.HasPrefix(topic, userPrefix+uid+"/") {
			t.Fatalf("%q may subscribe to %q outside its own topics", uid, topic)
		}
		_, _ = GroupOfFilter(topic)
		_, _, _ = DirectPeers(topic)
		_, _ = GroupID(topic)
		if ValidID(uid) && ValidID(topic) && uid != topic {
			c := DirectConv(uid, topic)
			a, b, ok := DirectPeers(c)
			if !ok || (a != uid && b != uid) || (a != topic && b != topic) {
				t.Fatalf("DirectConv(%q, %q) = %q does not parse back: %q %q %v", uid, topic, c, a, b, ok)
			}
		}
	})
}

// FuzzRequestEnvelope: an RPC payload decodes into its envelope and its
// request alike or fails as bad_payload; a decodable envelope's id and
// reply topic survive a JSON round trip, as 3.1.1 devices rely on them.
func FuzzRequestEnvelope(f *testing.F) {
	for _, s := range []string{`{"id":"1","reply_to":"im/v1/u/a/reply/x","after":0}`, `{"id":5}`, `{"reply_to":null}`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		var env RequestEnvelope
		if Decode(Detect(p, ""), p, &env) != nil {
			return
		}
		j, err := json.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		var back RequestEnvelope
		if err := json.Unmarshal(j, &back); err != nil || back != env {
			t.Fatalf("envelope %+v → %s → %+v, %v", env, j, back, err)
		}
	})
}
