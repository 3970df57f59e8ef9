package e2e

import (
	"fmt"
	"strconv"
	gosync "sync"
	"testing"
	"time"

	"github.com/mqim/mqim/protocol"
)

// TestConcurrentSenders: 8 devices of alice send 50 messages each into one
// conversation, many in flight at once [IM-4.4-5]. Every PUBACK succeeds, the
// conversation seq is continuous [IM-3.3-1], and every observing device sees
// the same order 1..400, pushed in inbox seq order [IM-5.2-1], gaps filled by
// sync [IM-5.2-3].
func TestConcurrentSenders(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		const senders, perSender = 8, 50
		const total = senders * perSender
		n := startNode(t, be)
		bob1 := dl.dial(t, n, "bob")
		bob2 := dl.dial(t, n, "bob")
		observer := dl.dial(t, n, "alice")
		var devs []*device
		for range senders {
			devs = append(devs, dl.dial(t, n, "alice", noSubscribe()))
		}

		type result struct {
			cmid string
			r    pubResult
		}
		results := make(chan result, total)
		var wg gosync.WaitGroup
		start := time.Now()
		for i, d := range devs {
			for j := range perSender {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := text(fmt.Sprintf("s%d-%02d", i, j), "bob", fmt.Sprintf("sender %d message %d", i, j))
					// All 50 of a device are in flight at once: paho.golang's
					// Publish blocks, so one goroutine each.
					payload, _ := protocol.Encode(d.in, &s)
					results <- result{s.Cmid, d.c.publish(protocol.SendTopic("alice"), payload, pubOpts{qos: 1})}
				}()
			}
		}
		wg.Wait()
		close(results)
		t.Logf("%d sends acknowledged in %v", total, time.Since(start))

		idOfSeq := map[int64]string{} // conv seq → message id, from the PUBACKs (MQTT 5)
		for res := range results {
			if res.r.Err != nil || res.r.Code != 0 {
				t.Fatalf("send %s: PUBACK %#x %q, err %v", res.cmid, res.r.Code, res.r.Reason, res.r.Err)
			}
			if dl.v5() {
				s := res.r.sent(t)
				if _, dup := idOfSeq[s.Seq]; dup || s.Seq < 1 || s.Seq > total || s.Conv != "d:alice:bob" {
					t.Fatalf("send %s: PUBACK %v (seq taken twice or out of range)", res.cmid, res.r.Props)
				}
				idOfSeq[s.Seq] = strconv.FormatInt(s.ID, 10)
			}
		}

		// What each observer saw, deduplicated by seq and completed by sync.
		type seen struct {
			id   int64
			cmid string
		}
		views := map[string]map[int64]seen{}
		for _, d := range []*device{bob1, bob2, observer} {
			// Wait for the push of the whole conversation; what is missing
			// after that is fetched with sync, as a device would.
			complete := d.waitPushed(total)
			evs := d.events(0)
			view := map[int64]seen{}
			var last int64
			for _, ev := range evs {
				if ev.Err != nil || ev.Kind != protocol.KindMessage {
					t.Fatalf("%s: unexpected event %v", d.id, ev)
				}
				if prev, dup := view[ev.Seq]; dup {
					if prev.id != ev.Msg.ID {
						t.Fatalf("%s: seq %d seen as message %d and %d", d.id, ev.Seq, prev.id, ev.Msg.ID)
					}
					continue
				}
				if ev.Seq <= last {
					t.Fatalf("%s: seq %d pushed after %d: push must be in inbox seq order", d.id, ev.Seq, last)
				}
				last = ev.Seq
				if ev.ConvSeq != ev.Seq || ev.Conv != "d:alice:bob" {
					t.Fatalf("%s: %v: the only conversation, so conv_seq must equal seq", d.id, ev)
				}
				view[ev.Seq] = seen{ev.Msg.ID, ev.Msg.Cmid}
			}
			if !complete {
				cursor := int64(contiguous(evs))
				filled := 0
				for _, ev := range d.syncAll(cursor) {
					if _, ok := view[ev.Seq]; !ok {
						filled++
						view[ev.Seq] = seen{ev.Msg.ID, ev.Msg.Cmid}
					}
				}
				t.Logf("%s: %d events not pushed, filled by sync", d.id, filled)
			}
			if len(view) != total {
				t.Fatalf("%s: has %d distinct events, want %d", d.id, len(view), total)
			}
			views[d.id] = view
		}
		ref := views[bob1.id]
		cmids := map[string]bool{}
		for seq := int64(1); seq <= total; seq++ {
			m := ref[seq]
			if cmids[m.cmid] {
				t.Fatalf("cmid %s stored twice", m.cmid)
			}
			cmids[m.cmid] = true
			for id, v := range views {
				if v[seq] != m {
					t.Fatalf("seq %d: %s saw %+v, %s saw %+v", seq, bob1.id, m, id, v[seq])
				}
			}
			if dl.v5() && idOfSeq[seq] != strconv.FormatInt(m.id, 10) {
				t.Fatalf("seq %d: PUBACK said message %s, devices saw %d", seq, idOfSeq[seq], m.id)
			}
		}
		if len(cmids) != total {
			t.Fatalf("%d distinct cmids stored, want %d", len(cmids), total)
		}
		if s := call[protocol.SyncResult](bob1, protocol.MethodSync, protocol.SyncRequest{Limit: 0}); s.Latest != total {
			t.Fatalf("bob's latest_seq %d, want %d", s.Latest, total)
		}
	})
}

// pushQuiet is how long waitPushed waits for the next push before it takes
// the push to be over.
const pushQuiet = 3 * time.Second

// waitPushed waits until the device has inbox events 1..total, and reports
// whether it has. It gives up early when no event came for pushQuiet: a
// full outbound queue drops pushes, the last ones too, and a device then
// fills the gaps by sync (the SDK's quiet sync); waiting waitTimeout for
// events that will never come only made the test slow (a minute and more
// under load). A push slower than that is filled by sync too, so the check
// does not depend on the machine's speed.
func (d *device) waitPushed(total int) bool {
	deadline := time.After(waitTimeout)
	for {
		d.mu.Lock()
		n, grew := contiguous(d.log), d.grew
		d.mu.Unlock()
		if n >= total {
			return true
		}
		select {
		case <-grew:
		case <-time.After(pushQuiet):
			return false
		case <-deadline:
			return false
		}
	}
}

// contiguous returns the highest seq up to which message events 1..seq are
// all present.
func contiguous(evs []event) int {
	have := map[int64]bool{}
	for _, ev := range evs {
		have[ev.Seq] = true
	}
	n := 0
	for have[int64(n+1)] {
		n++
	}
	return n
}

// waitUntil polls cond until it holds (true) or timeout passes (false).
func waitUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	delay := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(delay) // a poll interval
		delay = min(2*delay, 50*time.Millisecond)
	}
	return true
}
