package e2e

import (
	"context"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/mqim/mqim/broker"
	"github.com/mqim/mqim/hooks/auth"
	"github.com/mqim/mqim/internal/testpg"
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store/pgstore"
)

var secret = []byte("e2e-test-secret")

// testNode is a running mqimd node on loopback ports with its own schema.
type testNode struct {
	*broker.Node
	dbURL string
}

func startNode(t *testing.T) *testNode {
	t.Helper()
	return startNodeOn(t, testpg.URL(t))
}

// startNodeOn starts a node on an existing database (to restart a node).
func startNodeOn(t *testing.T, dbURL string) *testNode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := pgstore.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	level := slog.LevelWarn
	if os.Getenv("MQIM_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	n, err := broker.New(broker.Config{
		MQTTAddr: "127.0.0.1:0", WSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		Secret: secret, Store: st,
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	tn := &testNode{Node: n, dbURL: dbURL}
	t.Cleanup(func() { tn.stop(t); st.Close() })
	return tn
}

func (n *testNode) stop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func token(t testing.TB, user string) string {
	t.Helper()
	tok, err := auth.Mint(secret, user, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// v5 is a paho.golang MQTT 5 device.
type v5 struct {
	t      *testing.T
	c      *paho.Client
	user   string
	events chan *paho.Publish
}

func dialV5(t *testing.T, addr, user, clientID string, props ...paho.UserProperty) *v5 {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	d := &v5{t: t, user: user, events: make(chan *paho.Publish, 10000)}
	d.c = paho.NewClient(paho.ClientConfig{
		ClientID: clientID,
		Conn:     conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			d.events <- pr.Packet
			return true, nil
		}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cp := &paho.Connect{ClientID: clientID, CleanStart: true, KeepAlive: 30,
		Username: user, UsernameFlag: true, Password: []byte(token(t, user)), PasswordFlag: true}
	if len(props) > 0 {
		cp.Properties = &paho.ConnectProperties{User: props}
	}
	ca, err := d.c.Connect(ctx, cp)
	if err != nil {
		t.Fatalf("connect %s: %v (connack %+v)", user, err, ca)
	}
	t.Cleanup(func() { _ = d.c.Disconnect(&paho.Disconnect{}) })
	return d
}

func (d *v5) subscribe(filter string) byte {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sa, err := d.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}})
	if err != nil && sa == nil {
		d.t.Fatalf("subscribe %s: %v", filter, err)
	}
	return sa.Reasons[0]
}

func (d *v5) publish(topic string, payload []byte) *paho.PublishResponse {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pr, err := d.c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: payload})
	if pr == nil {
		d.t.Fatalf("publish %s: %v", topic, err)
	}
	return pr
}

// nextEvent waits for the next inbox event.
func (d *v5) nextEvent() protocol.Event {
	d.t.Helper()
	select {
	case p := <-d.events:
		var ev protocol.Event
		if err := protocol.Decode(protocol.Detect(p.Payload, ""), p.Payload, &ev); err != nil {
			d.t.Fatalf("decode event on %s: %v", p.Topic, err)
		}
		return ev
	case <-time.After(10 * time.Second):
		d.t.Fatalf("%s: no event within 10s", d.user)
	}
	return protocol.Event{}
}

func mustEncode(t testing.TB, f protocol.Format, v any) []byte {
	t.Helper()
	b, err := protocol.Encode(f, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
