package e2e

import (
	"fmt"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqim/mqim/protocol"
)

// TestGracefulShutdown: publishes are in flight while the node shuts down.
// Every send acknowledged as stored (MQTT 5 success PUBACK [IM-4.4-1]; 3.1.1
// message event [IM-4.4-6]) is in history after a restart; every other
// outcome is unavailable [IM-6.1-1] or a lost connection, never a success
// without a stored message. MQTT 5 devices get DISCONNECT 0x8B [IM-6.2-2].
func TestGracefulShutdown(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		dl.dial(t, n, "bob", noSubscribe())
		const devices, loops = 4, 8
		var senders []*device
		for range devices {
			var opts []dialOpt
			if dl.v5() {
				opts = append(opts, noSubscribe()) // the PUBACK says it all
			}
			senders = append(senders, dl.dial(t, n, "alice", opts...))
		}

		type attempt struct {
			cmid     string
			r        pubResult
			stopping bool // sent after the shutdown began
		}
		var (
			mu       gosync.Mutex
			attempts []attempt
			stopping atomic.Bool
			acked    atomic.Int64
			wg       gosync.WaitGroup
		)
		for di, d := range senders {
			for l := range loops {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 5000 {
						s := text(fmt.Sprintf("d%d-l%d-%d", di, l, i), "bob", "in flight")
						payload, _ := protocol.Encode(d.in, &s)
						began := stopping.Load()
						r := d.c.publish(protocol.SendTopic("alice"), payload, pubOpts{qos: 1})
						mu.Lock()
						attempts = append(attempts, attempt{s.Cmid, r, began})
						mu.Unlock()
						if r.Err != nil {
							return // the connection is gone
						}
						if r.Code == 0 {
							acked.Add(1)
						}
					}
				}()
			}
		}
		// Shut down in the middle of the traffic, once 150 sends are known
		// as stored: by their PUBACK (MQTT 5), by their event (3.1.1, whose
		// PUBACK says nothing; counting PUBACKs, the events of some were
		// still on their way when the connections closed, and fewer than
		// 150 were known on a loaded machine).
		knownStored := func() int {
			if dl.v5() {
				return int(acked.Load())
			}
			cmids := map[string]bool{}
			for _, d := range senders {
				for _, ev := range d.events(0) {
					if ev.Err == nil && ev.Kind == protocol.KindMessage {
						cmids[ev.Msg.Cmid] = true
					}
				}
			}
			return len(cmids)
		}
		eventually(t, waitTimeout, "150 sends known as stored", func() bool { return knownStored() >= 150 })
		stopping.Store(true)
		t0 := time.Now()
		n.stop(t)
		t.Logf("shutdown took %v", time.Since(t0))
		allDone := make(chan struct{})
		go func() { wg.Wait(); close(allDone) }()
		select {
		case <-allDone:
		case <-time.After(waitTimeout):
			t.Fatal("publishers still running after the shutdown: connections not closed?")
		}
		t.Logf("publishers ended %v after the shutdown began", time.Since(t0))
		for _, d := range senders {
			select {
			case <-d.c.done():
			case <-time.After(waitTimeout):
				t.Fatalf("%s still connected after the shutdown", d.id)
			}
			if dl.v5() {
				d.expectServerDisconnect(0x8B) // server shutting down
			}
		}

		t.Logf("devices disconnected %v after the shutdown began", time.Since(t0))
		// What the devices were told was stored.
		type stored struct{ id, seq int64 }
		told := map[string]stored{}
		counts := map[string]int{}
		for _, a := range attempts {
			switch {
			case a.r.Err != nil:
				counts["no PUBACK"]++
			case !dl.v5():
				counts["PUBACK (3.1.1)"]++
			case a.r.Code == 0:
				s := a.r.sent(t)
				told[a.cmid] = stored{s.ID, s.Seq}
				counts["stored"]++
			case a.r.Code == 0x80 && a.r.Props["code"] == protocol.CodeUnavailable && a.r.Reason == protocol.CodeUnavailable:
				counts["unavailable"]++
				if a.stopping {
					counts["unavailable after shutdown began"]++
				}
			default:
				t.Errorf("%s: PUBACK %#x %q %v: neither success nor unavailable", a.cmid, a.r.Code, a.r.Reason, a.r.Props)
			}
		}
		if !dl.v5() {
			for _, d := range senders {
				for _, ev := range d.events(0) {
					switch {
					case ev.Err != nil:
						t.Errorf("%s: %v", d.id, ev)
					case ev.Kind == protocol.KindMessage:
						told[ev.Msg.Cmid] = stored{ev.Msg.ID, ev.ConvSeq}
					case ev.Kind == protocol.KindError && ev.Error.Code == protocol.CodeUnavailable:
						counts["unavailable"]++
					default:
						t.Errorf("%s: unexpected event %v", d.id, ev)
					}
				}
			}
			counts["stored (seen as events)"] = len(told)
		}
		t.Logf("outcomes: %v", counts)
		if len(told) < 150 {
			t.Fatalf("only %d sends known as stored", len(told))
		}

		// Restart on the same database: everything acknowledged is there.
		n2 := startNodeOn(t, n.DB)
		checker := dl.dial(t, n2, "alice")
		inHistory := map[string]protocol.Message{}
		for _, m := range checker.historyAll("d:alice:bob") {
			inHistory[m.Cmid] = m
		}
		for cmid, s := range told {
			m, ok := inHistory[cmid]
			if !ok {
				t.Fatalf("%s was acknowledged as stored (id %d, seq %d) but is not in history", cmid, s.id, s.seq)
			}
			if m.ID != s.id || m.Seq != s.seq {
				t.Fatalf("%s acknowledged as id %d seq %d, stored as id %d seq %d", cmid, s.id, s.seq, m.ID, m.Seq)
			}
		}
		t.Logf("%d messages in history, %d acknowledged", len(inHistory), len(told))
	})
}

// TestDrainDeliversWhatItCommitted: events committed just before a drain
// reach a connected read-only device before the node disconnects it
// [IM-1.1-4], also when most of them wait for the device's Receive Maximum,
// and its DISCONNECT 0x8B comes after them. A node used to close the
// connection with deliveries still queued (89–187 of 200 arrived).
func TestDrainDeliversWhatItCommitted(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		var opts []dialOpt
		if dl.v5() {
			opts = append(opts, withReceiveMaximum(4))
		}
		bob := dl.dial(t, n, "bob", opts...)
		alice := dl.dial(t, n, "alice", noSubscribe())
		const senders, each = 8, 25
		var wg gosync.WaitGroup
		for s := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					m := text(fmt.Sprintf("drain-%d-%d", s, i), "bob", "committed before the drain")
					payload, _ := protocol.Encode(alice.in, &m)
					if r := alice.c.publish(protocol.SendTopic("alice"), payload, pubOpts{qos: 1}); r.Err != nil || r.Code != 0 {
						t.Errorf("send %s: %v %#x", m.Cmid, r.Err, r.Code)
						return
					}
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		n.stop(t) // the drain
		seen := map[string]bool{}
		eventually(t, waitTimeout, "every committed message at bob", func() bool {
			for _, ev := range bob.events(0) {
				if ev.Kind == protocol.KindMessage && ev.Msg != nil {
					seen[ev.Msg.Cmid] = true
				}
			}
			return len(seen) == senders*each
		})
		if dl.v5() {
			bob.expectServerDisconnect(0x8B)
		}
	})
}
