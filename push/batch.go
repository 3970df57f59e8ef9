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
// the send rate (docs/BENCHMARKS.md, "Offline push"). A job's reads are
// batched the same way: one read transaction or round trip for many jobs.
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

// readBatch, claimBatch and finishBatch are the store calls of the
// batchers.
func (s *Service) readBatch(ctx context.Context, rs []store.PushRead) ([]store.PushInfo, error) {
	return s.cfg.Store.PushReads(ctx, rs)
}

func (s *Service) claimBatch(ctx context.Context, cs []store.PushClaim) ([]store.Claim, error) {
	return s.cfg.Store.ClaimPush(ctx, cs, time.Now().UnixMilli(), s.cfg.Lease.Milliseconds())
}

func (s *Service) finishBatch(ctx context.Context, fs []store.PushFinish) ([]struct{}, error) {
	return make([]struct{}, len(fs)), s.cfg.Store.FinishPush(ctx, fs)
}
