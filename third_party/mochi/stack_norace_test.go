// mqim: regression test for the attachClient/connectClient patch (see
// README.md). It measures goroutine stacks, which the race detector's
// instrumentation makes larger (there both versions rest at the same size),
// so it builds without -race only; scripts/test runs it that way.

//go:build !race

package mqtt

import (
	"bytes"
	"net"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/stretchr/testify/require"
)

// Patch: server.go, attachClient's CONNECT phase moved into connectClient.
// CONNECT processing grows the connection's goroutine stack to 16 KiB; with
// the CONNECT locals in a frame popped before the read loop, the idle
// goroutine uses under a quarter of that, so the GC halves it. v2.7.9 kept
// them in attachClient's frame, under the read loop, and the stack stayed at
// 16 KiB: measured here, per idle connection (read and write goroutines),
// about 12 KiB patched and 20 KiB not.
func TestAttachClientIdleStackShrinks(t *testing.T) {
	const conns = 200

	s := newServer()
	defer s.Close()
	established := new(establishedHook)
	require.NoError(t, s.AddHook(established, nil))

	stackInuse := func() int64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.StackInuse)
	}
	// Earlier tests' goroutines shrink over several cycles; settle them first.
	for n := 0; n < 4; n++ {
		stackInuse()
	}
	before := stackInuse()

	peers := make([]net.Conn, 0, conns)
	defer func() {
		for _, c := range peers {
			_ = c.Close()
		}
	}()
	for n := 0; n < conns; n++ {
		r, w := net.Pipe()
		peers = append(peers, w)
		go func() { _ = s.EstablishConnection("tcp", r) }()
		pk := packets.Packet{
			FixedHeader:     packets.FixedHeader{Type: packets.Connect},
			ProtocolVersion: 5,
			Connect: packets.ConnectParams{
				ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 60,
				ClientIdentifier: "idle-" + strconv.Itoa(n),
			},
		}
		var b bytes.Buffer
		require.NoError(t, pk.ConnectEncode(&b))
		_, err := w.Write(b.Bytes())
		require.NoError(t, err)
		ack := make([]byte, 64)
		_, err = w.Read(ack) // the CONNACK
		require.NoError(t, err)
		require.Equal(t, packets.Connack<<4, ack[0])
	}
	// OnSessionEstablished is connectClient's last call: after it, the
	// connection's goroutine goes on to its read loop and waits there.
	waitFor(t, func() bool { return established.n.Load() == conns })

	// Without the patch the read goroutine alone keeps 16 KiB, and the write
	// goroutine adds at least 2 KiB; with it, the read goroutine rests at 8.
	perConn := (stackInuse() - before) / conns
	t.Logf("stack per idle connection after GC: %.1f KiB", float64(perConn)/1024)
	require.Less(t, perConn, int64(16<<10), "an idle connection's stacks should shrink below 16 KiB")
}

// establishedHook counts OnSessionEstablished calls.
type establishedHook struct {
	HookBase
	n atomic.Int64
}

func (h *establishedHook) ID() string { return "established" }

func (h *establishedHook) Provides(b byte) bool { return b == OnSessionEstablished }

func (h *establishedHook) OnSessionEstablished(cl *Client, pk packets.Packet) {
	h.n.Add(1)
}
