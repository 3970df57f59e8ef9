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

// Kinds of op, for process.
const (
	opDirect = iota
	opGroup
	opOther
)

func (o *op) kind() int {
	switch {
	case o.send == nil:
		return opOther
	case o.send.Group != "":
		return opGroup
	}
	return opDirect
}

// process runs a batch in queue order: runs of direct sends are committed
// together, and runs of group sends; reads and group changes, which are
// rare, one by one between them.
func (h *Hook) process(batch []*op) {
	for len(batch) > 0 {
		k := batch[0].kind()
		n := 1
		for n < len(batch) && batch[n].kind() == k {
			n++
		}
		switch {
		case k != opOther:
			h.commitSends(batch[:n], k == opGroup)
			batch = batch[n:]
		case batch[0].read != nil:
			h.commitRead(batch[0])
			batch = batch[1:]
		case batch[0].ext != nil:
			h.runExt(batch[0].cl, batch[0].ext)
			batch = batch[1:]
		default:
			h.commitChange(batch[0])
			batch = batch[1:]
		}
	}
}

func (h *Hook) commitSends(ops []*op, group bool) {
	if !group { // blocks are between two users (ext.go)
		if ops = h.markBlocked(ops); len(ops) == 0 {
			return
		}
	}
	reqs := make([]store.SendRequest, len(ops))
	for i, o := range ops {
		reqs[i] = *o.send
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.Timeout)
	start := time.Now()
	appendFn := h.cfg.Store.Append
	if group {
		appendFn = h.cfg.Store.AppendGroup
	}
	results, err := appendFn(ctx, reqs)
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
			h.refuse(o, pe)
		}
		return
	}
	var (
		events    []store.InboxEvent
		broadcast []*store.Message
	)
	for i, o := range ops {
		r := &results[i]
		if r.Err != nil {
			pe := sendError(r.Err)
			if pe.Code == protocol.CodeInternal {
				h.cfg.Log.Error("store refused a send", "from", o.send.From, "cmid", o.send.Cmid, "error", r.Err)
			}
			h.m.sends.WithLabelValues(pe.Code).Inc()
			h.refuse(o, pe)
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
		h.accept(o, r, inboxSeq)
		events = append(events, r.Events...)
		if r.Broadcast {
			broadcast = append(broadcast, &r.Msg)
		}
	}
	// Delivery after the PUBACKs are handed to the writers: nothing is
	// delivered that is not committed [IM-5.2-1].
	if len(events) > 0 {
		h.cfg.Deliver.Deliver(events)
	}
	for _, m := range broadcast {
		h.cfg.Groups.Broadcast(m)
	}
}

func sendError(err error) *protocol.Error {
	if pe := store.ProtocolError(err); pe != nil {
		return pe
	}
	return protocol.Errorf(protocol.CodeInternal, "message not stored")
}

// readOp is a read RPC, run by the committer so that its inbox events are
// delivered in the same order as the messages around them.
type readOp struct {
	user  string
	items []protocol.ReadItem // coalesced: one per conversation
	batch bool                // answer with a ReadBatchResult
	reply func(result any, err error)
}

func (h *Hook) commitRead(o *op) {
	r := o.read
	results := make([]protocol.ReadResult, 0, len(r.items))
	var (
		events []store.InboxEvent
		fail   *protocol.Error
	)
	for _, it := range r.items {
		ctx, cancel := context.WithTimeout(context.Background(), h.cfg.Timeout)
		state, evs, err := h.cfg.Store.MarkRead(ctx, r.user, it.Conv, it.Seq)
		cancel()
		switch {
		case errors.Is(err, store.ErrNotMember) && !protocol.IsGroupConv(it.Conv):
			// The conversation names the requester (checked before), so it
			// is a direct conversation with no message yet [IM-7.6-3].
			results = append(results, protocol.ReadResult{Conv: it.Conv})
		case err != nil:
			if fail = store.ProtocolError(err); fail == nil {
				h.cfg.Log.Warn("mark read failed", "user", r.user, "conv", it.Conv, "error", err)
				fail = protocol.Errorf(protocol.CodeUnavailable, "read state not stored, retry")
			}
		default:
			results = append(results, protocol.ReadResult{Conv: state.Conv, ReadSeq: state.ReadSeq, Unread: state.Unread})
			events = append(events, evs...)
		}
		if fail != nil {
			break // the reads before stay: each is monotonic, a retry is harmless
		}
	}
	// The reply is written off the committer: publishing to a client that
	// stops reading can block on its lock, and must not stall every send.
	h.spawn(o.cl, func() {
		switch {
		case fail != nil:
			r.reply(nil, fail)
		case r.batch:
			r.reply(&protocol.ReadBatchResult{Reads: results}, nil)
		default:
			r.reply(&results[0], nil)
		}
	})
	if len(events) > 0 {
		h.cfg.Deliver.Deliver(events)
	}
}

// changeOp is a group change RPC, run by the committer like reads, so that
// its events are delivered in commit order with the messages around it.
type changeOp struct {
	change store.GroupChange
	reply  func(result any, err error)
}

func (h *Hook) commitChange(o *op) {
	c := o.change
	c.change.ID = h.cfg.IDs.Next()
	c.change.TS = time.Now().UnixMilli()
	c.change.Threshold = h.cfg.GroupReadFanout
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.Timeout)
	res, err := h.cfg.Store.ChangeGroup(ctx, c.change)
	cancel()
	if err != nil {
		pe := changeError(err)
		if pe.Code == protocol.CodeUnavailable {
			h.cfg.Log.Warn("group change failed", "group", c.change.Group, "op", c.change.Op, "error", err)
		}
		h.spawn(o.cl, func() { c.reply(nil, pe) })
		return
	}
	// Before delivering anything: removed members stop receiving the group
	// topic now, added ones may subscribe [IM-11.4-4].
	var added []string
	if c.change.Op == store.OpCreate || c.change.Op == store.OpAdd {
		added = c.change.Users
	}
	h.cfg.Groups.MembersChanged(c.change.Group, added, res.Removed)
	result := &protocol.GroupChangeResult{Group: c.change.Group, ConvSeq: res.Msg.Seq, Fanout: res.Fanout, ReadFrom: res.ReadFrom}
	h.spawn(o.cl, func() { c.reply(result, nil) })
	if len(res.Events) > 0 {
		h.cfg.Deliver.Deliver(res.Events)
	}
	if res.Broadcast {
		h.cfg.Groups.Broadcast(&res.Msg)
	}
}

func changeError(err error) *protocol.Error {
	if pe := store.ProtocolError(err); pe != nil {
		return pe
	}
	return protocol.Errorf(protocol.CodeUnavailable, "group not changed, retry")
}
