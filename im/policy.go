package im

import (
	"context"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// policy is the pipeline's policy stage, between validation and the
// committer, for every send whatever carried it. Rate limits, the
// sensitive-word filter and the before-send webhook (issue 12, part B) are
// its checks, run in that order; each returns a refusal or nil, and may
// change req.Body (a masking filter, a webhook's replacement) after the
// Digest was taken, which stays that of what the client sent.
//
// A retry of an already stored (sender, cmid) is never refused by a
// policy [IM-4.5]: whatever a check says now, a send that is stored goes on
// to the committer, which answers it with what was stored (or a conflict).
// A retry that overtakes its original, still in the policy stage or queued
// for the committer (a reconnect meanwhile), is judged as a new send: with
// a verdict that changed in between (a reloaded word list, a webhook) it
// may be refused while the original is stored [IM-4.5-5].
func (s *Service) policy(ctx context.Context, sess *Session, req *store.SendRequest) *protocol.Error {
	var refused *protocol.Error
	for _, check := range s.checks {
		if refused = check(ctx, sess, req); refused != nil {
			break
		}
	}
	if refused == nil {
		return nil
	}
	if req.Cmid != "" {
		// The timeout only here: the checks of a send on the read
		// goroutine need none, and a timer per send is not free.
		sctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		ok, err := s.cfg.Store.Stored(sctx, req.From, req.Cmid)
		cancel()
		if err != nil {
			// Not knowing, a refusal could be final for a stored message.
			return protocol.Errorf(protocol.CodeUnavailable, "send not checked, retry")
		}
		if ok {
			return nil
		}
	}
	return refused
}

// A check is one stage of the policy.
type check func(ctx context.Context, sess *Session, req *store.SendRequest) *protocol.Error
