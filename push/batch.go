package push

import (
	"context"
	"time"

	"github.com/mqim/mqim/store"
)

// batcher is a group commit: the calls of concurrent workers that arrive
// while one store transaction runs go into the next, together. Claims
// and settlements are writes; on SQLite every write transaction is an
// fsync on the one writer the sends use too, so one per push would cost
// the send rate (docs/BENCHMARKS.md, "Offline push"); claims, settlements
// and the relay's dequeues share one batcher, so one transaction. A job's
// reads are batched the same way: one read transaction or round trip for
// many jobs.
type batcher[Req, Res any] struct {
	in  chan batchCall[Req, Res]
	run func(ctx context.Context, reqs []Req) ([]Res, error)
}

type batchCall[Req, Res any] struct {
	req  Req
	done chan batchResult[Res] // buffered: the loop never waits for a caller
}

type batchResult[Res any] struct {
	res Res
	err error
}

// maxBatch bounds a transaction.
const maxBatch = 256

func newBatcher[Req, Res any](run func(context.Context, []Req) ([]Res, error)) *batcher[Req, Res] {
	return &batcher[Req, Res]{in: make(chan batchCall[Req, Res], maxBatch), run: run}
}

// loop runs the batches until ctx ends.
func (b *batcher[Req, Res]) loop(ctx context.Context) {
	for {
		var calls []batchCall[Req, Res]
		select {
		case <-ctx.Done():
			return
		case c := <-b.in:
			calls = append(calls, c)
		}
	more:
		for len(calls) < maxBatch {
			select {
			case c := <-b.in:
				calls = append(calls, c)
			default:
				break more
			}
		}
		reqs := make([]Req, len(calls))
		for i, c := range calls {
			reqs[i] = c.req
		}
		tctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		res, err := b.run(tctx, reqs)
		cancel()
		for i, c := range calls {
			var r batchResult[Res]
			if r.err = err; err == nil {
				r.res = res[i]
			}
			c.done <- r
		}
	}
}

// do hands req to the next batch and waits for its outcome.
func (b *batcher[Req, Res]) do(ctx context.Context, req Req) (Res, error) {
	var zero Res
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	c := batchCall[Req, Res]{req: req, done: make(chan batchResult[Res], 1)}
	select {
	case b.in <- c:
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	select {
	case r := <-c.done:
		return r.res, r.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// readBatch is the store call of the reads' batcher.
func (s *Service) readBatch(ctx context.Context, rs []store.PushRead) ([]store.PushInfo, error) {
	return s.cfg.Store.PushReads(ctx, rs)
}

// pushWrite is one call of the writes' batcher: a claim, a settlement or
// the relay's outbox rows. Claims, settlements and dequeues of the node
// share one store transaction (store.PushWrite).
type pushWrite struct {
	claim   *store.PushClaim
	finish  *store.PushFinish
	dequeue []store.PushKey
}

func (s *Service) writeBatch(ctx context.Context, ws []pushWrite) ([]store.Claim, error) {
	w := store.PushWrites{Now: time.Now().UnixMilli(), Lease: s.cfg.Lease.Milliseconds()}
	var claims []int
	for i, x := range ws {
		switch {
		case x.claim != nil:
			w.Claim = append(w.Claim, *x.claim)
			claims = append(claims, i)
		case x.finish != nil:
			w.Finish = append(w.Finish, *x.finish)
		default:
			w.Dequeue = append(w.Dequeue, x.dequeue...)
		}
	}
	got, err := s.cfg.Store.PushWrite(ctx, w)
	if err != nil {
		return nil, err
	}
	out := make([]store.Claim, len(ws))
	for j, i := range claims {
		out[i] = got[j]
	}
	return out, nil
}

// claim, finish and dequeue go through the writes' batcher.
func (s *Service) claim(ctx context.Context, c store.PushClaim) (store.Claim, error) {
	return s.writes.do(ctx, pushWrite{claim: &c})
}

func (s *Service) finish(ctx context.Context, f store.PushFinish) error {
	_, err := s.writes.do(ctx, pushWrite{finish: &f})
	return err
}

func (s *Service) dequeue(ctx context.Context, keys []store.PushKey) error {
	if len(keys) == 0 {
		return nil
	}
	_, err := s.writes.do(ctx, pushWrite{dequeue: keys})
	return err
}
