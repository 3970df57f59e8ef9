package protocol

import (
	"errors"
	"testing"
	"time"
)

// A map header declaring 2^32 entries in a tiny payload is refused at
// once, not allocated [IM-6.1-3].
func TestDecodeHugeDeclaredSizes(t *testing.T) {
	for _, p := range [][]byte{
		[]byte("\x84\xa4cmid\xa2c1\xa2to\xa3bob\xa4type\xa4text\xa4body\xdf\x08\x08\x08\x30"),
		[]byte("\xdf\xff\xff\xff\xff"),
		[]byte("\x81\xa1a\xdd\xff\xff\xff\xff"),
		[]byte("\x81\xa1a\xdb\xff\xff\xff\xff"),
		[]byte("\x81\xa1a\xc9\xff\xff\xff\xff\x01"),
		[]byte("\x81\xa1a\xc1"),
	} {
		start := time.Now()
		var s Send
		err := Decode(MsgPack, p, &s)
		var pe *Error
		if !errors.As(err, &pe) || pe.Code != CodeBadPayload {
			t.Errorf("Decode(%x) = %v, want bad_payload", p, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Decode(%x) took %v", p, d)
		}
	}
}

// Every valid encoding passes the guard.
func TestGuardAcceptsValid(t *testing.T) {
	vals := []any{
		map[string]any{"a": 1, "b": -1, "c": 300, "d": -300, "e": 1 << 40, "f": 1.5, "g": float32(2.5), "h": "x",
			"i": string(make([]byte, 40)), "j": string(make([]byte, 300)), "k": string(make([]byte, 70000)),
			"l": []byte{1, 2}, "m": make([]byte, 300), "n": nil, "o": true, "p": false, "q": []any{1, "a", []any{}},
			"r": make([]any, 20), "s": map[string]any{}, "t": uint64(1 << 63), "u": int8(-5)},
	}
	big := map[string]any{}
	for i := range 20 {
		big[string(rune('a'+i))] = i
	}
	vals = append(vals, big)
	for _, v := range vals {
		// As a body: bin is refused as a field of the payload itself.
		b, err := Encode(MsgPack, map[string]any{"body": v})
		if err != nil {
			t.Fatal(err)
		}
		if err := checkMsgPackSizes(b); err != nil {
			t.Errorf("guard refused %.200v: %v", v, err)
		}
		var out map[string]any
		if err := Decode(MsgPack, b, &out); err != nil {
			t.Errorf("Decode: %v", err)
		}
	}
}

// TestGuardDepth: nesting is bounded before the decoder recurses into it.
func TestGuardDepth(t *testing.T) {
	nested := func(depth int) []byte {
		b := append([]byte{0x81, 0xa1, 'x'}, make([]byte, 0, depth+1)...) // {"x": [[[…]]]}
		for range depth {
			b = append(b, 0x91)
		}
		return append(b, 0x01)
	}
	if err := checkMsgPackSizes(nested(40)); err != nil {
		t.Errorf("40 levels refused: %v", err)
	}
	if err := checkMsgPackSizes(nested(250_000)); !errors.Is(err, errTooDeep) {
		t.Errorf("250,000 levels: %v, want errTooDeep", err)
	}
	var out map[string]any
	if err := Decode(MsgPack, nested(250_000), &out); err == nil {
		t.Error("Decode accepted 250,000 levels")
	}
}

// [IM-1.2-1]: strings are str, keys are str, and both are UTF-8; JSON is
// UTF-8. Bodies may still carry bin values (discouraged, [IM-1.2-8]).
func TestDecodeRefusesBinAndBadUTF8(t *testing.T) {
	var s Send
	refused := map[string][]byte{
		"cmid as bin":             {0x81, 0xa4, 'c', 'm', 'i', 'd', 0xc4, 0x01, 'x'},
		"bin key":                 {0x81, 0xc4, 0x04, 'c', 'm', 'i', 'd', 0xa1, 'x'},
		"bin key in body":         {0x81, 0xa4, 'b', 'o', 'd', 'y', 0x81, 0xc4, 0x01, 'k', 0xa1, 'v'},
		"invalid UTF-8 str":       {0x81, 0xa4, 'c', 'm', 'i', 'd', 0xa1, 0xff},
		"invalid UTF-8 str8":      {0x81, 0xa4, 'c', 'm', 'i', 'd', 0xd9, 0x01, 0xc3},
		"JSON with invalid UTF-8": []byte("{\"cmid\":\"a\xffb\"}"),
	}
	for name, p := range refused {
		err := Decode(Detect(p, ""), p, &s)
		var pe *Error
		if !errors.As(err, &pe) || pe.Code != CodeBadPayload {
			t.Errorf("%s: Decode = %v, want bad_payload", name, err)
		}
	}
	var m map[string]any
	if err := Decode(MsgPack, []byte{0x81, 0xa4, 'b', 'o', 'd', 'y', 0x81, 0xa1, 'k', 0xc4, 0x01, 'v'}, &m); err != nil {
		t.Errorf("bin value in a body: %v, want accepted", err)
	}
}
