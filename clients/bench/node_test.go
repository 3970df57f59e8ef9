package bench_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/mqim/mqim/clients/bench"
	"github.com/mqim/mqim/clients/bench/bare"
	"github.com/mqim/mqim/internal/testnode"
	"github.com/mqim/mqim/server"
)

var secret = []byte("bench-test-secret")

// startNode runs an mqim node in this process on loopback ports, on a new
// database of backend be: a SQLite file, or a schema of MQIM_TEST_DATABASE
// (skipped without it; see scripts/test). The tests run on both stores.
func startNode(tb testing.TB, be testnode.Backend, opts ...func(*server.Config)) *server.Node {
	tb.Helper()
	return testnode.Start(tb, testnode.NewDB(tb, be), secret, slog.New(slog.NewTextHandler(io.Discard, nil)), opts...).Node
}

// TestRun1to1Node checks the generator end to end against mqim: sends are
// acknowledged after commit and delivered once to the receiver's inbox.
func TestRun1to1Node(t *testing.T) {
	testnode.ForEachBackend(t, testRun1to1Node)
}

func testRun1to1Node(t *testing.T, be testnode.Backend) {
	n := startNode(t, be)
	s, err := bench.Run1to1(context.Background(), bench.MQIMD(n.MQTTAddr(), secret),
		bench.Config{Senders: 3, Inflight: 8, Messages: 600})
	if err != nil {
		t.Fatal(err)
	}
	if s.Acked != 600 || s.Delivered != 600 || s.Errors != 0 || s.Lost != 0 || s.Duplicates != 0 {
		t.Errorf("summary %+v", s)
	}
	// A wrong secret is refused at CONNECT.
	if _, err := bench.Run1to1(context.Background(), bench.MQIMD(n.MQTTAddr(), []byte("wrong")),
		bench.Config{Senders: 1, Messages: 1}); err == nil {
		t.Error("connected with a wrong secret")
	}
}

// The benchmarks run b.N messages through the 1:1 scenario and report the
// generator's own figures; ns/op includes connecting and draining. With
// -cpuprofile they profile the server and the clients together (one
// process): look at the mqim, mochi and pgx frames.
//
//	scripts/test ./clients/bench -run '^$' -bench Node -benchtime 200000x -cpuprofile /tmp/cpu.out
var loads = []struct {
	name string
	cfg  bench.Config
}{
	{"senders=1/inflight=1", bench.Config{Senders: 1, Inflight: 1}},
	{"senders=10/inflight=1", bench.Config{Senders: 10, Inflight: 1}},
	{"senders=100/inflight=1", bench.Config{Senders: 100, Inflight: 1}},
	{"senders=100/inflight=10", bench.Config{Senders: 100, Inflight: 10}},
	{"senders=1/inflight=100", bench.Config{Senders: 1, Inflight: 100}},
}

// BenchmarkNode1to1 runs each load on a node on SQLite and on one on
// PostgreSQL: BenchmarkNode1to1/sqlite/…, BenchmarkNode1to1/postgres/….
func BenchmarkNode1to1(b *testing.B) {
	for _, be := range testnode.Backends {
		b.Run(string(be), func(b *testing.B) {
			addr := startNode(b, be).MQTTAddr()
			for _, l := range loads {
				b.Run(l.name, func(b *testing.B) { run(b, bench.MQIMD(addr, secret), l.cfg) })
			}
		})
	}
}

func BenchmarkBare1to1(b *testing.B) {
	br, err := bare.Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	for _, l := range loads {
		b.Run(l.name, func(b *testing.B) { run(b, br.Target(), l.cfg) })
	}
}

func run(b *testing.B, t bench.Target, cfg bench.Config) {
	cfg.Messages = max(b.N, cfg.Senders*cfg.Inflight)
	s, err := bench.Run1to1(context.Background(), t, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if s.Errors > 0 || s.Lost > 0 {
		b.Errorf("errors %d, lost %d: %s", s.Errors, s.Lost, s.FirstError)
	}
	b.ReportMetric(s.MsgsPerSec, "msgs/s")
	b.ReportMetric(s.P50ms, "p50-ms")
	b.ReportMetric(s.P99ms, "p99-ms")
}

// TestRunSyncNode: events sent to an offline device are all pulled back
// with the sync RPC, contiguous and once each.
func TestRunSyncNode(t *testing.T) {
	testnode.ForEachBackend(t, testRunSyncNode)
}

func testRunSyncNode(t *testing.T, be testnode.Backend) {
	n := startNode(t, be)
	s, err := bench.RunSync(context.Background(), bench.MQIMD(n.MQTTAddr(), secret),
		bench.Config{Senders: 2, Inflight: 8, Messages: 1500})
	if err != nil {
		t.Fatal(err)
	}
	if s.Acked != 1500 || s.Delivered != 1500 || s.Errors != 0 || s.Lost != 0 || s.Duplicates != 0 {
		t.Errorf("summary %+v", s)
	}
}

// TestRunConnsNode opens idle devices on a node and reads its memory from
// /metrics.
func TestRunConnsNode(t *testing.T) {
	testnode.ForEachBackend(t, testRunConnsNode)
}

func testRunConnsNode(t *testing.T, be testnode.Backend) {
	n := startNode(t, be)
	tg := bench.MQIMD(n.MQTTAddr(), secret)
	tg.Memory = bench.MetricsMemory("http://" + n.HTTPAddr() + "/metrics")
	s, err := bench.RunConns(context.Background(), tg, bench.ConnsConfig{Conns: 40, Settle: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if s.Conns != 40 || s.Errors != 0 || s.RSSAfter <= 0 {
		t.Errorf("summary %+v", s)
	}
}

// TestRunGroupNode fans group messages out to every member, on write and,
// above the node's threshold, on read (the devices subscribe to the group
// topic as the group's events tell them), once each and in order.
func TestRunGroupNode(t *testing.T) {
	testnode.ForEachBackend(t, testRunGroupNode)
}

func testRunGroupNode(t *testing.T, be testnode.Backend) {
	n := startNode(t, be, func(c *server.Config) { c.GroupReadFanout = 8 })
	for _, tc := range []struct {
		members int
		fanout  string
	}{{5, "write"}, {12, "read"}} {
		s, err := bench.RunGroup(context.Background(), bench.MQIMD(n.MQTTAddr(), secret),
			bench.Config{Members: tc.members, Messages: 30})
		if err != nil {
			t.Fatal(err)
		}
		if s.Scenario != "group" || s.Members != tc.members || s.Fanout != tc.fanout || s.Acked != 30 ||
			s.Delivered != int64(30*tc.members) || s.Errors != 0 || s.Lost != 0 || s.Duplicates != 0 || s.OutOfOrder != 0 {
			t.Errorf("%d members: summary %+v", tc.members, s)
		}
		if s.MsgsPerSec <= 0 || s.P99ms < s.P50ms {
			t.Errorf("%d members: rates or times look wrong: %+v", tc.members, s)
		}
	}
}
