package im

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// commitLoop is the committer: it takes whatever has queued up while the
// previous commit ran and commits it as one batch (group commit), so batch
// size and throughput grow with load. One goroutine owns the store writes,
// so commits, and therefore deliveries, happen in one order.
func (s *Service) commitLoop() {
	defer close(s.done)
	batch := make([]*op, 0, s.cfg.MaxBatch)
	for {
		o, ok := <-s.queue
		if !ok {
			return
		}
		batch = append(batch[:0], o)
	fill:
		for len(batch) < s.cfg.MaxBatch {
			select {
			case o, ok := <-s.queue:
				if !ok {
					break fill
				}
				batch = append(batch, o)
			default:
				break fill
			}
		}
		s.m.queued.Sub(float64(len(batch)))
		s.process(batch)
	}
}

// Kinds of op, for process.
const (
	opDirect = iota
	opGroup
	opOrdered
)

func (o *op) kind() int {
	switch {
	case o.send == nil:
		return opOrdered
	case o.send.Group != "":
		return opGroup
	}
	return opDirect
}

// process runs a batch in queue order: runs of direct sends are committed
// together, and runs of group sends; other requests, which are rare, one
// by one between them.
func (s *Service) process(batch []*op) {
	for len(batch) > 0 {
		k := batch[0].kind()
		n := 1
		for n < len(batch) && batch[n].kind() == k {
			n++
		}
		if k == opOrdered {
			s.runOrdered(batch[0])
			batch = batch[1:]
			continue
		}
		s.commitSends(batch[:n], k == opGroup)
		batch = batch[n:]
	}
}

func (s *Service) commitSends(ops []*op, group bool) {
	if !group { // blocks are between two users
		if ops = s.markBlocked(ops); len(ops) == 0 {
			return
		}
	}
	reqs := make([]store.SendRequest, len(ops))
	for i, o := range ops {
		reqs[i] = *o.send
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	start := time.Now()
	appendFn := s.cfg.Store.Append
	if group {
		appendFn = s.cfg.Store.AppendGroup
	}
	results, err := appendFn(ctx, reqs)
	cancel()
	s.m.commitSeconds.Observe(time.Since(start).Seconds())
	s.m.batchSize.Observe(float64(len(ops)))
	if err == nil && len(results) != len(ops) {
		err = errors.New("store returned a result count unlike the batch")
	}
	if err != nil {
		s.cfg.Log.Warn("commit batch failed", "sends", len(ops), "error", err)
		s.refuseAll(ops, protocol.Errorf(protocol.CodeUnavailable, "message not stored, retry with the same cmid"))
		return
	}
	var (
		events    []store.InboxEvent
		broadcast []*store.Message
	)
	for i, o := range ops {
		r := &results[i]
		if r.Err != nil {
			pe := store.ProtocolError(r.Err)
			if pe == nil {
				s.cfg.Log.Error("store refused a send", "from", o.send.From, "cmid", o.send.Cmid, "error", r.Err)
				pe = protocol.Errorf(protocol.CodeInternal, "message not stored")
			}
			s.m.sends.WithLabelValues(pe.Code).Inc()
			o.done(SendOutcome{Cmid: o.send.Cmid, Err: pe})
			continue
		}
		out := SendOutcome{Cmid: o.send.Cmid, Msg: &r.Msg, Duplicate: r.Duplicate}
		for _, ev := range r.Events {
			if ev.User == o.send.From {
				out.InboxSeq = ev.Seq
			}
		}
		if r.Duplicate {
			s.m.sends.WithLabelValues("duplicate").Inc()
		} else {
			s.m.sends.WithLabelValues("ok").Inc()
		}
		o.done(out)
		events = append(events, r.Events...)
		if r.Broadcast {
			broadcast = append(broadcast, &r.Msg)
		}
	}
	// Delivery after the answers are handed on: nothing is delivered that
	// is not committed [IM-5.2-1].
	s.deliver(events)
	for _, m := range broadcast {
		s.cfg.Groups.Broadcast(m)
	}
}

func (s *Service) refuseAll(ops []*op, err *protocol.Error) {
	for _, o := range ops {
		s.m.sends.WithLabelValues(err.Code).Inc()
		o.done(SendOutcome{Cmid: o.send.Cmid, Err: err})
	}
}

// markBlocked marks the sends whose recipient blocks the sender
// [IM-13.2-1]; the store refuses them unless they retry a stored message
// ([IM-4.5-2]: a retry is answered with what was stored, block or not). If
// the blocks cannot be read, the batch fails as unavailable.
func (s *Service) markBlocked(ops []*op) []*op {
	pairs := make([]store.Pair, len(ops))
	for i, o := range ops {
		pairs[i] = store.Pair{Owner: o.send.To, Peer: o.send.From}
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	rels, err := s.cfg.Store.Relations(ctx, pairs)
	cancel()
	if err == nil && len(rels) != len(ops) {
		err = errors.New("store returned a relation count unlike the batch")
	}
	if err != nil {
		s.cfg.Log.Warn("reading blocks failed", "sends", len(ops), "error", err)
		s.refuseAll(ops, protocol.Errorf(protocol.CodeUnavailable, "message not stored, retry with the same cmid"))
		return nil
	}
	for i, o := range ops {
		o.send.Blocked = rels[i].Blocked
	}
	return ops
}

// runOrdered runs an ordered request: its reply goes out off the
// committer (answering a client that stops reading can block, and must not
// stall every send), then what it committed is handed on — also when it
// failed after committing part of its work (a batched read).
func (s *Service) runOrdered(o *op) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
	res, c, err := o.ordered.run(ctx)
	cancel()
	s.Spawn(o.sess, func() { o.ordered.reply(res, err) })
	if c.members != nil {
		// Before delivering anything: removed members stop receiving the
		// group topic now, added ones may subscribe [IM-11.4-4].
		s.cfg.Groups.MembersChanged(c.members.conv, c.members.added, c.members.removed)
	}
	s.deliver(c.events)
	if c.broadcast != nil {
		s.cfg.Groups.Broadcast(c.broadcast)
	}
}

// storeFailed answers a store error: a refusal by a store rule with its
// protocol error (store.ProtocolError), a failure as unavailable, kept for
// the log; client-visible errors pass through.
func storeFailed(what string, err error) error {
	if pe := store.ProtocolError(err); pe != nil {
		return pe
	}
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe
	}
	return fmt.Errorf("%s: %w", what, errors.Join(protocol.Errorf(protocol.CodeUnavailable, "store unavailable, retry"), err))
}
