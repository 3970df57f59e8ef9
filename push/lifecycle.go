package push

import (
	"context"
	"fmt"
)

// Shutdown is Stop bounded by ctx, the node's lifecycle form: a worker
// still sending when ctx ends is left to finish on its own (its job, not
// acknowledged, goes back to the queue).
func (s *Service) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.Stop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("push: stop: %w", ctx.Err())
	}
}
