package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/mqim/mqim/internal/testpg"
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/push/pushtest"
)

// TestPushKilledAfterCommit: mqimd (the binary) with MQIM_FAILPOINT=
// push-after-commit kills itself with SIGKILL once a message is committed
// and before its push job reaches the work queue; restarted on the same
// data (without the failpoint) it pushes that message once: the
// candidate waited in the store's outbox [IM-17.4-1], [IM-17.4-3]. The
// webhook receiver counts notifications per collapse id. On the embedded
// store (SQLite, embedded NATS in the data directory) and on PostgreSQL.
func TestPushKilledAfterCommit(t *testing.T) {
	for _, st := range []string{"sqlite", "postgres"} {
		t.Run(st, func(t *testing.T) {
			bin, _ := build(t)
			var dbURL string
			if st == "postgres" {
				dbURL = testpg.StartServer(t).URL()
			}
			hook, flags := webhook(t)
			n := nodeProc(t, bin, 1, dbURL, flags...)
			n.env = []string{"MQIM_FAILPOINT=push-after-commit"}
			n.start()
			ctx := t.Context()

			registerOffline(t, n, "bob", "bob-token")

			// The commit, then the kill: the PUBACK may or may not have
			// left; the device sends again with the same cmid either way.
			alice := newDevice("alice", "alice.d1", 0, nil)
			if _, err := alice.connect(ctx, n.mqtt); err != nil {
				t.Fatal(err)
			}
			_, _ = alice.send(ctx, "bob", "k1", "before the kill")
			n.wait()
			if !n.killedBy(syscall.SIGKILL) {
				t.Fatal("mqimd did not die by SIGKILL at the failpoint")
			}
			if hook.Count("bob-token") != 0 {
				t.Fatal("pushed before the kill")
			}

			n.env = nil
			n.start()
			if _, err := alice.connect(ctx, n.mqtt); err != nil {
				t.Fatal(err)
			}
			a, err := sendUntilAcked(ctx, alice, "bob", "k1", "before the kill")
			if err != nil || a.conv != "d:alice:bob" || a.seq != 1 {
				t.Fatalf("k1 after the restart: %+v %v (want the message stored before the kill, seq 1)", a, err)
			}
			carol := newDevice("carol", "carol.d1", 0, nil)
			if _, err := carol.connect(ctx, n.mqtt); err != nil {
				t.Fatal(err)
			}
			if _, err := sendUntilAcked(ctx, carol, "bob", "c1", "after the restart"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "both pushes", func() bool { return hook.Count("bob-token") >= 2 })
			perCollapse := map[string]int{}
			for _, a := range hook.Accepted() {
				perCollapse[a.CollapseID]++
			}
			if len(perCollapse) != 2 || perCollapse["d:alice:bob"] != 1 || perCollapse["d:bob:carol"] != 1 {
				t.Fatalf("notifications per collapse id %v, want one each for d:alice:bob and d:bob:carol", perCollapse)
			}
			if sent := n.metric(`mqim_push_sent_total{provider="webhook"}`); sent != 2 {
				t.Fatalf("mqim_push_sent_total %v", sent)
			}
			if errs := hook.Errors(); len(errs) != 0 {
				t.Fatalf("webhook receiver saw %v", errs)
			}
		})
	}
}

// webhook starts a webhook receiver and returns mqimd's flags for it.
func webhook(t *testing.T) (*pushtest.Webhook, []string) {
	hook := pushtest.NewWebhook(t)
	secretFile := filepath.Join(t.TempDir(), "webhook-secret")
	if err := os.WriteFile(secretFile, hook.Secret, 0o600); err != nil {
		t.Fatal(err)
	}
	return hook, []string{"--push-webhook-url", hook.Config().URL, "--push-webhook-secret-file", secretFile}
}

// registerOffline registers a device of user on n for webhook push with
// token and disconnects it.
func registerOffline(t *testing.T, n *node, user, token string) {
	t.Helper()
	d := newDevice(user, user+".phone", 0, nil)
	c, err := d.connect(t.Context(), n.mqtt)
	if err != nil {
		t.Fatal(err)
	}
	var reg rpcResponse[protocol.PushDevice]
	if err := d.rpc(t.Context(), c, protocol.MethodPushRegister, protocol.PushRegisterRequest{Platform: "webhook", Token: token}, &reg); err != nil || !reg.OK {
		t.Fatalf("push.register: %v %+v", err, reg.Error)
	}
	_ = c.Disconnect(&paho.Disconnect{})
	waitFor(t, user+" offline", func() bool { return len(n.presence(t, user)) == 0 })
}

// sendUntilAcked sends (to, cmid) until the server acknowledges it.
func sendUntilAcked(ctx context.Context, d *device, to, cmid, text string) (acked, error) {
	deadline := time.Now().Add(waitTimeout)
	for {
		a, err := d.send(ctx, to, cmid, text)
		var r *errRefused
		if err == nil || errors.As(err, &r) && r.code != protocol.CodeUnavailable || time.Now().After(deadline) {
			return a, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClusterPush: two mqimd processes on one PostgreSQL and one
// nats-server share the push work queue; messages to an offline user sent
// through both nodes, by an MQTT 5 device on one and an MQTT 3.1.1 device
// on the other, are pushed once each, whichever node sends them
// [IM-17.4-3].
func TestClusterPush(t *testing.T) {
	hook, flags := webhook(t)
	c := startCluster(t, 2, flags...)
	n1, n2 := c.nodes[0], c.nodes[1]
	ctx := t.Context()
	registerOffline(t, n1, "bob", "bob-token")
	waitFor(t, "bob offline on node 2 too", func() bool { return len(n2.presence(t, "bob")) == 0 })

	alice := newDevice("alice", "alice.d1", 0, nil) // MQTT 5, on node 1
	if _, err := alice.connect(ctx, n1.mqtt); err != nil {
		t.Fatal(err)
	}
	carol := connect311(t, n2.mqtt, "carol", "carol.d1") // MQTT 3.1.1, on node 2
	defer carol.Close()
	const each = 15
	for i := range each {
		if _, err := sendUntilAcked(ctx, alice, "bob", fmt.Sprintf("a%d", i), "from node 1"); err != nil {
			t.Fatal(err)
		}
		body, _ := protocol.Encode(protocol.MsgPack, protocol.Send{Cmid: fmt.Sprintf("c%d", i), To: "bob", Type: protocol.TypeText,
			Body: map[string]any{"text": "from node 2"}})
		publish311(t, carol, protocol.SendTopic("carol"), uint16(i+1), body)
	}
	waitFor(t, "every push", func() bool { return hook.Count("bob-token") >= 2*each })
	seen, convs := map[string]bool{}, map[string]int{}
	for _, a := range hook.Accepted() {
		k := fmt.Sprintf("%s/%d", a.Conv, a.Seq)
		if seen[k] {
			t.Fatalf("message %s pushed twice", k)
		}
		seen[k] = true
		convs[a.Conv]++
	}
	if convs["d:alice:bob"] != each || convs["d:bob:carol"] != each || len(convs) != 2 {
		t.Fatalf("pushes by conversation %v", convs)
	}
	if sent := n1.metric(`mqim_push_sent_total{provider="webhook"}`) + n2.metric(`mqim_push_sent_total{provider="webhook"}`); sent != 2*each {
		t.Fatalf("the nodes sent %v notifications, want %d", sent, 2*each)
	}
}

// publish311 sends a QoS 1 PUBLISH on an MQTT 3.1.1 connection and waits
// for its PUBACK (3.1.1's PUBACK says only that the server took it).
func publish311(t *testing.T, nc net.Conn, topic string, id uint16, payload []byte) {
	t.Helper()
	var body bytes.Buffer
	_ = binary.Write(&body, binary.BigEndian, uint16(len(topic)))
	body.WriteString(topic)
	_ = binary.Write(&body, binary.BigEndian, id)
	body.Write(payload)
	pkt := []byte{0x32} // PUBLISH, QoS 1
	for n := body.Len(); ; {
		b := byte(n % 128)
		if n /= 128; n > 0 {
			pkt = append(pkt, b|0x80)
			continue
		}
		pkt = append(pkt, b)
		break
	}
	pkt = append(pkt, body.Bytes()...)
	_ = nc.SetDeadline(time.Now().Add(waitTimeout))
	defer nc.SetDeadline(time.Time{})
	if _, err := nc.Write(pkt); err != nil {
		t.Fatal(err)
	}
	// The device subscribed to nothing: the next packet is the PUBACK.
	ack := make([]byte, 4)
	if _, err := io.ReadFull(nc, ack); err != nil || ack[0] != 0x40 || binary.BigEndian.Uint16(ack[2:]) != id {
		t.Fatalf("PUBACK % x, %v", ack, err)
	}
}
