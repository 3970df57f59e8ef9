package e2e

import (
	"testing"

	"github.com/mqim/mqim/protocol"
)

// TestWebSocket: MQTT over WebSocket on /mqtt [IM-1.1-1], both versions,
// mixed with a TCP device.
func TestWebSocket(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		bob := dl.dial(t, n, "bob", overWebSocket())
		alice := dl.dial(t, n, "alice", overWebSocket())
		aliceTCP := dl.dial(t, n, "alice")

		res := alice.sendOK(text("ws-1", "bob", "over websocket"))
		ev := bob.nextMessage()
		if ev.Seq != 1 || ev.Msg.ID != res.ID || ev.Msg.Cmid != "ws-1" || ev.Msg.Body["text"] != "over websocket" || ev.Msg.From != "alice" {
			t.Fatalf("bob over WebSocket: %v", ev)
		}
		if ev := aliceTCP.nextMessage(); ev.Msg.Cmid != "ws-1" {
			t.Fatalf("alice over TCP: %v", ev)
		}
		// A reply from TCP to WebSocket, and an RPC over WebSocket.
		aliceTCP.sendOK(text("tcp-1", "bob", "over tcp"))
		if ev := bob.nextMessage(); ev.Seq != 2 || ev.Msg.Cmid != "tcp-1" {
			t.Fatalf("bob over WebSocket: %v", ev)
		}
		h := call[protocol.HistoryResult](bob, protocol.MethodHistory, protocol.HistoryRequest{With: "alice"})
		if len(h.Messages) != 2 || h.Messages[0].Cmid != "ws-1" || h.Messages[1].Cmid != "tcp-1" {
			t.Fatalf("history over WebSocket: %+v", h)
		}
	})
}
