package main

import (
	"context"
	"strings"
	"testing"

	"github.com/mqim/mqim/delivery/cluster"
	"github.com/mqim/mqim/push"
	"github.com/mqim/mqim/push/pushtest"
	"github.com/mqim/mqim/server"
	"github.com/mqim/mqim/store"
)

// TestCLIPush: mqim push register, list and unregister against a node with
// push on (the APNs fake as its provider) [IM-17.1].
func TestCLIPush(t *testing.T) {
	bin := buildCLI(t)
	fake := pushtest.NewAPNs(t)
	nc, err := cluster.ConnectNATS(context.Background(), cluster.NATSConfig{StoreDir: t.TempDir(), ServerName: "cli-push"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	p, err := push.NewAPNs(fake.Config())
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, func(c *server.Config) {
		c.NATS, c.Standalone = nc.Conn, true
		c.Push = push.Config{Providers: map[string]push.Provider{store.PlatformAPNs: p}}
	})
	args := []string{"--server", "mqtt://" + n.MQTTAddr(), "--user", "bob", "--secret", cliSecret, "--client-id", "bob-phone"}
	tok := strings.Repeat("ab", 32)
	r := mqim(t, bin, append([]string{"push", "register", "--platform", "apns", "--device-token", tok, "--app", fake.Topic, "--env", "sandbox"}, args...)...)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "bob-phone  apns  …ababab  "+fake.Topic+"  sandbox") {
		t.Fatalf("push register: %+v", r)
	}
	if r := mqim(t, bin, append([]string{"push", "list"}, args...)...); r.code != 0 || strings.Count(r.stdout, "bob-phone") != 1 {
		t.Fatalf("push list: %+v", r)
	}
	if r := mqim(t, bin, append([]string{"push", "register", "--platform", "apns", "--device-token", "xyz", "--app", fake.Topic}, args...)...); r.code == 0 || !strings.Contains(r.stderr, "bad_request") {
		t.Fatalf("bad token: %+v", r)
	}
	if r := mqim(t, bin, append([]string{"push", "unregister"}, args...)...); r.code != 0 || !strings.Contains(r.stdout, "removed: true") {
		t.Fatalf("push unregister: %+v", r)
	}
	if r := mqim(t, bin, "push", "list", "--server", "mqtt://"+n.MQTTAddr(), "--user", "bob", "--secret", cliSecret); r.code != 2 {
		t.Fatalf("push list without --client-id: %+v", r)
	}
}
