package im

import (
	"context"
	"sync"

	"github.com/mqim/mqim/protocol"
)

// arrival keeps a session's operations in the order they arrived while
// some of them wait for a policy stage that runs off the session's
// goroutine — the before-send webhook, a network call. Many such calls
// are in flight at once, yet their sends, and the requests that came after
// them, reach the committer in arrival order: a conversation's messages
// are in the order the device sent them [IM-18.2-5], and a PUBACK, written
// in arrival order anyway [IM-4.4-5], waits for nothing it did not already
// wait for. Without pending entries an operation goes to the queue at once.
type arrival struct {
	calls    chan struct{} // this session's policy calls in flight; made on first use
	mu       sync.Mutex
	pending  []*waiting // in arrival order; the head is removed once queued
	draining bool
}

// waiting is an operation whose policy may still be running.
type waiting struct {
	op    *op // nil once refused: nothing to queue
	ready bool
}

// afterPolicy queues o behind the session's pending operations once
// policy, run on a goroutine of its own, passes; a refusal is answered by
// policy itself and queues nothing. The goroutines are bounded per session
// (an eighth of the node's bound) and node-wide by hookSem: with either
// taken, the caller (a connection's read goroutine) waits, which stops
// reading that socket — one connection cannot take every call of the node.
func (s *Service) afterPolicy(sess *Session, o *op, policy func(ctx context.Context) *protocol.Error) {
	a := &sess.arrival
	a.mu.Lock()
	if a.calls == nil {
		a.calls = make(chan struct{}, max(1, cap(s.hookSem)/8))
	}
	calls := a.calls
	a.mu.Unlock()
	calls <- struct{}{}
	s.hookSem <- struct{}{}
	w := &waiting{op: o}
	a.mu.Lock()
	a.pending = append(a.pending, w)
	a.mu.Unlock()
	s.Spawn(sess, func() {
		ok := false
		defer func() {
			<-s.hookSem
			<-calls
			if !ok { // a panic: the session is aborted, later ones must not hang
				s.settle(sess, w, false)
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
		err := policy(ctx)
		cancel()
		ok = true
		s.settle(sess, w, err == nil)
	})
}

// enqueueInOrder queues o, behind the session's operations still in their
// policy stage if there are any.
func (s *Service) enqueueInOrder(o *op) {
	if o.sess != nil {
		a := &o.sess.arrival
		a.mu.Lock()
		if len(a.pending) > 0 {
			// The head is not ready yet, or a drain is running: either way
			// whoever drains next queues it.
			a.pending = append(a.pending, &waiting{op: o, ready: true})
			a.mu.Unlock()
			return
		}
		a.mu.Unlock()
	}
	s.enqueue(o)
}

// settle marks w done (queued if pass) and queues the ready operations at
// the head of the session's list, one drain at a time, so that they enter
// the queue in their order.
func (s *Service) settle(sess *Session, w *waiting, pass bool) {
	a := &sess.arrival
	a.mu.Lock()
	w.ready = true
	if !pass {
		w.op = nil
	}
	if a.draining {
		a.mu.Unlock()
		return
	}
	a.draining = true
	for len(a.pending) > 0 && a.pending[0].ready {
		head := a.pending[0]
		a.mu.Unlock()
		if head.op != nil {
			s.enqueue(head.op) // may block while the queue is full
		}
		a.mu.Lock()
		a.pending[0] = nil
		a.pending = a.pending[1:]
	}
	a.draining = false
	a.mu.Unlock()
}
