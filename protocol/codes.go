package protocol

import "fmt"

// Error is a protocol error [IM-6]: a stable string code for programs, the
// MQTT 5 reason code a PUBACK carries for it, and a message for people.
type Error struct {
	Code    string `json:"code" msgpack:"code"`
	Message string `json:"message,omitempty" msgpack:"message,omitempty"`
	// RetryAfterMs says, with rate_limited, how many milliseconds from now
	// a retry can succeed [IM-6.2-1].
	RetryAfterMs int64 `json:"retry_after_ms,omitempty" msgpack:"retry_after_ms,omitempty"`
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + ": " + e.Message
}

// Is makes errors.Is match any *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Reason is the MQTT 5 PUBACK reason code for the error [IM-6.1].
func (e *Error) Reason() byte { return reasonOf(e.Code) }

// Error codes [IM-6.1]. Keep this list, reasonOf and spec.md in step.
const (
	CodeBadPayload    = "bad_payload"    // not decodable, or not an object
	CodeBadRequest    = "bad_request"    // a field is missing or invalid
	CodeUnknownType   = "unknown_type"   // message type not known
	CodeTooLarge      = "too_large"      // body over the size limit
	CodeNotAuthorized = "not_authorized" // topic not yours
	CodeUnknownUser   = "unknown_user"   // recipient does not exist
	CodeCmidConflict  = "cmid_conflict"  // cmid reused with a different message
	CodeNotMember     = "not_member"     // not a member of the conversation
	CodeUnknownMethod = "unknown_method" // RPC method not known
	CodeUnknownGroup  = "unknown_group"  // no such group [IM-11]
	CodeForbidden     = "forbidden"      // the member's role does not allow it [IM-11.4]
	CodeMuted         = "muted"          // the sender is muted in the group [IM-11.5]
	CodeUnavailable   = "unavailable"    // store down or node shutting down; retry
	CodeOverloaded    = "overloaded"     // too many requests in flight; retry later
	CodeInternal      = "internal"       // a bug; reported, not retried blindly
	// CodeContentRefused: the moderation refused the content [IM-18].
	CodeContentRefused = "content_refused"
)

// MQTT 5 reason codes used on PUBACK.
const (
	ReasonSuccess         byte = 0x00
	ReasonUnspecified     byte = 0x80
	ReasonImplSpecific    byte = 0x83
	ReasonNotAuthorized   byte = 0x87
	ReasonQuotaExceeded   byte = 0x97
	ReasonPayloadFormat   byte = 0x99
	ReasonServerUnavail   byte = 0x88 // CONNACK only
	ReasonBadCredentials  byte = 0x86 // CONNACK only
	ReasonReceiveMaxExcd  byte = 0x93 // DISCONNECT only
	ReasonServerShutdown  byte = 0x8B // DISCONNECT only
	ReasonPacketTooLarge  byte = 0x95 // DISCONNECT only
	ReasonNotAuthorizedV3 byte = 0x80 // SUBACK failure for MQTT 3.1.1
)

func reasonOf(code string) byte {
	switch code {
	case CodeBadPayload, CodeBadRequest, CodeUnknownType, CodeTooLarge:
		return ReasonPayloadFormat
	case CodeNotAuthorized, CodeNotMember, CodeForbidden, CodeMuted, CodeBlocked, CodeNotAllowed:
		return ReasonNotAuthorized
	case CodeUnknownUser, CodeCmidConflict, CodeUnknownMethod, CodeUnknownGroup, CodeNotFound, CodeContentRefused:
		return ReasonImplSpecific
	case CodeOverloaded, CodeRateLimited:
		return ReasonQuotaExceeded
	default:
		return ReasonUnspecified
	}
}

// Errorf returns an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Error codes of the features in §12–§14 of spec.md. reasonOf (codes.go)
// maps them to PUBACK reason codes.
const (
	CodeBlocked          = "blocked"           // the recipient blocked the sender [IM-13.2-1]
	CodeNotFound         = "not_found"         // no such message or media [IM-12.2], [IM-14]
	CodeNotAllowed       = "not_allowed"       // not the sender, or the recall window has passed [IM-14]
	CodeUnsupportedMedia = "unsupported_media" // upload of a media type not allowed [IM-12.2-2]
)
