// Package cluster tests several mqimd processes (the real binary) joined by
// a real nats-server and sharing a PostgreSQL server of the test's own, with
// MQTT 5 devices on different nodes, while nodes, NATS and PostgreSQL are
// killed and restarted. Every wait is for a condition.
package cluster

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mqim/mqim/internal/testpg"
)

var soak = flag.Duration("soak", 0, "repeat the fault cycle for this long (0: once)")

const waitTimeout = 60 * time.Second

// waitFor polls cond until it holds or the timeout ends.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type cluster struct {
	t       *testing.T
	pg      *testpg.Server
	nats    *proc
	nodes   []*node
	devices []*device
	senders []*sender
}

func (c *cluster) addrs() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.mqtt)
	}
	return out
}

func (c *cluster) acked() int {
	n := 0
	for _, s := range c.senders {
		s.mu.Lock()
		n += len(s.acks)
		s.mu.Unlock()
	}
	return n
}

// progress waits until n more messages are acknowledged.
func (c *cluster) progress(what string, n int) {
	c.t.Helper()
	target := c.acked() + n
	waitFor(c.t, what, func() bool { return c.acked() >= target })
}

// startCluster starts PostgreSQL, nats-server and the nodes, each with the
// extra mqimd flags.
func startCluster(t *testing.T, nodes int, extra ...string) *cluster {
	mqimdBin, natsBin := build(t)
	c := &cluster{t: t, pg: testpg.StartServer(t)}
	var natsURL string
	c.nats, natsURL = natsProc(t, natsBin)
	c.nats.start()
	for i := range nodes {
		n := nodeProc(t, mqimdBin, i+1, c.pg.URL(), append([]string{"--nats", natsURL}, extra...)...)
		n.start()
		c.nodes = append(c.nodes, n)
	}
	return c
}

// startTraffic connects one device per user (plus extra) and starts a
// sender per user that sends to the others every `every`.
func (c *cluster) startTraffic(ctx context.Context, users []string, extra []*device, every time.Duration) (stop func()) {
	t := c.t
	for i, u := range users {
		c.devices = append(c.devices, newDevice(u, u+".d1", i, c.addrs))
	}
	c.devices = append(c.devices, extra...)
	var wg sync.WaitGroup
	dctx, stopDevices := context.WithCancel(ctx)
	for _, d := range c.devices {
		wg.Go(func() { d.run(dctx) })
	}
	t.Cleanup(func() { stopDevices(); wg.Wait() })
	waitFor(t, "devices connected", func() bool {
		for _, d := range c.devices {
			d.mu.Lock()
			ok := d.client != nil
			d.mu.Unlock()
			if !ok {
				return false
			}
		}
		return true
	})
	sctx, stopSending := context.WithCancel(ctx)
	var swg sync.WaitGroup
	for i := range users {
		peers := slices.Delete(slices.Clone(users), i, i+1)
		s := &sender{d: c.devices[i], peers: peers, every: every}
		c.senders = append(c.senders, s)
		swg.Go(func() { s.run(sctx) })
	}
	return func() { stopSending(); swg.Wait() }
}

// TestEmbeddedSurvivesKill runs one mqimd with its defaults (embedded store
// and NATS in its data directory), kills it with SIGKILL mid-stream and
// restarts it: nothing acknowledged is lost.
func TestEmbeddedSurvivesKill(t *testing.T) {
	mqimdBin, _ := build(t)
	n := nodeProc(t, mqimdBin, 1, "")
	n.start()
	c := &cluster{t: t, nodes: []*node{n}}
	stop := c.startTraffic(context.Background(), []string{"a", "b", "c"}, nil, 5*time.Millisecond)
	for range 2 {
		c.progress("traffic", 200)
		n.stop(syscall.SIGKILL)
		n.start()
	}
	c.progress("traffic after the restarts", 200)
	stop()
	c.verify()
}

func TestClusterFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL, NATS and three mqimd processes")
	}
	c := startCluster(t, 3)

	// A second device of u0 on another node: multi-device across nodes.
	stop := c.startTraffic(context.Background(), []string{"u0", "u1", "u2", "u3", "u4", "u5"},
		[]*device{newDevice("u0", "u0.d2", 1, c.addrs)}, 40*time.Millisecond)
	c.progress("traffic", 50)

	end := time.Now().Add(*soak)
	for cycle := 0; cycle == 0 || time.Now().Before(end); cycle++ {
		c.faultCycle(cycle)
	}

	stop()
	c.verify()
}

// faultCycle kills a node, restarts NATS, restarts PostgreSQL and drains a
// node, with traffic flowing throughout.
func (c *cluster) faultCycle(cycle int) {
	t := c.t
	victim := c.nodes[(1+cycle)%len(c.nodes)]

	// 1. A node dies. Its devices move to the others and deliver again.
	var moved []*device
	for _, d := range c.devices {
		d.mu.Lock()
		if d.addr == victim.mqtt {
			moved = append(moved, d)
		}
		d.mu.Unlock()
	}
	killed := time.Now()
	victim.stop(syscall.SIGKILL)
	waitFor(t, "devices of the killed node delivering on another", func() bool {
		for _, d := range moved {
			d.mu.Lock()
			ok := d.addr != victim.mqtt && d.lastApply.After(killed)
			d.mu.Unlock()
			if !ok {
				return false
			}
		}
		return true
	})
	t.Logf("cycle %d: %d devices of killed node %d delivering again after %v", cycle, len(moved), victim.id, time.Since(killed).Round(time.Millisecond))
	// The routing table forgets the dead node's entries by their TTL and
	// shows the devices where they are now.
	other := c.nodes[(2+cycle)%len(c.nodes)]
	waitFor(t, "routing table without the killed node", func() bool {
		for _, d := range c.devices {
			p := other.presence(t, d.user)
			if p == nil || p[d.id] == "" || p[d.id] == victim.name() {
				return false
			}
		}
		return true
	})
	c.progress("traffic without the killed node", 100)
	victim.start()
	c.rehome()

	// 2. NATS restarts. Sends keep committing meanwhile, and every node
	// receives other nodes' events again once it is back.
	c.nats.stop(syscall.SIGTERM)
	c.progress("sends committing while NATS is down", 100)
	received := make([]float64, len(c.nodes))
	for i, n := range c.nodes {
		received[i] = n.metric("mqim_bus_received_total")
	}
	c.nats.start()
	waitFor(t, "every node receiving cluster events after NATS restarted", func() bool {
		for i, n := range c.nodes {
			if n.metric("mqim_bus_received_total") <= received[i] {
				return false
			}
		}
		return true
	})
	c.progress("traffic after NATS is back", 100)

	// 3. PostgreSQL restarts. Sends fail with "unavailable" meanwhile.
	refusedBefore := c.refused("unavailable")
	c.pg.Stop(true)
	waitFor(t, "a send refused as unavailable", func() bool { return c.refused("unavailable") > refusedBefore })
	c.pg.Start()
	c.progress("traffic after PostgreSQL is back", 100)

	// 4. A node drains (SIGTERM) and comes back.
	drained := c.nodes[(2+cycle)%len(c.nodes)]
	drained.stop(syscall.SIGTERM)
	c.progress("traffic while a node is away", 100)
	drained.start()
	c.rehome()
	c.progress("traffic after the drained node is back", 100)
}

// rehome sends devices back to their home nodes, as a load balancer spreads
// reconnects, so that every node keeps devices and traffic crosses nodes.
func (c *cluster) rehome() {
	for _, d := range c.devices {
		d.rehome()
	}
	waitFor(c.t, "devices back on their home nodes", func() bool {
		for _, d := range c.devices {
			d.mu.Lock()
			ok := d.client != nil && d.addr == c.nodes[d.home%len(c.nodes)].mqtt
			d.mu.Unlock()
			if !ok {
				return false
			}
		}
		return true
	})
}

func (c *cluster) refused(code string) int {
	n := 0
	for _, s := range c.senders {
		s.mu.Lock()
		n += s.refused[code]
		s.mu.Unlock()
	}
	return n
}

// verify checks that every device ends with every acknowledged message of
// its user exactly once, in conversation order, with no gap.
func (c *cluster) verify() {
	t := c.t
	for _, d := range c.devices {
		waitFor(t, d.id+" caught up", func() bool {
			d.mu.Lock()
			cl := d.client
			d.mu.Unlock()
			return cl != nil && d.syncAll(context.Background(), cl) == nil
		})
	}

	var all []acked
	refused := map[string]int{}
	for _, s := range c.senders {
		s.mu.Lock()
		all = append(all, s.acks...)
		for k, v := range s.refused {
			refused[k] += v
		}
		if len(s.failed) > 0 {
			t.Errorf("%s: messages never acknowledged: %v", s.d.id, s.failed)
		}
		s.mu.Unlock()
	}
	byID := map[int64]acked{}
	for _, a := range all {
		if prev, ok := byID[a.id]; ok {
			t.Errorf("message id %d acknowledged for two sends: %+v and %+v", a.id, prev, a)
		}
		byID[a.id] = a
	}

	var live, dups, applied int64
	for _, d := range c.devices {
		d.mu.Lock()
		for _, v := range d.violations {
			t.Errorf("%s: %s", d.id, v)
		}
		seen := map[int64]int{}
		for i, ev := range d.applied {
			if ev.Seq != int64(i+1) {
				t.Errorf("%s: event %d has inbox seq %d", d.id, i, ev.Seq)
			}
			if ev.Kind == "message" && ev.Msg != nil {
				seen[ev.Msg.ID]++
				if a, ok := byID[ev.Msg.ID]; ok && (a.conv != ev.Conv || a.seq != ev.ConvSeq || a.cmid != ev.Msg.Cmid) {
					t.Errorf("%s: message %d is %s/%d cmid %s, acknowledged as %s/%d cmid %s", d.id, ev.Msg.ID, ev.Conv, ev.ConvSeq, ev.Msg.Cmid, a.conv, a.seq, a.cmid)
				}
			}
		}
		want := 0
		for _, a := range all {
			if a.from != d.user && a.to != d.user {
				continue
			}
			want++
			if seen[a.id] != 1 {
				t.Errorf("%s: acknowledged message %d (%s→%s %s) applied %d times", d.id, a.id, a.from, a.to, a.cmid, seen[a.id])
			}
		}
		if len(seen) != want {
			t.Errorf("%s: %d messages applied, %d acknowledged for the user", d.id, len(seen), want)
		}
		live += d.live.Load()
		dups += d.dups.Load()
		applied += int64(len(d.applied))
		d.mu.Unlock()
	}
	keys := make([]string, 0, len(refused))
	for k := range refused {
		keys = append(keys, fmt.Sprintf("%s=%d", k, refused[k]))
	}
	sort.Strings(keys)
	t.Logf("%d messages acknowledged, %d events applied by %d devices (%d pushed, %d duplicates dropped), refusals %v",
		len(all), applied, len(c.devices), live, dups, keys)
}

// TestEmbeddedNATSCluster runs three mqimd nodes whose embedded NATS
// servers form the NATS cluster themselves (--nats-cluster-addr,
// --nats-routes): no NATS install. Messages cross between nodes live.
func TestEmbeddedNATSCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and three mqimd processes")
	}
	mqimdBin, _ := build(t)
	c := &cluster{t: t, pg: testpg.StartServer(t)}
	routes := []string{addr(freePort(t)), addr(freePort(t)), addr(freePort(t))}
	for i := range routes {
		var others []string
		for j, r := range routes {
			if j != i {
				others = append(others, "nats-route://"+r)
			}
		}
		n := nodeProc(t, mqimdBin, i+1, c.pg.URL(), "--nats-cluster-addr", routes[i], "--nats-routes", strings.Join(others, ","))
		c.nodes = append(c.nodes, n)
	}
	// Start all before waiting: JetStream needs two of three servers up.
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Go(n.start)
	}
	wg.Wait()
	stop := c.startTraffic(context.Background(), []string{"e0", "e1", "e2"}, nil, 20*time.Millisecond)
	waitFor(t, "every node receiving other nodes' events", func() bool {
		for _, n := range c.nodes {
			if n.metric("mqim_bus_received_total") <= 0 {
				return false
			}
		}
		return true
	})
	c.progress("traffic", 100)
	stop()
	c.verify()
}
