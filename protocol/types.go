package protocol

import (
	"fmt"
	"math"
	"net/url"
	"strings"
)

// Message types with attachments and locations [IM-12.1]. TypeText and
// TypeCustom are in wire.go.
const (
	TypeImage    = "image"
	TypeVoice    = "voice"
	TypeVideo    = "video"
	TypeFile     = "file"
	TypeLocation = "location"
)

// MediaPath is the path prefix of media served by the HTTP API [IM-12.2].
const MediaPath = "/v1/media/"

// maxURL bounds an attachment URL [IM-12.1-2].
const maxURL = 2048

// fieldKind is the type a body field must have [IM-12.1-1].
type fieldKind int

const (
	fString  fieldKind = iota // non-empty string
	fURL                      // attachment URL [IM-12.1-2]
	fCount                    // integer >= 0 (size, width, height)
	fSeconds                  // number >= 0 (duration)
	fLat                      // number in [-90, 90]
	fLon                      // number in [-180, 180]
)

type field struct {
	name     string
	kind     fieldKind
	required bool
}

// typeFields is the table of [IM-12.1-1]: the fields the server checks per
// message type. Other fields are kept verbatim.
var typeFields = map[string][]field{
	TypeText: {{"text", fString, true}},
	TypeImage: {{"url", fURL, true}, {"mime", fString, false}, {"size", fCount, false},
		{"width", fCount, false}, {"height", fCount, false}, {"thumbnail", fURL, false}, {"name", fString, false}},
	TypeVoice: {{"url", fURL, true}, {"duration", fSeconds, true}, {"mime", fString, false}, {"size", fCount, false}},
	TypeVideo: {{"url", fURL, true}, {"mime", fString, false}, {"size", fCount, false}, {"duration", fSeconds, false},
		{"width", fCount, false}, {"height", fCount, false}, {"thumbnail", fURL, false}},
	TypeFile: {{"url", fURL, true}, {"name", fString, true}, {"mime", fString, false}, {"size", fCount, false}},
	TypeLocation: {{"lat", fLat, true}, {"lon", fLon, true}, {"name", fString, false},
		{"address", fString, false}},
	TypeCustom: nil,
}

// KnownType reports whether t is a message type of version 1.
func KnownType(t string) bool {
	_, ok := typeFields[t]
	return ok
}

// CheckBody validates body for message type typ [IM-4.2], [IM-12.1]: an
// unknown type is unknown_type, a missing or mistyped field bad_request.
func CheckBody(typ string, body map[string]any) *Error {
	fields, ok := typeFields[typ]
	if !ok {
		return Errorf(CodeUnknownType, "unknown message type %q", typ)
	}
	for _, f := range fields {
		v, present := body[f.name]
		if !present || v == nil {
			if f.required {
				return Errorf(CodeBadRequest, "a %s message needs body.%s", typ, f.name)
			}
			continue
		}
		if err := f.check(v); err != "" {
			return Errorf(CodeBadRequest, "body.%s of a %s message: %s", f.name, typ, err)
		}
	}
	return nil
}

func (f field) check(v any) string {
	switch f.kind {
	case fString:
		if s, ok := v.(string); !ok || s == "" {
			return "must be a non-empty string"
		}
	case fURL:
		s, ok := v.(string)
		if !ok || !ValidMediaURL(s) {
			return fmt.Sprintf("must be an http(s) URL or a path under %s, at most %d bytes", MediaPath, maxURL)
		}
	case fCount:
		n, ok := number(v)
		if !ok || n < 0 || n != math.Trunc(n) || n > 1<<53 {
			return "must be an integer >= 0"
		}
	case fSeconds:
		if n, ok := number(v); !ok || n < 0 || math.IsInf(n, 0) || math.IsNaN(n) {
			return "must be a number >= 0"
		}
	case fLat:
		if n, ok := number(v); !ok || !(n >= -90 && n <= 90) {
			return "must be a number from -90 to 90"
		}
	case fLon:
		if n, ok := number(v); !ok || !(n >= -180 && n <= 180) {
			return "must be a number from -180 to 180"
		}
	}
	return ""
}

// ValidMediaURL reports whether s may stand for an attachment [IM-12.1-2]:
// an absolute http or https URL with a host, or a path under MediaPath.
func ValidMediaURL(s string) bool {
	if s == "" || len(s) > maxURL {
		return false
	}
	if strings.HasPrefix(s, MediaPath) {
		return len(s) > len(MediaPath) && !strings.ContainsAny(s, " \t\r\n")
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// number reads any numeric value either decoder produces.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int8:
		return float64(x), true
	case int16:
		return float64(x), true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint8:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint32:
		return float64(x), true
	case uint64:
		return float64(x), true
	}
	return 0, false
}
