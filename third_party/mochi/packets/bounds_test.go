// mqim patch: regression tests for the decoder bounds fixes (README.md,
// "Decoders"). Each case once panicked or was accepted by v2.7.9.

package packets

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

// decodeRaw decodes one whole packet (fixed header included) as the server
// reads it from a client of the given protocol version.
func decodeRaw(raw []byte, version byte) (pk Packet, err error) {
	r := bufio.NewReader(bytes.NewReader(raw))
	b, err := r.ReadByte()
	if err != nil {
		return pk, err
	}
	if err := pk.FixedHeader.Decode(b); err != nil {
		return pk, err
	}
	pk.FixedHeader.Remaining, _, err = DecodeLength(r)
	if err != nil {
		return pk, err
	}
	body := make([]byte, pk.FixedHeader.Remaining)
	if _, err := io.ReadFull(r, body); err != nil {
		return pk, err
	}
	pk.ProtocolVersion = version
	switch pk.FixedHeader.Type {
	case Connect:
		return pk, pk.ConnectDecode(body)
	case Publish:
		return pk, pk.PublishDecode(body)
	case Puback:
		return pk, pk.PubackDecode(body)
	case Pubrec:
		return pk, pk.PubrecDecode(body)
	case Pubrel:
		return pk, pk.PubrelDecode(body)
	case Pubcomp:
		return pk, pk.PubcompDecode(body)
	case Subscribe:
		return pk, pk.SubscribeDecode(body)
	case Unsubscribe:
		return pk, pk.UnsubscribeDecode(body)
	case Pingreq:
		return pk, pk.PingreqDecode(body)
	case Disconnect:
		return pk, pk.DisconnectDecode(body)
	case Auth:
		return pk, pk.AuthDecode(body)
	}
	return pk, errors.New("type not handled by decodeRaw")
}

func TestDecodeBounds(t *testing.T) {
	cases := []struct {
		name    string
		version byte
		raw     []byte
		want    Code // the code the error must carry
	}{
		// upstream issue #501: the options byte was read unchecked.
		{"subscribe v5 without options byte", 5, []byte{0x82, 0x06, 0x00, 0x01, 0x00, 0x00, 0x01, 'a'}, ErrMalformedSubscriptionOptions},
		// The fuzzer's variant: a Subscription Identifier 0, then a filter without options.
		{"subscribe v5 sub id 0 then no options", 5, []byte{0x82, 0x08, 0x4f, 0xf0, 0x02, 0x0b, 0x00, 0x00, 0x01, 0x23}, ErrProtocolViolationZeroSubID},
		{"subscribe v5 second filter without options", 5, []byte{0x82, 0x0a, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x01, 0x00, 0x01, 'b'}, ErrMalformedSubscriptionOptions},
		{"subscribe v5 reserved option bits", 5, []byte{0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0xc1}, ErrMalformedSubscriptionOptions},
		{"subscribe v5 retain handling 3", 5, []byte{0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x31}, ErrProtocolViolationRetainHandling},
		{"subscribe 3.1.1 without qos byte", 4, []byte{0x82, 0x05, 0x00, 0x01, 0x00, 0x01, 'a'}, ErrMalformedQos},
		{"subscribe v5 two subscription identifiers", 5, []byte{0x82, 0x0b, 0x00, 0x01, 0x04, 0x0b, 0x01, 0x0b, 0x02, 0x00, 0x01, 'a', 0x01}, ErrProtocolViolationDuplicateProperty},
		// Properties claiming more bytes than the packet has.
		{"publish v5 property length past the end", 5, []byte{0x30, 0x05, 0x00, 0x01, 't', 0x7f, 0x01}, ErrMalformedPropertyLength},
		// A property running past the property length into the payload.
		{"publish v5 property past its length", 5, []byte{0x30, 0x09, 0x00, 0x01, 't', 0x01, 0x02, 0x00, 0x00, 0x00, 0x05}, ErrMalformedOffsetUintOutOfRange},
		{"publish v5 duplicate content type", 5, []byte{0x30, 0x0d, 0x00, 0x01, 't', 0x08, 0x03, 0x00, 0x01, 'a', 0x03, 0x00, 0x01, 'b', 'x'}, ErrProtocolViolationDuplicateProperty},
		{"publish v5 subscription identifier 0", 5, []byte{0x30, 0x06, 0x00, 0x01, 't', 0x02, 0x0b, 0x00}, ErrProtocolViolationZeroSubID},
		{"publish v5 subscription identifier cut off", 5, []byte{0x30, 0x06, 0x00, 0x01, 't', 0x02, 0x0b, 0x80}, ErrMalformedVariableByteInteger},
		{"connect v5 property length past the end", 5, []byte{0x10, 0x0b, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05, 0x02, 0x00, 0x3c, 0x20}, ErrMalformedPropertyLength},
		{"puback v5 properties past the end", 5, []byte{0x40, 0x04, 0x00, 0x01, 0x00, 0x05}, ErrMalformedPropertyLength},
		{"disconnect v5 properties past the end", 5, []byte{0xe0, 0x02, 0x00, 0x10}, ErrMalformedPropertyLength},
		{"auth properties past the end", 5, []byte{0xf0, 0x02, 0x18, 0x40}, ErrMalformedPropertyLength},
		{"pingreq with a body", 5, []byte{0xc0, 0x01, 0x00}, ErrMalformedPacket},
		{"pingreq 3.1.1 with a body", 4, []byte{0xc0, 0x02, 0x00, 0x00}, ErrMalformedPacket},
		// A remaining length of five bytes: v2.7.9 read continuation bytes forever.
		{"remaining length of five bytes", 4, []byte{0xc0, 0x80, 0x80, 0x80, 0x80, 0x00}, ErrMalformedVariableByteInteger},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := decodeRaw(c.raw, c.version)
			var code Code
			if !errors.As(err, &code) {
				t.Fatalf("decode % x: err = %v, want the code %q", c.raw, err, c.want.Reason)
			}
			if code != c.want {
				t.Fatalf("decode % x: code %#x %q, want %#x %q", c.raw, code.Code, code.Reason, c.want.Code, c.want.Reason)
			}
		})
	}
}

// The short forms that v2.7.9 refused or misread.
func TestDecodeShortForms(t *testing.T) {
	pk, err := decodeRaw([]byte{0xe0, 0x01, 0x04}, 5) // DISCONNECT with a reason code only
	if err != nil || pk.ReasonCode != 0x04 {
		t.Errorf("disconnect with reason only: reason %#x, err %v; want 0x04, nil", pk.ReasonCode, err)
	}
	pk, err = decodeRaw([]byte{0xf0, 0x00}, 5) // AUTH with reason 0 omitted
	if err != nil || pk.ReasonCode != 0 {
		t.Errorf("auth without body: reason %#x, err %v; want 0, nil", pk.ReasonCode, err)
	}
	pk, err = decodeRaw([]byte{0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x2d}, 5)
	if err != nil || len(pk.Filters) != 1 || pk.Filters[0].Qos != 1 || !pk.Filters[0].NoLocal || !pk.Filters[0].RetainAsPublished || pk.Filters[0].RetainHandling != 2 {
		t.Errorf("subscribe with every option: %+v, %v", pk.Filters, err)
	}
	// Properties that end exactly at their length still decode, and
	// repeated user properties are allowed.
	pk, err = decodeRaw([]byte{0x30, 0x13, 0x00, 0x01, 't', 0x0e, 0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v', 0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'w', 'x'}, 5)
	if err != nil || len(pk.Properties.User) != 2 || string(pk.Payload) != "x" {
		t.Errorf("publish with two user properties: %+v payload %q, %v", pk.Properties.User, pk.Payload, err)
	}
}

func TestDecodeLengthFourBytes(t *testing.T) {
	n, bu, err := DecodeLength(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0x7f}))
	if err != nil || n != 268435455 || bu != 4 {
		t.Fatalf("largest length: %d (%d bytes), %v", n, bu, err)
	}
	if _, _, err := DecodeLength(bytes.NewReader(bytes.Repeat([]byte{0x80}, 1<<16))); !errors.Is(err, ErrMalformedVariableByteInteger) {
		t.Fatalf("endless continuation bytes: %v, want %v", err, ErrMalformedVariableByteInteger)
	}
}
