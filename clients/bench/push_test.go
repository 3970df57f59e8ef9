package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/mqim/mqim/clients/bench"
	"github.com/mqim/mqim/delivery/cluster"
	"github.com/mqim/mqim/internal/testnode"
	"github.com/mqim/mqim/push"
	"github.com/mqim/mqim/server"
	"github.com/mqim/mqim/store"
)

// TestRunPushNode: the push scenario against a node whose webhook provider
// posts to the scenario's receiver: every message sent to a registered
// offline recipient is pushed once, none sent to one without a
// registration; the summaries say which is which.
func TestRunPushNode(t *testing.T) {
	testnode.ForEachBackend(t, testRunPushNode)
}

func testRunPushNode(t *testing.T, be testnode.Backend) {
	hookSecret := []byte("bench-webhook-secret")
	rx, err := bench.StartPushReceiver("127.0.0.1:0", hookSecret)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rx.Close() })
	nc, err := cluster.ConnectNATS(context.Background(), cluster.NATSConfig{StoreDir: t.TempDir(), ServerName: "bench-push"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	n := startNode(t, be, func(c *server.Config) {
		c.NATS, c.NodeName, c.NodeID, c.Standalone = nc.Conn, "n1", 1, true
		c.Push = push.Config{Providers: map[string]push.Provider{
			store.PlatformWebhook: push.NewWebhook(push.WebhookConfig{URL: rx.URL(), Secret: hookSecret})}}
	})
	sums, err := bench.RunPush(context.Background(), bench.MQIMD(n.MQTTAddr(), secret), bench.PushConfig{
		Config:     bench.Config{Senders: 2, Inflight: 2, Rate: 400, Messages: 120, Drain: 30 * time.Second},
		Recipients: 15, Rounds: 1, Receiver: rx})
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 3 {
		t.Fatalf("%d summaries, want the paced run and one round of two", len(sums))
	}
	for i, want := range []struct {
		push  string
		round int
		rate  float64
	}{{"on", 0, 400}, {"on", 1, 0}, {"off", 1, 0}} {
		s := sums[i]
		pushed := int64(120)
		if want.push == "off" {
			pushed = 0
		}
		if s.Scenario != "push" || s.Push != want.push || s.Round != want.round || s.Rate != want.rate || s.Recipients != 15 ||
			s.Acked != 120 || s.Delivered != pushed || s.Errors != 0 || s.Lost != 0 || s.Duplicates != 0 {
			t.Errorf("run %d: summary %+v", i, s)
		}
		if want.push == "on" && (s.DeliveredPerSec <= 0 || s.P50ms <= 0 || s.P99ms < s.P50ms) {
			t.Errorf("run %d: rates or times look wrong: %+v", i, s)
		}
	}
	if on, off := bench.PushCost(sums); on <= 0 || off <= 0 {
		t.Errorf("push cost %v / %v", on, off)
	}
	if rx.Refused() != 0 {
		t.Errorf("%d posts refused", rx.Refused())
	}
}
