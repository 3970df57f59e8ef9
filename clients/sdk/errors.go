package sdk

import (
	"errors"
	"fmt"
	"time"

	"github.com/mqim/mqim/protocol"
)

// Error is a refusal by the server: a send or RPC request refused in its
// PUBACK, or an RPC answered with ok = false [IM-6]. Code is the spec's error
// code (protocol.Code…); it is empty when the server gave only a reason code.
type Error struct {
	Code    string // spec error code, e.g. protocol.CodeUnknownUser
	Message string // for people; never parse it
	Reason  byte   // MQTT 5 PUBACK reason code; 0 for RPC response errors
	// RetryAfter is, for rate_limited, how long to wait before a retry
	// can succeed [IM-1.3-6]; zero otherwise.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	code := e.Code
	if code == "" {
		code = fmt.Sprintf("reason 0x%02x", e.Reason)
	}
	if e.Message == "" || e.Message == e.Code {
		return "mqim: " + code
	}
	return "mqim: " + code + ": " + e.Message
}

// Is makes errors.Is match an *Error or a *protocol.Error with the same code,
// so that errors.Is(err, sdk.ErrUnknownUser) works.
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case *Error:
		return t.Code == e.Code && (t.Reason == 0 || t.Reason == e.Reason)
	case *protocol.Error:
		return t.Code == e.Code
	}
	return false
}

// Retryable reports whether the same request may be repeated later
// [IM-6.1-1]: unavailable, overloaded, rate_limited (after RetryAfter) and
// internal (a few times). Unknown codes are not retryable [IM-6.1-2].
func (e *Error) Retryable() bool {
	switch e.Code {
	case protocol.CodeUnavailable, protocol.CodeOverloaded, protocol.CodeRateLimited, protocol.CodeInternal:
		return true
	case "":
		// Only a reason code: 0x80 unspecified and 0x97 quota exceeded are
		// the reasons of the retryable codes; anything else is final.
		return e.Reason == protocol.ReasonUnspecified || e.Reason == protocol.ReasonQuotaExceeded
	}
	return false
}

// Errors to compare with errors.Is.
var (
	ErrBadPayload    = &Error{Code: protocol.CodeBadPayload}
	ErrBadRequest    = &Error{Code: protocol.CodeBadRequest}
	ErrUnknownType   = &Error{Code: protocol.CodeUnknownType}
	ErrTooLarge      = &Error{Code: protocol.CodeTooLarge}
	ErrNotAuthorized = &Error{Code: protocol.CodeNotAuthorized}
	ErrUnknownUser   = &Error{Code: protocol.CodeUnknownUser}
	ErrCmidConflict  = &Error{Code: protocol.CodeCmidConflict}
	ErrNotMember     = &Error{Code: protocol.CodeNotMember}
	ErrUnknownMethod = &Error{Code: protocol.CodeUnknownMethod}
	ErrUnknownGroup  = &Error{Code: protocol.CodeUnknownGroup}
	ErrForbidden     = &Error{Code: protocol.CodeForbidden}
	ErrMuted         = &Error{Code: protocol.CodeMuted}
	ErrUnavailable   = &Error{Code: protocol.CodeUnavailable}
	ErrOverloaded    = &Error{Code: protocol.CodeOverloaded}
	ErrRateLimited   = &Error{Code: protocol.CodeRateLimited}
	ErrInternal      = &Error{Code: protocol.CodeInternal}
	// ErrContentRefused: the server's moderation refused the content
	// [IM-18]; resending it as is fails again.
	ErrContentRefused = &Error{Code: protocol.CodeContentRefused}
)

// Connection-level failures.
var (
	// ErrBadCredentials: the server refused the user id or token (CONNACK
	// 0x86). Get a new token; the client does not retry as is [IM-6.2-2].
	ErrBadCredentials = errors.New("mqim: bad user or token (CONNACK 0x86)")
	// ErrClientIDInUse: the client id is connected for another user (CONNACK
	// 0x85) [IM-3.1-6].
	ErrClientIDInUse = errors.New("mqim: client id in use by another user (CONNACK 0x85)")
	// ErrTakenOver: another connection with the same client id took this
	// one over (DISCONNECT 0x8E); the client stops instead of fighting for
	// the id [IM-6.2-2].
	ErrTakenOver = errors.New("mqim: session taken over by another connection with the same client id (DISCONNECT 0x8E)")
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("mqim: client closed")
)

// Errors of spec §12–§14, to compare with errors.Is.
var (
	ErrBlocked    = &Error{Code: protocol.CodeBlocked}
	ErrNotFound   = &Error{Code: protocol.CodeNotFound}
	ErrNotAllowed = &Error{Code: protocol.CodeNotAllowed}
)
