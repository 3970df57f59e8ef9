package e2e

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	gosync "sync"
	"syscall"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/server"
)

// TestStuckDeviceDelaysNoOne [IM-5.2-8]: one device of bob connects,
// subscribes to his inbox and stops reading (a raw TCP client with a tiny
// receive buffer). Bob's other device and other users' devices still get
// every push within a small bound; the stuck device's full queue drops its
// deliveries (counted) and, once its socket has taken nothing for the write
// timeout, it is disconnected. Before, a stuck device held its fan-out
// shard: mochi allocated the next packet id under the lock its blocked
// socket write held, so every user on that shard waited for the keepalive
// deadline (bob's other device got 1,500 of 5,000 pushes on time, some
// 27 s late).
func TestStuckDeviceDelaysNoOne(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		const (
			toBob, toOthers = 20, 2 // per batch: bob's events fill the stuck socket
			maxBatches      = 300
			bound           = 5 * time.Second // push latency allowed under load
			writeTimeout    = 6 * bound       // longer than the bound: waiting for it fails the test
		)
		reg := prometheus.NewRegistry()
		n := startNode(t, be, func(c *server.Config) { c.Registry, c.WriteTimeout = reg, writeTimeout })
		// Other users: events of one user go through one fan-out shard;
		// with several, one likely shares bob's.
		others := []string{"carol", "dave", "erin", "frank", "grace", "heidi"}
		stuck := dialStuck(t, n, dl, "bob")
		bob := dl.dial(t, n, "bob")
		var devs []*device
		for _, u := range others {
			devs = append(devs, dl.dial(t, n, u))
		}
		alice := dl.dial(t, n, "alice", noSubscribe())

		// Bob's events are large, so that they fill the stuck device's
		// socket buffers (the server's grows to 4 MiB) and then its queue.
		big, small := strings.Repeat("x", 8000), "hello"
		send := func(to, cmid, body string, wg *gosync.WaitGroup) {
			defer wg.Done()
			if r := alice.send(text(cmid, to, body)); r.Err != nil || r.Code != 0 {
				t.Errorf("send %s: %#x %v", cmid, r.Code, r.Err)
			}
		}
		// Batches until the stuck device's queue overflowed, and three more
		// while it is stuck and full.
		var worst time.Duration
		after := 0
		for b := 0; after < 3; b++ {
			if b == maxBatches {
				t.Fatalf("no delivery to the stuck device dropped after %d batches", b)
			}
			var wg gosync.WaitGroup
			for i := range toBob {
				wg.Add(1)
				go send("bob", fmt.Sprintf("bob-%d-%d", b, i), big, &wg)
			}
			for i := range toOthers {
				for _, to := range others {
					wg.Add(1)
					go send(to, fmt.Sprintf("%s-%d-%d", to, b, i), small, &wg)
				}
			}
			wg.Wait()
			acked := time.Now()
			if want := (b + 1) * toBob; !waitUntil(bound, func() bool { return contiguous(bob.events(0)) >= want }) {
				t.Fatalf("batch %d: bob's other device has %d of %d events %v after the PUBACKs", b, contiguous(bob.events(0)), want, bound)
			}
			for i, d := range devs {
				if want := (b + 1) * toOthers; !waitUntil(bound, func() bool { return contiguous(d.events(0)) >= want }) {
					t.Fatalf("batch %d: %s has %d of %d events %v after the PUBACKs", b, others[i], contiguous(d.events(0)), want, bound)
				}
			}
			worst = max(worst, time.Since(acked))
			if counter(t, reg, "mqim_delivery_stuck_disconnects_total") > 0 {
				t.Fatalf("batch %d: the stuck device was disconnected before its queue overflowed (a machine too slow for the write timeout?)", b)
			}
			if counter(t, reg, "mqim_delivery_dropped_total") > 0 {
				after++
			}
		}
		t.Logf("slowest batch reached every live device %v after its PUBACKs; dropped %v", worst, counter(t, reg, "mqim_delivery_dropped_total"))

		eventually(t, writeTimeout+waitTimeout, "the stuck device disconnected (metric)", func() bool {
			return counter(t, reg, "mqim_delivery_stuck_disconnects_total") == 1
		})
		// The server closed the socket: reading what it buffered ends in
		// EOF or a reset, not a deadline.
		_ = stuck.SetReadDeadline(time.Now().Add(waitTimeout))
		buf := make([]byte, 64<<10)
		for {
			if _, err := stuck.Read(buf); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatalf("stuck device's connection still open: %v", err)
				}
				break
			}
		}
	})
}

// dialStuck connects a device of user with a tiny socket receive buffer,
// subscribes it to the user's inbox, and never reads from it again.
func dialStuck(t *testing.T, n *testNode, dl dialer, user string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024)
		}); err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", n.MQTTAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawClient{t: t, conn: conn, version: dl.version}
	r := bufio.NewReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(waitTimeout))
	c.write(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Connect},
		Connect: packets.ConnectParams{
			ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 60, ClientIdentifier: user + ".stuck",
			UsernameFlag: true, Username: []byte(user), PasswordFlag: true, Password: []byte(token(t, user)),
		},
	})
	if pk, err := readPacket(r, dl.version); err != nil || pk.FixedHeader.Type != packets.Connack || pk.ReasonCode != 0 {
		t.Fatalf("stuck device: CONNACK %v %#x: %v", pk.FixedHeader.Type, pk.ReasonCode, err)
	}
	c.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe}, PacketID: 1,
		Filters: packets.Subscriptions{{Filter: protocol.InboxTopic(user), Qos: 1}}})
	if pk, err := readPacket(r, dl.version); err != nil || pk.FixedHeader.Type != packets.Suback {
		t.Fatalf("stuck device: SUBACK %v: %v", pk.FixedHeader.Type, err)
	}
	_ = conn.SetReadDeadline(time.Time{})
	return conn
}

// counter sums the samples of the counter family name in reg.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue()
			}
		}
	}
	return v
}
