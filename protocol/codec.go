package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"
)

// Format is a payload encoding [IM-1.2].
type Format uint8

// Formats.
const (
	MsgPack Format = iota
	JSON
)

// Content types carried in the MQTT 5 Content Type property.
const (
	ContentTypeMsgPack = "application/msgpack"
	ContentTypeJSON    = "application/json"
)

func (f Format) String() string {
	if f == JSON {
		return "json"
	}
	return "msgpack"
}

// ContentType is the MQTT 5 Content Type for f.
func (f Format) ContentType() string {
	if f == JSON {
		return ContentTypeJSON
	}
	return ContentTypeMsgPack
}

// ParseFormat reads a format name ("json", "msgpack") or content type.
func ParseFormat(s string) (Format, bool) {
	switch s {
	case "json", ContentTypeJSON:
		return JSON, true
	case "msgpack", ContentTypeMsgPack, "application/x-msgpack":
		return MsgPack, true
	}
	return MsgPack, false
}

// Detect tells the encoding of an input payload [IM-1.2-2]: a known Content
// Type wins; otherwise a payload whose first non-space byte is '{' is JSON
// (0x7b is never the first byte of a MessagePack map), anything else MessagePack.
func Detect(payload []byte, contentType string) Format {
	if f, ok := ParseFormat(contentType); ok {
		return f
	}
	if t := bytes.TrimLeft(payload, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		return JSON
	}
	return MsgPack
}

// Decode decodes payload in format f into v. A payload that is not an
// object, or does not fit v, is a bad_payload error, always an *Error
// (errors.As finds its code). The result type stays error: a nil *Error
// stored in an error variable would not be nil.
func Decode(f Format, payload []byte, v any) error {
	if !isObject(f, payload) {
		// null / nil would decode into a struct without error [IM-1.2-1].
		return Errorf(CodeBadPayload, "payload is not a %s object", f)
	}
	var err error
	if f == JSON {
		if !utf8.Valid(payload) {
			// encoding/json would replace each bad byte with U+FFFD.
			return Errorf(CodeBadPayload, "JSON payload is not valid UTF-8")
		}
		err = json.Unmarshal(payload, v)
	} else if err = checkMsgPackSizes(payload); err == nil { // guard.go
		err = msgpack.Unmarshal(payload, v)
	}
	if err != nil {
		return Errorf(CodeBadPayload, "cannot decode %s payload: %v", f, err)
	}
	return nil
}

// isObject reports whether payload starts as an object (a JSON object or a
// MessagePack map) [IM-1.2-1].
func isObject(f Format, payload []byte) bool {
	if f == JSON {
		t := bytes.TrimLeft(payload, " \t\r\n")
		return len(t) > 0 && t[0] == '{'
	}
	return len(payload) > 0 && (payload[0]&0xf0 == 0x80 || payload[0] == 0xde || payload[0] == 0xdf)
}

// Encode encodes v in format f. MessagePack maps are written with sorted
// keys, so that equal values encode to equal bytes, and integers in their
// smallest form.
func Encode(f Format, v any) ([]byte, error) {
	if f == JSON {
		return json.Marshal(v)
	}
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	enc.UseCompactInts(true)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode msgpack: %w", err)
	}
	return buf.Bytes(), nil
}

// Transcode re-encodes an encoded Event from one format to another.
func Transcode(payload []byte, from, to Format, v any) ([]byte, error) {
	if from == to {
		return payload, nil
	}
	if err := Decode(from, payload, v); err != nil {
		return nil, err
	}
	return Encode(to, v)
}
