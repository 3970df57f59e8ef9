package bench_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/mqim/mqim/clients/bench"
	"github.com/mqim/mqim/delivery/cluster"
	"github.com/mqim/mqim/internal/testnode"
	"github.com/mqim/mqim/push"
	"github.com/mqim/mqim/server"
	"github.com/mqim/mqim/store"
)

func TestZZProf(t *testing.T) {
	if os.Getenv("ZZPROF") == "" {
		t.Skip()
	}
	hookSecret := []byte("bench-webhook-secret")
	rx, _ := bench.StartPushReceiver("127.0.0.1:0", hookSecret)
	defer rx.Close()
	nc, _ := cluster.ConnectNATS(context.Background(), cluster.NATSConfig{StoreDir: t.TempDir(), ServerName: "bench-push"})
	defer nc.Close()
	n := startNode(t, testnode.Backend(os.Getenv("ZZPROF")), func(c *server.Config) {
		c.NATS, c.NodeName, c.NodeID, c.Standalone = nc.Conn, "n1", 1, true
		c.Push = push.Config{Providers: map[string]push.Provider{
			store.PlatformWebhook: push.NewWebhook(push.WebhookConfig{URL: rx.URL(), Secret: hookSecret})}}
	})
	sums, err := bench.RunPush(context.Background(), bench.MQIMD(n.MQTTAddr(), secret), bench.PushConfig{
		Config:     bench.Config{Senders: 10, Inflight: 8, Rate: 1000, Duration: 5 * time.Second, Drain: 60 * time.Second},
		Recipients: 200, Rounds: 1, CostDuration: 8 * time.Second, Receiver: rx})
	if err != nil {
		t.Fatal(err)
	}
	bench.WriteTable(os.Stdout, sums)
}
