package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/mqim/mqim/protocol/authtoken"
)

// TestClusterDrain: a node told to stop sends its MQTT 5 devices to another
// live node (DISCONNECT 0x9C with a Server Reference) and closes its 3.1.1
// connections without a DISCONNECT, which 3.1.1 does not allow the server.
func TestClusterDrain(t *testing.T) {
	c := startCluster(t, 2)
	n1, n2 := c.nodes[0], c.nodes[1]
	// n1 knows n2 once n2's node record reached it.
	waitFor(t, "node 1 to see node 2 in the routing table", func() bool {
		return n1.liveNodes(t)[n2.name()] == n2.mqtt
	})

	var mu sync.Mutex
	var got *paho.Disconnect
	gotIt := make(chan struct{})
	nc, err := net.Dial("tcp", n1.mqtt)
	if err != nil {
		t.Fatal(err)
	}
	cl := paho.NewClient(paho.ClientConfig{ClientID: "v5.d", Conn: nc,
		OnServerDisconnect: func(d *paho.Disconnect) {
			mu.Lock()
			got = d
			mu.Unlock()
			close(gotIt)
		}})
	tok, _ := authtoken.Mint(secret, "v5", "", time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := cl.Connect(ctx, &paho.Connect{ClientID: "v5.d", CleanStart: true, KeepAlive: 30,
		Username: "v5", UsernameFlag: true, Password: []byte(tok), PasswordFlag: true}); err != nil {
		t.Fatal(err)
	}
	v3 := connect311(t, n1.mqtt, "v3", "v3.d")
	defer v3.Close()

	n1.stop(syscall.SIGTERM)
	select {
	case <-gotIt:
	case <-ctx.Done():
		t.Fatal("no DISCONNECT from the draining node")
	}
	mu.Lock()
	defer mu.Unlock()
	if got.ReasonCode != 0x9C {
		t.Errorf("DISCONNECT reason 0x%02x, want 0x9C use another server", got.ReasonCode)
	}
	if got.Properties == nil || got.Properties.ServerReference != n2.mqtt {
		t.Errorf("Server Reference %+v, want %s", got.Properties, n2.mqtt)
	}

	_ = v3.SetReadDeadline(time.Now().Add(waitTimeout))
	rest, err := io.ReadAll(v3)
	if len(rest) > 0 {
		t.Errorf("3.1.1 connection got % x before closing, want nothing (no DISCONNECT in 3.1.1)", rest)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("3.1.1 connection not closed")
	}
}

// connect311 opens an MQTT 3.1.1 connection and reads its CONNACK.
func connect311(t *testing.T, addr, user, client string) net.Conn {
	t.Helper()
	tok, err := authtoken.Mint(secret, user, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	str := func(b *bytes.Buffer, s string) {
		_ = binary.Write(b, binary.BigEndian, uint16(len(s)))
		b.WriteString(s)
	}
	var body bytes.Buffer
	str(&body, "MQTT")
	body.Write([]byte{4, 0xC2, 0, 30}) // level 4; username, password, clean session; keep alive 30 s
	str(&body, client)
	str(&body, user)
	str(&body, tok)
	pkt := []byte{0x10}
	for n := body.Len(); ; {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			pkt = append(pkt, b|0x80)
			continue
		}
		pkt = append(pkt, b)
		break
	}
	pkt = append(pkt, body.Bytes()...)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = nc.SetDeadline(time.Now().Add(waitTimeout))
	if _, err := nc.Write(pkt); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(nc, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		t.Fatalf("CONNACK % x, %v", ack, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return nc
}

// TestClusterTakeover: the same device (client id) connecting to another
// node takes over its connection on the first node [IM-3.1-6].
func TestClusterTakeover(t *testing.T) {
	c := startCluster(t, 2)
	n1, n2 := c.nodes[0], c.nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	tok, _ := authtoken.Mint(secret, "tk", "", time.Hour)
	dial := func(addr string, onDisconnect func(*paho.Disconnect)) *paho.Client {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		cl := paho.NewClient(paho.ClientConfig{ClientID: "tk.phone", Conn: nc, OnServerDisconnect: onDisconnect})
		if _, err := cl.Connect(ctx, &paho.Connect{ClientID: "tk.phone", CleanStart: true, KeepAlive: 30,
			Username: "tk", UsernameFlag: true, Password: []byte(tok), PasswordFlag: true}); err != nil {
			t.Fatal(err)
		}
		return cl
	}
	gone := make(chan byte, 1)
	first := dial(n1.mqtt, func(d *paho.Disconnect) { gone <- d.ReasonCode })
	defer first.Disconnect(&paho.Disconnect{})
	waitFor(t, "first connection in the routing table", func() bool { return n2.presence(t, "tk")["tk.phone"] == n1.name() })

	second := dial(n2.mqtt, nil)
	defer second.Disconnect(&paho.Disconnect{})
	select {
	case code := <-gone:
		if code != 0x8E {
			t.Errorf("first connection got DISCONNECT 0x%02x, want 0x8E session taken over", code)
		}
	case <-ctx.Done():
		t.Fatal("first connection not taken over")
	}
	waitFor(t, "routing table on the second node", func() bool {
		p := n1.presence(t, "tk")
		return len(p) == 1 && p["tk.phone"] == n2.name()
	})
}
