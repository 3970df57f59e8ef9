// mqim: test helpers added by the fork (not upstream). Upstream's tests slept
// a fixed time for something to happen; they poll for it with these instead
// (see README.md).

package mqtt

import (
	"sync/atomic"
	"testing"
	"time"
)

// waitTimeout bounds every wait; a loaded machine meets a condition within
// milliseconds, so reaching it means the condition will not hold.
const waitTimeout = 10 * time.Second

// waitFor polls cond until it holds and reports whether it did. On timeout it
// fails the test with t.Errorf, which, unlike t.Fatal, may be called from any
// goroutine, so waitFor can replace a sleep in a test's helper goroutines.
func waitFor(t testing.TB, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Errorf("condition not met within %v", waitTimeout)
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// drained reports that every packet queued for cl's write loop has been
// written (or failed to be). Packets are counted in outboundQty when queued,
// so once the goroutine that published sees it at zero, they are on the wire.
func drained(cl *Client) func() bool {
	return func() bool {
		return atomic.LoadInt32(&cl.State.outboundQty) == 0 && len(cl.State.outbound) == 0
	}
}
