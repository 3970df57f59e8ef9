package e2e

import (
	"fmt"
	"strconv"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqim/mqim/internal/ratelimit"
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/server"
)

// The limits' tests flood from addresses of their own in 127.0.0.0/8, so
// that what they use up is not what the other devices of the test, on
// 127.0.0.1, need.

// from dials n's MQTT listener from local, an address of 127.0.0.0/8.
func from(n *testNode, local string) dialOpt {
	return withConn(proxyDial(local, nil, n.MQTTAddr()))
}

// withLimits sets the node's limits (the zero fields: no limit).
func withLimits(l server.Limits) func(*server.Config) {
	return func(c *server.Config) { c.Limits = &l }
}

// TestSendFlood: one user floods sends, far over its rate limit, from
// many publishes in flight. What is over the limit is refused rate_limited
// (MQTT 5: PUBACK 0x97 with code and retry_after_ms; 3.1.1: an error
// event) and not stored; what was accepted is within burst + rate × time;
// the retry of a stored send still succeeds; another user's sends are
// answered all the while [IM-1.3-6].
func TestSendFlood(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		const burst, rate = 40, 2.0
		const total, inFlight = 1500, 64
		n := startNode(t, be, withLimits(server.Limits{UserSends: ratelimit.Limit{Rate: rate, Burst: burst}}))
		bob := dl.dial(t, n, "bob")
		alice := dl.dial(t, n, "alice")
		mallory := dl.dial(t, n, "mallory", from(n, "127.0.0.2"))

		type outcome struct {
			cmid string
			r    pubResult
		}
		var (
			mu       gosync.Mutex
			outcomes []outcome
			next     atomic.Int64
			wg       gosync.WaitGroup
			flooding atomic.Bool
		)
		payload := func(cmid string) []byte {
			return mallory.encode(text(cmid, "bob", "spam"))
		}
		flooding.Store(true)
		started := time.Now()
		for range inFlight {
			wg.Go(func() {
				for i := next.Add(1); i <= total; i = next.Add(1) {
					cmid := "m" + strconv.FormatInt(i, 10)
					r := mallory.c.publish(protocol.SendTopic("mallory"), payload(cmid), pubOpts{qos: 1})
					mu.Lock()
					outcomes = append(outcomes, outcome{cmid, r})
					mu.Unlock()
				}
			})
		}
		go func() { wg.Wait(); flooding.Store(false) }()

		// Alice is not held up by the flood: her sends are stored and
		// answered while it goes on.
		var slowest time.Duration
		sentDuring := 0
		for i := 0; i < 20 && (i < 3 || flooding.Load()); i++ {
			t0 := time.Now()
			alice.sendOK(text(fmt.Sprintf("a%d", i), "bob", "hello"))
			slowest = max(slowest, time.Since(t0))
			sentDuring++
		}
		wg.Wait()
		elapsed := time.Since(started)
		t.Logf("%d flood sends in %v; alice sent %d meanwhile, slowest answered in %v", total, elapsed, sentDuring, slowest)

		// What each flood send came to.
		accepted := map[string]bool{}
		limited := 0
		if dl.v5() {
			for _, o := range outcomes {
				switch {
				case o.r.Err != nil:
					t.Fatalf("%s: no PUBACK: %v", o.cmid, o.r.Err)
				case o.r.Code == 0:
					accepted[o.cmid] = true
				case o.r.Code == 0x97 && o.r.Reason == protocol.CodeRateLimited && o.r.Props["code"] == protocol.CodeRateLimited:
					if ms, err := strconv.Atoi(o.r.Props["retry_after_ms"]); err != nil || ms <= 0 {
						t.Fatalf("%s: retry_after_ms %q", o.cmid, o.r.Props["retry_after_ms"])
					}
					limited++
				default:
					t.Fatalf("%s: PUBACK %#x %q %v", o.cmid, o.r.Code, o.r.Reason, o.r.Props)
				}
			}
		} else {
			// 3.1.1: the outcome of each is an event on mallory's inbox.
			eventually(t, waitTimeout, "an outcome of every flood send", func() bool {
				clear(accepted)
				limited = 0
				for _, ev := range mallory.events(0) {
					switch {
					case ev.Kind == protocol.KindMessage && ev.Msg.From == "mallory":
						accepted[ev.Msg.Cmid] = true
					case ev.Kind == protocol.KindError && ev.Error.Code == protocol.CodeRateLimited && ev.Error.RetryAfterMs > 0:
						limited++
					case ev.Kind == protocol.KindError:
						t.Fatalf("flood send %s: %v", ev.Cmid, ev.Error)
					}
				}
				return len(accepted)+limited == total
			})
		}
		most := burst + int(rate*elapsed.Seconds()) + 1
		if len(accepted) > most || len(accepted) < burst || limited == 0 {
			t.Fatalf("%d accepted, %d limited; want between %d and %d accepted", len(accepted), limited, burst, most)
		}
		// Stored is exactly what was accepted.
		stored := bob.historyAll(protocol.DirectConv("bob", "mallory"))
		if len(stored) != len(accepted) {
			t.Fatalf("%d flood messages stored, %d accepted", len(stored), len(accepted))
		}
		for _, m := range stored {
			if !accepted[m.Cmid] {
				t.Fatalf("%s stored although refused", m.Cmid)
			}
		}
		if got := metric(t, n, "mqim_rate_limited_total", `limit="user_send"`); got < float64(limited) {
			t.Errorf("mqim_rate_limited_total{limit=\"user_send\"} = %v, want ≥ %d", got, limited)
		}
		if !dl.v5() {
			return
		}
		// Right after a refusal (the next token is 1/rate away), the retry
		// of a stored send gets its message.
		for i := 0; mallory.send(text(fmt.Sprintf("fresh%d", i), "bob", "spam")).Code == 0; i++ {
			if i == burst {
				t.Fatal("the bucket refilled")
			}
		}
		var first string
		for cmid := range accepted {
			first = cmid
			break
		}
		r := mallory.c.publish(protocol.SendTopic("mallory"), payload(first), pubOpts{qos: 1})
		if r.Err != nil || r.Code != 0 {
			t.Fatalf("retry of stored %s: %#x %v %v", first, r.Code, r.Props, r.Err)
		}
	})
}

// TestConnectRateLimit: CONNECTs from one address over its rate are
// refused with 0x9F (3.1.1: 3); other addresses connect [IM-3.1-9].
func TestConnectRateLimit(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		const burst = 3
		n := startNode(t, be, withLimits(server.Limits{AddrConnects: ratelimit.Limit{Rate: 0.001, Burst: burst}}))
		for range burst {
			dl.dial(t, n, "carol", from(n, "127.0.0.3"), noSubscribe()).disconnect()
		}
		dl.expectRefused(t, n, "carol", 0x9F, 3, from(n, "127.0.0.3"))
		dl.expectRefused(t, n, "dave", 0x9F, 3, from(n, "127.0.0.3")) // the address, whoever it is
		dl.dial(t, n, "carol", from(n, "127.0.0.4"))
		dl.dial(t, n, "carol")
		if got := metric(t, n, "mqim_connect_limited_total", `limit="addr_rate"`); got != 2 {
			t.Errorf("mqim_connect_limited_total{limit=\"addr_rate\"} = %v, want 2", got)
		}
	})
}

// TestAuthFailureDelay: after the free failures, the answer (0x86 / 4) to
// a failed authentication is held, longer with each failure, for the
// address and for the user; meanwhile a valid CONNECT from the same
// address is answered at once, and the node drains without waiting for
// the held ones [IM-3.1-9].
func TestAuthFailureDelay(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be, withLimits(server.Limits{AuthFreeFailures: 2, AuthMaxDelay: time.Minute}))
		bad := withToken("not-a-jwt")
		badCode := byte(0x86)
		if !dl.v5() {
			badCode = 4
		}
		fail := func(user, local string, atLeast time.Duration) {
			t.Helper()
			t0 := time.Now()
			dl.expectRefused(t, n, user, 0x86, 4, bad, from(n, local))
			if d := time.Since(t0); d < atLeast {
				t.Fatalf("failure of %s from %s answered after %v, want ≥ %v", user, local, d, atLeast)
			}
		}
		// By address: two free, then 100 ms, 200 ms.
		fail("u1", "127.0.0.5", 0)
		fail("u2", "127.0.0.5", 0)
		fail("u3", "127.0.0.5", 100*time.Millisecond)
		fail("u4", "127.0.0.5", 200*time.Millisecond)
		// By user, from new addresses: erin's third failure waits.
		fail("erin", "127.0.0.6", 0)
		fail("erin", "127.0.0.7", 0)
		fail("erin", "127.0.0.8", 100*time.Millisecond)

		// From another address, failures at once: held 0, 0, 100 ms, …,
		// 3.2 s. While the last is held, a valid login from that address is
		// answered.
		const burst = 8
		held := make(chan byte, 2*burst)
		attempt := func(user string) {
			go func() {
				_, code, _ := dl.tryDial(t, n, user, bad, from(n, "127.0.0.9"))
				held <- code
			}()
		}
		failures := func(want float64) func() bool {
			return func() bool { return metric(t, n, "mqim_auth_failure_delay_seconds_count", "") == want }
		}
		for i := range burst {
			attempt(fmt.Sprintf("v%d", i))
		}
		eventually(t, waitTimeout, "the failures counted", failures(7+burst))
		dl.dial(t, n, "frank", from(n, "127.0.0.9"))
		if got := len(held); got == burst {
			t.Fatalf("every failure answered before the valid login")
		}
		for range burst {
			if code := <-held; code != badCode {
				t.Fatalf("held failure: code %#x, want %#x", code, badCode)
			}
		}
		// Failures held for up to a minute: the drain does not wait for
		// them (n.stop fails the test after waitTimeout).
		for i := range burst {
			attempt(fmt.Sprintf("w%d", i))
		}
		eventually(t, waitTimeout, "the failures counted", failures(7+2*burst))
		t0 := time.Now()
		n.stop(t)
		for range burst {
			<-held
		}
		t.Logf("drained and answered every held failure %v after the drain began", time.Since(t0))
	})
}

// TestUserConnectionLimit: a user with the most connections allowed is
// refused another (0x97; 3.1.1: 3); a takeover of one of its client ids is
// not another connection; a disconnect makes room [IM-3.1-9].
func TestUserConnectionLimit(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be, withLimits(server.Limits{MaxUserConnections: 2}))
		phone := dl.dial(t, n, "alice", withClientID("alice.phone"))
		laptop := dl.dial(t, n, "alice", withClientID("alice.laptop"))
		dl.expectRefused(t, n, "alice", 0x97, 3, withClientID("alice.tablet"))
		dl.dial(t, n, "bob") // another user
		dl.dial(t, n, "alice", withClientID("alice.phone"))
		select {
		case <-phone.c.done():
		case <-time.After(waitTimeout):
			t.Fatal("the taken-over phone is still connected")
		}
		dl.expectRefused(t, n, "alice", 0x97, 3, withClientID("alice.tablet"))
		if got := metric(t, n, "mqim_connect_limited_total", `limit="user_connections"`); got != 2 {
			t.Errorf("mqim_connect_limited_total{limit=\"user_connections\"} = %v, want 2", got)
		}
		laptop.disconnect()
		eventually(t, waitTimeout, "room for the tablet", func() bool {
			d, _, err := dl.tryDial(t, n, "alice", withClientID("alice.tablet"))
			return err == nil && d != nil
		})
	})
}

// TestUserConnectionLimitAcrossNodes: the connections a user has on
// another node count, from the routing table [IM-3.1-9].
func TestUserConnectionLimitAcrossNodes(t *testing.T) {
	forEachVersion(t, func(t *testing.T, dl dialer) {
		n1, n2 := twoNodes(t, withLimits(server.Limits{MaxUserConnections: 2}))
		dl.dial(t, n1, "alice", withClientID("alice.phone"))
		dl.dial(t, n2, "alice", withClientID("alice.laptop"))
		eventually(t, waitTimeout, "both devices in n1's routing table", func() bool {
			devs, _ := admin(t, n1, "GET", "/v1/users/alice/presence", nil)["devices"].([]any)
			return len(devs) == 2
		})
		dl.expectRefused(t, n1, "alice", 0x97, 3, withClientID("alice.tablet"))
		// Moving a device to another node is not another connection.
		dl.dial(t, n1, "alice", withClientID("alice.laptop"))
	})
}
