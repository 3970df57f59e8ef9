// Package run is how mqim's components start goroutines: each belongs to a
// Group its owner stops and waits for. Go refuses once the owner has begun
// to stop (Close), so nothing starts behind a Wait, and Wait is bounded by
// a context, so a drain cannot hang on a goroutine that does not end.
package run

import (
	"context"
	"fmt"
	"sync"
)

// Group is a set of goroutines with one owner. The zero value is ready.
type Group struct {
	mu     sync.Mutex // orders every Add before Close, so none races with Wait
	closed bool
	wg     sync.WaitGroup
}

// Go runs f on a new goroutine of the group and reports true, or reports
// false, without running f, once Close has been called.
func (g *Group) Go(f func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f()
	}()
	return true
}

// Close makes Go refuse from now on; the running goroutines go on.
func (g *Group) Close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// Closed reports whether Close has been called.
func (g *Group) Closed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// Wait closes the group and waits until its goroutines have returned, or
// until ctx ends (then the goroutines still running are the caller's
// error to report; they are not stopped).
func (g *Group) Wait(ctx context.Context) error {
	g.Close()
	done := make(chan struct{})
	go func() {
		g.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("goroutines still running: %w", ctx.Err())
	}
}
