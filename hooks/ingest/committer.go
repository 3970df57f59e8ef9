package ingest

import (
	"context"
	"errors"
	"time"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// commitLoop is the committer: it takes whatever has queued up while the
// previous commit ran and commits it as one batch (group commit), so batch
// size and throughput grow with load.
func (h *Hook) commitLoop() {
	defer h.workers.Done()
	defer close(h.done)
	batch := make([]*op, 0, h.cfg.MaxBatch)
	for {
		o, ok := <-h.queue
		if !ok {
			return
		}
		batch = append(batch[:0], o)
	fill:
		for len(batch) < h.cfg.MaxBatch {
			select {
			case o, ok := <-h.queue:
				if !ok {
					break fill
				}
				batch = append(batch, o)
			default:
				break fill
			}
		}
		h.m.queued.Sub(float64(len(batch)))
		h.process(batch)
	}
}

// process runs a batch in queue order: runs of sends are committed
// together; reads, which are rare, one by one between them.
func (h *Hook) process(batch []*op) {
	for len(batch) > 0 {
		n := 0
		for n < len(batch) && batch[n].send != nil {
			n++
		}
		if n > 0 {
			h.commitSends(batch[:n])
			batch = batch[n:]
			continue
		}
		if batch[0].ext != nil {
			h.runExt(batch[0].ext)
		} else {
			h.commitRead(batch[0])
		}
		batch = batch[1:]
	}
}

func (h *Hook) commitSends(ops []*op) {
	if ops = h.refuseBlocked(ops); len(ops) == 0 { // ext.go
		return
	}
	reqs := make([]store.SendRequest, len(ops))
	for i, o := range ops {
		reqs[i] = *o.send
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.Timeout)
	start := time.Now()
	results, err := h.cfg.Store.Append(ctx, reqs)
	cancel()
	h.m.commitSeconds.Observe(time.Since(start).Seconds())
	h.m.batchSize.Observe(float64(len(ops)))
	if err == nil && len(results) != len(ops) {
		err = errors.New("store returned a result count unlike the batch")
	}
	if err != nil {
		h.cfg.Log.Warn("commit batch failed", "sends", len(ops), "error", err)
		pe := protocol.Errorf(protocol.CodeUnavailable, "message not stored, retry with the same cmid")
		for _, o := range ops {
			h.m.sends.WithLabelValues(pe.Code).Inc()
			h.fail(o.cl, o.slot, o.send.Cmid, pe)
		}
		return
	}
	var events []store.InboxEvent
	for i, o := range ops {
		r := &results[i]
		if r.Err != nil {
			pe := sendError(r.Err)
			if pe.Code == protocol.CodeInternal {
				h.cfg.Log.Error("store refused a send", "from", o.send.From, "cmid", o.send.Cmid, "error", r.Err)
			}
			h.m.sends.WithLabelValues(pe.Code).Inc()
			h.fail(o.cl, o.slot, o.send.Cmid, pe)
			continue
		}
		var inboxSeq int64
		for _, ev := range r.Events {
			if ev.User == o.send.From {
				inboxSeq = ev.Seq
			}
		}
		if r.Duplicate {
			h.m.sends.WithLabelValues("duplicate").Inc()
		} else {
			h.m.sends.WithLabelValues("ok").Inc()
		}
		h.ack(o.cl, o.slot, successProps(&r.Msg, inboxSeq))
		events = append(events, r.Events...)
	}
	// Delivery after the PUBACKs are handed to the writers: nothing is
	// delivered that is not committed [IM-5.2-1].
	if len(events) > 0 {
		h.cfg.Deliver.Deliver(events)
	}
}

func sendError(err error) *protocol.Error {
	switch {
	case errors.Is(err, store.ErrUnknownUser):
		return protocol.Errorf(protocol.CodeUnknownUser, "the recipient does not exist")
	case errors.Is(err, store.ErrCmidConflict):
		return protocol.Errorf(protocol.CodeCmidConflict, "this cmid was already used for a different message")
	}
	return protocol.Errorf(protocol.CodeInternal, "message not stored")
}

// readOp is a read RPC, run by the committer so that its inbox events are
// delivered in the same order as the messages around them.
type readOp struct {
	user  string
	req   protocol.ReadRequest
	reply func(result any, err error)
}

func (h *Hook) commitRead(o *op) {
	r := o.read
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.Timeout)
	state, events, err := h.cfg.Store.MarkRead(ctx, r.user, r.req.Conv, r.req.Seq)
	cancel()
	// The reply is written off the committer: publishing to a client that
	// stops reading can block on its lock, and must not stall every send.
	switch {
	case errors.Is(err, store.ErrNotMember):
		// The conversation names the requester (checked before), so it is
		// a direct conversation with no message yet [IM-7.6-3].
		h.spawn(func() { r.reply(&protocol.ReadResult{Conv: r.req.Conv}, nil) })
	case err != nil:
		h.cfg.Log.Warn("mark read failed", "user", r.user, "conv", r.req.Conv, "error", err)
		h.spawn(func() { r.reply(nil, protocol.Errorf(protocol.CodeUnavailable, "read state not stored, retry")) })
	default:
		h.spawn(func() {
			r.reply(&protocol.ReadResult{Conv: state.Conv, ReadSeq: state.ReadSeq, Unread: state.Unread}, nil)
		})
		if len(events) > 0 {
			h.cfg.Deliver.Deliver(events)
		}
	}
}
