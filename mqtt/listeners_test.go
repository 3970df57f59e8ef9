package mqtt

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// mochi's write deadline holds over WebSocket: gorilla sets its own
// deadline on the socket before every frame, so one set on the socket
// directly was cleared and a WebSocket device that stopped reading was
// never disconnected [IM-5.2-8].
func TestWebSocketWriteDeadline(t *testing.T) {
	conns := make(chan *wsConn, 1)
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		conns <- &wsConn{Conn: c.NetConn(), c: c}
	}))
	defer srv.Close()
	client, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close() // and never read from

	ws := <-conns
	defer ws.Close()
	if err := ws.SetWriteDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := ws.Write(chunk); err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("write failed with %v, want the deadline", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("write to a peer that reads nothing still blocked after 10 s: the deadline was lost")
	}
}
