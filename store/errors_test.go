package store

import (
	"errors"
	"fmt"
	"testing"

	"github.com/mqim/mqim/protocol"
)

func TestProtocolError(t *testing.T) {
	for _, c := range []struct {
		err  error
		code string
		msg  string
	}{
		{UnknownUserError("carol"), protocol.CodeUnknownUser, `no user "carol"`},
		{Refuse(ErrBlocked, "the recipient does not accept your messages"), protocol.CodeBlocked, "the recipient does not accept your messages"},
		{CmidConflictError("alice", "c1"), protocol.CodeCmidConflict, `cmid "c1" of "alice" was already used for a different message`},
		{NoGroupError("g:1"), protocol.CodeUnknownGroup, `no group "g:1"`},
		{NotMemberError("alice", "g:1"), protocol.CodeNotMember, `"alice" is not a member of "g:1"`},
		{Refuse(ErrMuted, "muted"), protocol.CodeMuted, "muted"},
		{Refuse(ErrBadMention, "m"), protocol.CodeBadRequest, "m"},
		{Refuse(ErrForbidden, "f"), protocol.CodeForbidden, "f"},
		{Refuse(ErrBadChange, "role must be admin or member"), protocol.CodeBadRequest, "role must be admin or member"},
		{NotFoundError(5), protocol.CodeNotFound, "no message 5 in your conversations"},
		{Refuse(ErrNotAllowed, "n"), protocol.CodeNotAllowed, "n"},
		// Wrapped by the store with what it was doing: the detail stays.
		{fmt.Errorf("group add of %q: %w", "g:1", Refuse(ErrBadChange, "every user is a member already")),
			protocol.CodeBadRequest, "every user is a member already"},
		// A bare sentinel gets its rule's message.
		{fmt.Errorf("x: %w", ErrNotMember), protocol.CodeNotMember, "not a member of the conversation"},
		{ErrForbidden, protocol.CodeForbidden, "your role in the group does not allow it"},
	} {
		pe := ProtocolError(c.err)
		if pe == nil || pe.Code != c.code || pe.Message != c.msg {
			t.Errorf("ProtocolError(%v) = %v; want %s: %s", c.err, pe, c.code, c.msg)
		}
	}
	for _, err := range []error{nil, errors.New("connection reset"), fmt.Errorf("append batch: %w", errors.New("deadlock"))} {
		if pe := ProtocolError(err); pe != nil {
			t.Errorf("ProtocolError(%v) = %v; want nil (not a refusal)", err, pe)
		}
	}
}

// TestProtocolErrorCoversRefusals: every sentinel has a code in the map.
func TestProtocolErrorCoversRefusals(t *testing.T) {
	for _, s := range []error{ErrUnknownUser, ErrCmidConflict, ErrNotMember, ErrNotFound, ErrBlocked, ErrNotAllowed,
		ErrNoGroup, ErrForbidden, ErrMuted, ErrBadChange, ErrBadMention} {
		if ProtocolError(s) == nil {
			t.Errorf("%v has no protocol code", s)
		}
	}
}

func TestErrorIs(t *testing.T) {
	err := fmt.Errorf("send: %w", NotMemberError("a", "g:1"))
	if !errors.Is(err, ErrNotMember) || errors.Is(err, ErrNoGroup) {
		t.Fatal("errors.Is does not see the rule")
	}
	if got := NotMemberError("a", "g:1").Error(); got != `"a" is not a member of "g:1": not a member of the conversation` {
		t.Fatalf("Error() = %q", got)
	}
}
