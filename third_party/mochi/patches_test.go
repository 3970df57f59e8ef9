// mqim: one regression test per mqim patch (see README.md). Each fails, or
// deadlocks until its bounded wait gives up, with the patch reverted.

package mqtt

import (
	"bytes"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/mochi-mqtt/server/v2/system"

	"github.com/stretchr/testify/require"
)

// finishes runs each fn on a goroutine of its own and fails the test unless
// all of them return within waitTimeout: a deadlock is reported, not waited
// out until go test's timeout. The goroutines of a deadlock stay blocked.
func finishes(t *testing.T, what string, fns ...func()) {
	t.Helper()
	done := make(chan struct{}, len(fns))
	for _, fn := range fns {
		go func(fn func()) {
			fn()
			done <- struct{}{}
		}(fn)
	}
	timeout := time.After(waitTimeout)
	for range fns {
		select {
		case <-done:
		case <-timeout:
			t.Fatalf("%s: still blocked after %v (deadlock)", what, waitTimeout)
		}
	}
}

// concurrentIterations is how often each side of a deadlock test runs: far
// more than a writer needs to queue between the two read locks of the
// unpatched code, a few hundred milliseconds with -race when patched.
const concurrentIterations = 20000

// Patch: inflight.go, Inflight.NextImmediate took the read lock and then
// GetAll took it again; a writer queued between the two deadlocked both.
func TestInflightNextImmediateConcurrentWriter(t *testing.T) {
	i := NewInflights()
	finishes(t, "NextImmediate with a concurrent Set",
		func() {
			for n := 0; n < concurrentIterations; n++ {
				i.NextImmediate()
			}
		},
		func() {
			for n := 0; n < concurrentIterations; n++ {
				id := uint16(n%100 + 1)
				i.Set(packets.Packet{PacketID: id})
				i.Delete(id)
			}
		},
	)
}

// Patch: clients.go, Clients.GetByListener held the read lock and called
// Len, which took it again; a writer queued between the two deadlocked both.
func TestClientsGetByListenerConcurrentWriter(t *testing.T) {
	cls := NewClients()
	for n := 0; n < 10; n++ {
		cl, _, _ := newTestClient()
		cl.ID = "t1-" + strconv.Itoa(n)
		cl.Net.Listener = "t1"
		cls.Add(cl)
	}
	extra, _, _ := newTestClient()
	extra.ID = "extra"
	extra.Net.Listener = "t1"
	finishes(t, "GetByListener with a concurrent Add",
		func() {
			for n := 0; n < concurrentIterations; n++ {
				cls.GetByListener("t1")
			}
		},
		func() {
			for n := 0; n < concurrentIterations; n++ {
				cls.Add(extra)
				cls.Delete(extra.ID)
			}
		},
	)
	require.Len(t, cls.GetByListener("t1"), 10)
}

// Patch: server.go, DisconnectClient wrote a DISCONNECT packet (e0 00) to
// MQTT 3.1.1 clients, which have none from the server [MQTT-3.14.0]; now the
// connection is just closed.
func TestServerDisconnectClientMqtt311NoPacket(t *testing.T) {
	for _, version := range []byte{3, 4} {
		s := newServer()
		cl, r, _ := newTestClient()
		cl.Properties.ProtocolVersion = version

		recv := make(chan []byte)
		go func() {
			buf, err := io.ReadAll(r)
			require.NoError(t, err)
			recv <- buf
		}()

		err := s.DisconnectClient(cl, packets.ErrSessionTakenOver)
		require.ErrorIs(t, err, packets.ErrSessionTakenOver)
		require.Equal(t, []byte{}, <-recv, "protocol version %d", version)
		require.True(t, cl.Closed())
		require.ErrorIs(t, cl.StopCause(), packets.ErrSessionTakenOver)
	}
}

// testPeer is the client end of a net.Pipe connection to the server: it
// encodes packets as a client would and decodes what the server sends.
type testPeer struct {
	t    *testing.T
	conn net.Conn
	cl   *Client // decodes the server's packets
}

func newTestPeer(t *testing.T, conn net.Conn) *testPeer {
	cl := newClient(conn, &ops{
		info:    new(system.Info),
		hooks:   new(Hooks),
		log:     logger,
		options: &Options{Capabilities: NewDefaultServerCapabilities()},
	})
	cl.Properties.ProtocolVersion = 5
	return &testPeer{t: t, conn: conn, cl: cl}
}

func (p *testPeer) write(pk packets.Packet, encode func(*packets.Packet, *bytes.Buffer) error) {
	p.t.Helper()
	pk.ProtocolVersion = 5
	var b bytes.Buffer
	require.NoError(p.t, encode(&pk, &b))
	_, err := p.conn.Write(b.Bytes())
	require.NoError(p.t, err)
}

func (p *testPeer) read() (packets.Packet, error) {
	var fh packets.FixedHeader
	if err := p.cl.ReadFixedHeader(&fh); err != nil {
		return packets.Packet{}, err
	}
	return p.cl.ReadPacket(&fh)
}

// Patch: server.go, publishToClient and the end of processPacket (with
// inflight.go's Hold/NextImmediate). A client announcing Receive Maximum 2 is
// sent five QoS 1 messages and acknowledges each as it arrives: all five must
// arrive, in order. v2.7.9 sent one held message per packet from the client,
// picked it by whole seconds with an unstable sort, and dropped it from the
// in-flight map once written, so its PUBACK returned no quota and, after
// Receive Maximum held messages, the client got nothing more.
func TestServerHeldQosOverReceiveMaximum(t *testing.T) {
	const receiveMaximum, messages = 2, 5

	s := newServerWithInlineClient()
	defer s.Close()

	r, w := net.Pipe()
	defer w.Close()
	go func() { _ = s.EstablishConnection("tcp", r) }()
	peer := newTestPeer(t, w)

	peer.write(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Connect},
		Connect: packets.ConnectParams{
			ProtocolName: []byte("MQTT"), Clean: true,
			Keepalive: 60, ClientIdentifier: "receive-maximum",
		},
		Properties: packets.Properties{ReceiveMaximum: receiveMaximum},
	}, (*packets.Packet).ConnectEncode)
	pk, err := peer.read()
	require.NoError(t, err)
	require.Equal(t, packets.Connack, pk.FixedHeader.Type)
	require.Equal(t, packets.CodeSuccess.Code, pk.ReasonCode)

	peer.write(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1},
		PacketID:    1,
		Filters:     packets.Subscriptions{{Filter: "a/b/c", Qos: 1}},
	}, (*packets.Packet).SubscribeEncode)
	pk, err = peer.read()
	require.NoError(t, err)
	require.Equal(t, packets.Suback, pk.FixedHeader.Type)

	// The client's packets, as they arrive; the test acknowledges each.
	received := make(chan packets.Packet, messages+1)
	go func() {
		defer close(received)
		for {
			pk, err := peer.read()
			if err != nil {
				return
			}
			received <- pk
		}
	}()

	for n := 0; n < messages; n++ {
		require.NoError(t, s.Publish("a/b/c", []byte(strconv.Itoa(n)), false, 1))
	}

	timeout := time.After(waitTimeout)
	for n := 0; n < messages; n++ {
		select {
		case pk, ok := <-received:
			require.True(t, ok, "connection closed after %d of %d messages", n, messages)
			require.Equal(t, packets.Publish, pk.FixedHeader.Type)
			require.Equal(t, strconv.Itoa(n), string(pk.Payload), "message %d out of order", n)
			peer.write(packets.Packet{
				FixedHeader: packets.FixedHeader{Type: packets.Puback},
				PacketID:    pk.PacketID,
			}, (*packets.Packet).PubackEncode)
		case <-timeout:
			t.Fatalf("received %d of %d messages within %v", n, messages, waitTimeout)
		}
	}

	cl, ok := s.Clients.Get("receive-maximum")
	require.True(t, ok)
	require.True(t, waitFor(t, func() bool { return cl.State.Inflight.Len() == 0 }))
	require.Equal(t, int32(receiveMaximum), atomic.LoadInt32(&cl.State.Inflight.sendQuota))
	require.False(t, cl.State.Inflight.Holding())
}

// topicACLHook allows connections, and publishing to topic only.
type topicACLHook struct {
	HookBase
	topic string
}

func (h *topicACLHook) ID() string { return "topic-acl" }

func (h *topicACLHook) Provides(b byte) bool {
	return b == OnConnectAuthenticate || b == OnACLCheck
}

func (h *topicACLHook) OnConnectAuthenticate(cl *Client, pk packets.Packet) bool { return true }

func (h *topicACLHook) OnACLCheck(cl *Client, topic string, write bool) bool {
	return !write || topic == h.topic
}

// Patch: server.go, processPublish resolves a client's topic alias before
// the topic and ACL checks. v2.7.9 checked the empty topic of an alias-only
// PUBLISH, so an ACL that allows the aliased topic refused it (here a PUBACK
// 0x87, no delivery), and it took an alias never set as an empty topic.
func TestServerPublishTopicAliasResolvedFirst(t *testing.T) {
	s := New(&Options{Logger: logger})
	require.NoError(t, s.AddHook(&topicACLHook{topic: "a/b/c"}, nil))
	defer s.Close()

	sub, subR, _ := newTestClient()
	sub.ID = "sub"
	s.Clients.Add(sub)
	require.True(t, s.Topics.Subscribe(sub.ID, packets.Subscription{Filter: "a/b/c"}))
	delivered := make(chan packets.Packet, 4)
	go func() {
		p := newTestPeer(t, subR)
		p.cl.Properties.ProtocolVersion = 4
		for {
			pk, err := p.read()
			if err != nil {
				close(delivered)
				return
			}
			delivered <- pk
		}
	}()

	cl, r, _ := newTestClient()
	cl.ID = "aliases"
	cl.Properties.ProtocolVersion = 5
	s.Clients.Add(cl)
	acks := make(chan packets.Packet, 4)
	go func() {
		p := newTestPeer(t, r)
		for {
			pk, err := p.read()
			if err != nil {
				close(acks)
				return
			}
			acks <- pk
		}
	}()

	publish := func(id uint16, topic string, alias uint16) error {
		return s.processPublish(cl, packets.Packet{
			FixedHeader:     packets.FixedHeader{Type: packets.Publish, Qos: 1},
			ProtocolVersion: 5,
			PacketID:        id,
			TopicName:       topic,
			Properties:      packets.Properties{TopicAlias: alias, TopicAliasFlag: true},
			Payload:         []byte(strconv.Itoa(int(id))),
		})
	}
	next := func(ch <-chan packets.Packet, what string) packets.Packet {
		t.Helper()
		select {
		case pk, ok := <-ch:
			require.True(t, ok, what)
			return pk
		case <-time.After(waitTimeout):
			t.Fatalf("no %s within %v", what, waitTimeout)
		}
		return packets.Packet{}
	}

	require.NoError(t, publish(1, "a/b/c", 1)) // sets alias 1
	require.NoError(t, publish(2, "", 1))      // uses it
	for id := uint16(1); id <= 2; id++ {
		ack := next(acks, "PUBACK "+strconv.Itoa(int(id)))
		require.Equal(t, packets.Puback, ack.FixedHeader.Type)
		require.Equal(t, id, ack.PacketID)
		require.Equal(t, packets.CodeSuccess.Code, ack.ReasonCode, "PUBACK %d", id)
		pk := next(delivered, "delivery "+strconv.Itoa(int(id)))
		require.Equal(t, "a/b/c", pk.TopicName)
		require.Equal(t, strconv.Itoa(int(id)), string(pk.Payload))
	}

	// An alias the client never set is a protocol error (§3.3.2.3.4).
	require.ErrorIs(t, publish(3, "", 2), packets.ErrProtocolViolationNoTopic)
}

// Patch: inflight.go, Inflight.Reissue (an API for mqim's packet-id
// collision hook): a held packet keeps its place among the held ones under
// its new id and stays held; a sent one may be written again.
func TestInflightReissue(t *testing.T) {
	i := NewInflights()
	publish := func(id uint16) packets.Packet {
		return packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1, Dup: true}, PacketID: id}
	}
	i.Set(publish(1)) // sent
	i.Hold(publish(2))
	i.Hold(publish(3))
	i.Set(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrel}, PacketID: 4})

	pk, held, ok := i.Reissue(2, 9)
	require.True(t, ok)
	require.True(t, held)
	require.Equal(t, uint16(9), pk.PacketID)
	require.False(t, pk.FixedHeader.Dup)
	_, ok = i.Get(2)
	require.False(t, ok)

	pk, held, ok = i.Reissue(1, 8)
	require.True(t, ok)
	require.False(t, held)
	require.Equal(t, uint16(8), pk.PacketID)

	_, _, ok = i.Reissue(4, 10) // not a PUBLISH
	require.False(t, ok)
	_, _, ok = i.Reissue(5, 11) // not in flight
	require.False(t, ok)

	next, ok := i.NextImmediate()
	require.True(t, ok)
	require.Equal(t, uint16(9), next.PacketID) // the reissued one kept its place
	next, ok = i.NextImmediate()
	require.True(t, ok)
	require.Equal(t, uint16(3), next.PacketID)
	require.Equal(t, 4, i.Len())
}

// Patch: clients.go, Client.WritesPending (an API for mqim's drain): queued,
// buffered or held packets are pending.
func TestClientWritesPending(t *testing.T) {
	cl, _, _ := newTestClient()
	cl.Stop(errClientStop) // the write loop ends and leaves the queue alone
	waitFor(t, func() bool { return cl.Closed() })
	require.False(t, cl.WritesPending())

	cl.State.Inflight.Hold(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, PacketID: 1})
	require.True(t, cl.WritesPending())
	_, ok := cl.State.Inflight.NextImmediate()
	require.True(t, ok)
	require.False(t, cl.WritesPending())

	cl.Lock()
	cl.Net.outbuf = bytes.NewBufferString("x")
	cl.Unlock()
	require.True(t, cl.WritesPending())
	cl.Lock()
	cl.Net.outbuf = nil
	cl.Unlock()

	// A packet the writer has taken off the queue but not written yet is
	// still pending: a drain that missed it lost the last delivery.
	atomic.AddInt32(&cl.State.outboundQty, 1)
	require.True(t, cl.WritesPending())
	atomic.AddInt32(&cl.State.outboundQty, -1)
	require.False(t, cl.WritesPending())

	cl.State.outbound <- &packets.Packet{}
	require.True(t, cl.WritesPending())
}

// Patch: server.go, Server.closing (upstream #508, #541): a connection
// accepted while the server closes is refused and closed, and never adds
// to ClientsWg after Close began waiting on it.
func TestConnectionDuringCloseRefused(t *testing.T) {
	s := New(nil)
	require.NoError(t, s.Serve())
	require.NoError(t, s.Close())
	r, w := net.Pipe()
	defer w.Close()
	_ = r.SetDeadline(time.Now().Add(2 * time.Second)) // unpatched, it would wait for a CONNECT
	err := s.EstablishConnection("tcp", r)
	require.ErrorIs(t, err, packets.ErrServerShuttingDown)
	_, err = w.Write([]byte{1})
	require.Error(t, err, "the connection should be closed")
}

// Patch: clients.go, Client.Detached: closed only once attachClient is done
// with the connection, after its expiring session left Clients, so that a
// take-over can wait for it instead of polling.
func TestClientDetachedAfterTeardown(t *testing.T) {
	s := newServer()
	defer s.Close()
	r, w := net.Pipe()
	defer w.Close()
	attached := make(chan error, 1)
	go func() { attached <- s.EstablishConnection("tcp", r) }()
	connect := packets.TPacketData[packets.Connect].Get(packets.TConnectClean)
	go func() { _, _ = w.Write(connect.RawBytes) }()
	buf := make([]byte, len(packets.TPacketData[packets.Connack].Get(packets.TConnackAcceptedNoSession).RawBytes))
	_ = w.SetReadDeadline(time.Now().Add(waitTimeout))
	_, err := io.ReadFull(w, buf)
	require.NoError(t, err)

	id := connect.Packet.Connect.ClientIdentifier
	cl, ok := s.Clients.Get(id)
	require.True(t, ok)
	select {
	case <-cl.Detached():
		t.Fatal("detached while connected")
	default:
	}
	go func() { _, _ = w.Write(packets.TPacketData[packets.Disconnect].Get(packets.TDisconnect).RawBytes) }()
	select {
	case <-cl.Detached():
	case <-time.After(waitTimeout):
		t.Fatal("not detached after the connection ended")
	}
	_, ok = s.Clients.Get(id)
	require.False(t, ok, "detached before the expiring session left Clients")
	require.NoError(t, <-attached)
}
