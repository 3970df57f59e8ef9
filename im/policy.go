package im

import (
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// policy is the pipeline's policy stage, between validation and the
// committer, for every send whatever carried it: empty today. Rate limits,
// the sensitive-word filter and the before-send webhook (issue 12, part B)
// go here. They must let a retry of an already stored (sender, cmid)
// through unchanged [IM-4.5] — the store answers it with what was stored —
// and a masking filter changes req.Body after the Digest was taken, which
// stays that of what the client sent.
func (s *Service) policy(sess *Session, req *store.SendRequest) *protocol.Error {
	return nil
}
