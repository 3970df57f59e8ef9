package e2e

import (
	"fmt"
	gosync "sync"
	"testing"

	"github.com/mqim/mqim/protocol"
)

// TestReceiveMaximumUnderLoad: a device that announces a small Receive
// Maximum gets every event by push while it keeps publishing, and the node
// still shuts down. mochi v2.7.9 deadlocked here (a recursive read lock in
// Inflight.NextImmediate, patched in third_party/mochi): the device's read
// loop and a delivery worker blocked each other for good.
func TestReceiveMaximumUnderLoad(t *testing.T) {
	forEachStore(t, func(t *testing.T, be backend) {
		const senders, perSender = 4, 250
		const total = senders * perSender
		n := startNode(t, be)
		dl := dialer{5}
		bob := dl.dial(t, n, "bob", withReceiveMaximum(2))
		var devs []*device
		for range senders {
			devs = append(devs, dl.dial(t, n, "alice", noSubscribe()))
		}

		done := make(chan struct{})
		var rpcs gosync.WaitGroup
		rpcs.Add(1)
		go func() { // bob's read loop processes packets all the time
			defer rpcs.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				bob.rpc(protocol.MethodSync, protocol.SyncRequest{After: 0, Limit: 0})
			}
		}()

		var wg gosync.WaitGroup
		for i, d := range devs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var inflight gosync.WaitGroup
				for j := range perSender {
					inflight.Add(1)
					go func() {
						defer inflight.Done()
						s := text(fmt.Sprintf("r%d-%03d", i, j), "bob", "load")
						payload, _ := protocol.Encode(d.in, &s)
						if r := d.c.publish(protocol.SendTopic("alice"), payload, pubOpts{qos: 1}); r.Err != nil || r.Code != 0 {
							t.Errorf("send %s: %#x %v", s.Cmid, r.Code, r.Err)
						}
					}()
				}
				inflight.Wait()
			}()
		}
		wg.Wait()
		if !waitUntil(waitTimeout, func() bool { return contiguous(bob.events(0)) >= total }) {
			t.Errorf("bob got %d of %d events by push", contiguous(bob.events(0)), total)
		}
		close(done)
		rpcs.Wait()
	})
}
