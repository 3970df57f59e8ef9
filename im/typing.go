package im

import (
	"context"
	"errors"
	"time"

	"github.com/mqim/mqim/internal/ratelimit"
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// Typing rate limit per session [IM-15.1-3]: a bucket of typingBurst
// signals, refilled at one a second. Not the operator's send and RPC
// limits (ratelimit.go): the spec fixes it, and it applies to every
// session.
const typingBurst = 5

var typingLimit = ratelimit.Limit{Rate: 1, Burst: typingBurst}

// typingTimeout bounds the block check of a typing signal; on a slow store
// the signal is dropped rather than the connection stalled.
const typingTimeout = 2 * time.Second

// Typing relays a typing signal of sess [IM-15.1] to the peer's online
// devices. It runs on the caller's goroutine: the block check costs only
// this (rate-limited) session a short wait, keeps the committer free for
// sends, and orders the signal after every block change answered before
// it [IM-13.2-3]. A signal over the rate is dropped without error
// [IM-15.1-3].
func (s *Service) Typing(sess *Session, f protocol.Format, payload []byte) *protocol.Error {
	if s.cfg.Signal == nil {
		return protocol.Errorf(protocol.CodeNotAuthorized, "typing signals are not relayed here")
	}
	var t protocol.Typing
	if err := protocol.Decode(f, payload, &t); err != nil {
		pe := protocol.Errorf(protocol.CodeBadPayload, "undecodable typing signal")
		errors.As(err, &pe)
		return pe
	}
	switch {
	case !protocol.ValidID(t.To) || t.To == sess.User:
		return protocol.Errorf(protocol.CodeBadRequest, "to must be another user's id")
	case t.State == "":
		t.State = protocol.StateTyping
	case t.State != protocol.StateTyping && t.State != protocol.StatePaused:
		return protocol.Errorf(protocol.CodeBadRequest, "state must be typing or paused")
	}
	now := time.Now()
	if ok, _ := sess.bucket(&sess.typing, typingLimit).Take(now); !ok {
		return nil
	}
	if s.allowedSignal(sess.User, t.To) {
		s.cfg.Signal.Signal(t.To, &protocol.Event{Kind: protocol.KindTyping, Conv: protocol.DirectConv(sess.User, t.To),
			User: sess.User, State: t.State, TS: now.UnixMilli()})
	}
	return nil
}

// allowedSignal reports whether to may receive from's signals: to has not
// blocked from, as far as the store can tell in time.
func (s *Service) allowedSignal(from, to string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), min(typingTimeout, s.cfg.Timeout))
	defer cancel()
	rels, err := s.cfg.Store.Relations(ctx, []store.Pair{{Owner: to, Peer: from}})
	return err == nil && len(rels) == 1 && !rels[0].Blocked
}
