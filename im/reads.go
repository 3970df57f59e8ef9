package im

import (
	"context"
	"errors"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// maxReads bounds a batched read [IM-7.6-4].
const maxReads = 100

// readRPC serves read [IM-7.6] on the committer, so that its inbox events
// are delivered in the same order as the messages around them.
func (s *Service) readRPC(c call) {
	var req protocol.ReadRequest
	if !c.decode(&req) {
		return
	}
	items, err := readItems(c.sess.User, req)
	if err != nil {
		c.reply(nil, err)
		return
	}
	batch := len(req.Reads) > 0
	s.ordered(c.sess, c.reply, func(ctx context.Context) (any, committed, error) {
		results, events, err := s.markRead(ctx, c.sess.User, items)
		switch {
		case err != nil:
			// The reads before stay: each is monotonic, a retry is harmless.
			return nil, committed{events: events}, err
		case batch:
			return &protocol.ReadBatchResult{Reads: results}, committed{events: events}, nil
		}
		return &results[0], committed{events: events}, nil
	})
}

func (s *Service) markRead(ctx context.Context, user string, items []protocol.ReadItem) ([]protocol.ReadResult, []store.InboxEvent, error) {
	results := make([]protocol.ReadResult, 0, len(items))
	var events []store.InboxEvent
	for _, it := range items {
		state, evs, err := s.cfg.Store.MarkRead(ctx, user, it.Conv, it.Seq)
		switch {
		case errors.Is(err, store.ErrNotMember) && !protocol.IsGroupConv(it.Conv):
			// The conversation names the requester (checked before), so it
			// is a direct conversation with no message yet [IM-7.6-3].
			results = append(results, protocol.ReadResult{Conv: it.Conv})
		case err != nil:
			fail := store.ProtocolError(err)
			if fail == nil {
				s.cfg.Log.Warn("mark read failed", "user", user, "conv", it.Conv, "error", err)
				fail = protocol.Errorf(protocol.CodeUnavailable, "read state not stored, retry")
			}
			return nil, events, fail
		default:
			results = append(results, protocol.ReadResult{Conv: state.Conv, ReadSeq: state.ReadSeq, Unread: state.Unread})
			events = append(events, evs...)
		}
	}
	return results, events, nil
}

// readItems validates a read request [IM-7.6-3] and returns its items,
// coalesced: one per conversation, with the highest seq asked, in the order
// of first appearance [IM-7.6-4].
func readItems(user string, req protocol.ReadRequest) ([]protocol.ReadItem, *protocol.Error) {
	items := req.Reads
	switch {
	case len(items) > 0 && (req.Conv != "" || req.Seq != 0):
		return nil, protocol.Errorf(protocol.CodeBadRequest, "read takes conv and seq, or reads, not both")
	case len(items) > maxReads:
		return nil, protocol.Errorf(protocol.CodeBadRequest, "at most %d reads per request", maxReads)
	case len(items) == 0:
		items = []protocol.ReadItem{{Conv: req.Conv, Seq: req.Seq}}
	}
	var out []protocol.ReadItem
	at := make(map[string]int, len(items))
	for _, it := range items {
		a, b, direct := protocol.DirectPeers(it.Conv)
		if !direct && !protocol.IsGroupConv(it.Conv) || it.Seq < 0 {
			return nil, protocol.Errorf(protocol.CodeBadRequest, "read needs a conversation id and a seq >= 0")
		}
		if direct && a != user && b != user {
			return nil, protocol.Errorf(protocol.CodeNotMember, "not a member of %q", it.Conv)
		}
		if i, ok := at[it.Conv]; ok {
			out[i].Seq = max(out[i].Seq, it.Seq)
			continue
		}
		at[it.Conv] = len(out)
		out = append(out, it)
	}
	return out, nil
}
