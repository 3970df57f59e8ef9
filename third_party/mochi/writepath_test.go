// mqim patch: regression tests for the write path (README.md): packet ids
// off the write lock, a write deadline, a writer only while packets wait.

package mqtt

import (
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/stretchr/testify/require"
)

// connectPeer connects a client id over a pipe and subscribes it to
// filter; it returns the test's end of the pipe and the server's client.
func connectPeer(t *testing.T, s *Server, id, filter string) (*testPeer, *Client) {
	t.Helper()
	r, w := net.Pipe()
	t.Cleanup(func() { _ = w.Close() })
	go func() { _ = s.EstablishConnection("tcp", r) }()
	peer := newTestPeer(t, w)
	peer.write(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Connect},
		Connect:     packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 60, ClientIdentifier: id},
		Properties:  packets.Properties{ReceiveMaximum: 1000},
	}, (*packets.Packet).ConnectEncode)
	pk, err := peer.read()
	require.NoError(t, err)
	require.Equal(t, packets.Connack, pk.FixedHeader.Type)
	peer.write(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1},
		PacketID:    1,
		Filters:     packets.Subscriptions{{Filter: filter, Qos: 1}},
	}, (*packets.Packet).SubscribeEncode)
	pk, err = peer.read()
	require.NoError(t, err)
	require.Equal(t, packets.Suback, pk.FixedHeader.Type)
	cl, ok := s.Clients.Get(id)
	require.True(t, ok)
	return peer, cl
}

// A subscriber that stops reading must not block the publisher: v2.7.9
// allocated the next packet id under the client's lock, which WritePacket
// holds while the socket write is blocked, so the second publish to the
// stalled client waited for that write (forever on a pipe nobody reads).
func TestPublishNotBlockedByStalledSubscriber(t *testing.T) {
	const messages = 20
	s := newServerWithInlineClient()
	t.Cleanup(func() { _ = s.Close() })               // after the pipes close (Cleanup runs last-in first-out)
	_, stalled := connectPeer(t, s, "stalled", "a/b") // never read again
	live, _ := connectPeer(t, s, "live", "a/b")

	received := make(chan packets.Packet, messages)
	go func() {
		for {
			pk, err := live.read()
			if err != nil {
				return
			}
			received <- pk // no PUBACK needed: Receive Maximum 1000
		}
	}()
	// The first message blocks the stalled client's socket write, which
	// holds its lock.
	require.NoError(t, s.Publish("a/b", []byte("0"), false, 1))
	waitFor(t, func() bool {
		if stalled.TryLock() {
			stalled.Unlock()
			return false
		}
		return true
	})
	finishes(t, "publish beside a stalled subscriber", func() {
		for n := 1; n < messages; n++ {
			_ = s.Publish("a/b", []byte(strconv.Itoa(n)), false, 1)
		}
	})
	timeout := time.After(waitTimeout)
	for n := 0; n < messages; n++ {
		select {
		case pk := <-received:
			require.Equal(t, strconv.Itoa(n), string(pk.Payload))
		case <-timeout:
			t.Fatalf("live subscriber got %d of %d messages", n, messages)
		}
	}
}

// A client whose socket takes nothing for ClientWriteTimeout is
// disconnected, with ErrClientWriteTimeout as its stop cause. v2.7.9 set
// no write deadline but the keepalive read deadline (none with keepalive 0).
func TestClientWriteTimeoutDisconnects(t *testing.T) {
	s := newServerWithInlineClient()
	s.Options.ClientWriteTimeout = 200 * time.Millisecond
	t.Cleanup(func() { _ = s.Close() })          // after the pipes close (Cleanup runs last-in first-out)
	_, cl := connectPeer(t, s, "stalled", "a/b") // never read again
	require.NoError(t, s.Publish("a/b", []byte("x"), false, 1))
	waitFor(t, cl.Closed)
	require.True(t, errors.Is(cl.StopCause(), ErrClientWriteTimeout), "stop cause %v", cl.StopCause())
}

// An idle connection has no writer goroutine: one runs while packets are
// queued and ends when the queue is empty; the next publish starts another.
// v2.7.9 ran WriteLoop for the connection's whole life.
func TestNoWriterWhileIdle(t *testing.T) {
	s := newServerWithInlineClient()
	t.Cleanup(func() { _ = s.Close() }) // after the pipes close (Cleanup runs last-in first-out)
	peer, cl := connectPeer(t, s, "idle", "a/b")
	writing := func() bool {
		cl.State.writeMu.Lock()
		defer cl.State.writeMu.Unlock()
		return cl.State.writing
	}
	require.False(t, writing(), "a writer runs for a connection that was sent nothing queued")
	for n := 0; n < 3; n++ {
		require.NoError(t, s.Publish("a/b", []byte(strconv.Itoa(n)), false, 1))
		pk, err := peer.read()
		require.NoError(t, err)
		require.Equal(t, strconv.Itoa(n), string(pk.Payload))
		peer.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID}, (*packets.Packet).PubackEncode)
		waitFor(t, func() bool { return !writing() })
	}
}

// The outbound channel is the device's bounded queue: once it is full,
// further deliveries to that client are dropped (OnPublishDropped, counted
// in MessagesDropped, the in-flight entry rolled back), never waited for.
func TestFullQueueDrops(t *testing.T) {
	const queue, messages = 4, 20
	s := newServerWithInlineClient()
	s.Options.Capabilities.MaximumClientWritesPending = queue
	t.Cleanup(func() { _ = s.Close() })
	_, stalled := connectPeer(t, s, "stalled", "a/b") // never read again
	require.NoError(t, s.Publish("a/b", []byte("0"), false, 1))
	waitFor(t, func() bool { // the writer took it and blocks in the socket write
		if stalled.TryLock() {
			stalled.Unlock()
			return false
		}
		return true
	})
	finishes(t, "publish to a full queue", func() {
		for n := 1; n < messages; n++ {
			_ = s.Publish("a/b", []byte(strconv.Itoa(n)), false, 1)
		}
	})
	// Each message is in flight (being written or queued) or dropped; the
	// queue holds at most its bound.
	dropped := int(s.Info.MessagesDropped)
	require.LessOrEqual(t, len(stalled.State.outbound), queue)
	require.Positive(t, dropped)
	require.Equal(t, messages, dropped+stalled.State.Inflight.Len(), "a dropped delivery must leave the in-flight map")
}
