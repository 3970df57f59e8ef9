package store

import (
	"errors"
	"fmt"

	"github.com/mqim/mqim/protocol"
)

// The rules' refusals, returned per item (SendResult.Err) or per call.
// Implementations return them as an *Error (or wrapped), so that errors.Is
// matches these and ProtocolError finds the detail.
var (
	ErrUnknownUser  = errors.New("unknown user")
	ErrCmidConflict = errors.New("cmid already used for a different message")
	ErrNotMember    = errors.New("not a member of the conversation")
	ErrNotFound     = errors.New("not found")
	ErrBlocked      = errors.New("the recipient blocks the sender")
	// ErrNotAllowed: the user may not change the message (not its sender,
	// recall window passed, or already recalled) [IM-14].
	ErrNotAllowed = errors.New("not allowed")

	// Group refusals [IM-11].
	ErrNoGroup    = errors.New("no such group")
	ErrForbidden  = errors.New("the member's role does not allow it")
	ErrMuted      = errors.New("muted in the group")
	ErrBadChange  = errors.New("invalid group change")
	ErrBadMention = errors.New("mentioned user is not a member")

	// ErrPushLimit: the user has the most push registrations allowed [IM-17.1-3].
	ErrPushLimit = errors.New("too many push registrations")
)

// Error is a refusal by one of the store's rules: Err is the sentinel that
// names the rule, Detail says what was refused, in words for the requester
// (it becomes the protocol error's message).
type Error struct {
	Err    error
	Detail string
}

func (e *Error) Error() string { return e.Detail + ": " + e.Err.Error() }

// Unwrap makes errors.Is(err, ErrNotMember) and the like match.
func (e *Error) Unwrap() error { return e.Err }

// Refuse returns a refusal by rule (a sentinel above) with a detail.
func Refuse(rule error, format string, args ...any) *Error {
	return &Error{Err: rule, Detail: fmt.Sprintf(format, args...)}
}

// UnknownUserError refuses a request naming a user that does not exist.
func UnknownUserError(user string) *Error { return Refuse(ErrUnknownUser, "no user %q", user) }

// NotMemberError refuses user a conversation it is not a member of.
func NotMemberError(user, conv string) *Error {
	return Refuse(ErrNotMember, "%q is not a member of %q", user, conv)
}

// NoGroupError refuses a request naming a group that does not exist.
func NoGroupError(group string) *Error { return Refuse(ErrNoGroup, "no group %q", group) }

// NotFoundError refuses a change of a message that does not exist or is in
// none of the user's conversations (the two are not told apart [IM-14]).
func NotFoundError(id int64) *Error {
	return Refuse(ErrNotFound, "no message %d in your conversations", id)
}

// CmidConflictError refuses a reuse of (from, cmid) for another message
// [IM-4.5-3].
func CmidConflictError(from, cmid string) *Error {
	return Refuse(ErrCmidConflict, "cmid %q of %q was already used for a different message", cmid, from)
}

// protocolCodes is the one map from the store's refusals to protocol error
// codes [IM-6.1]; msg is the message when the refusal carries no detail.
var protocolCodes = []struct {
	err  error
	code string
	msg  string
}{
	{ErrUnknownUser, protocol.CodeUnknownUser, "a user does not exist"},
	{ErrUserDeleted, protocol.CodeUnknownUser, "the user was deleted"},
	{ErrBlocked, protocol.CodeBlocked, "the recipient does not accept your messages"},
	{ErrCmidConflict, protocol.CodeCmidConflict, "this cmid was already used for a different message"},
	{ErrNoGroup, protocol.CodeUnknownGroup, "the group does not exist"},
	{ErrNotMember, protocol.CodeNotMember, "not a member of the conversation"},
	{ErrMuted, protocol.CodeMuted, "muted in the group"},
	{ErrBadMention, protocol.CodeBadRequest, "a mentioned user is not a member of the group"},
	{ErrForbidden, protocol.CodeForbidden, "your role in the group does not allow it"},
	{ErrBadChange, protocol.CodeBadRequest, "invalid group change"},
	{ErrNotFound, protocol.CodeNotFound, "no such message in your conversations"},
	{ErrNotAllowed, protocol.CodeNotAllowed, "not allowed"},
	{ErrPushLimit, protocol.CodeBadRequest, "too many push registrations"},
}

// ProtocolError returns the protocol error a client gets for err, a refusal
// by one of the store's rules (possibly wrapped): its code, and its detail
// as the message. For any other error it returns nil: the store failed, and
// the caller answers unavailable (or internal) and logs err.
func ProtocolError(err error) *protocol.Error {
	if err == nil {
		return nil
	}
	for _, c := range protocolCodes {
		if !errors.Is(err, c.err) {
			continue
		}
		msg := c.msg
		if se := (*Error)(nil); errors.As(err, &se) && se.Detail != "" {
			msg = se.Detail
		}
		return &protocol.Error{Code: c.code, Message: msg}
	}
	return nil
}
