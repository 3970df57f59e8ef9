package mqtt

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	gosync "sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// connectTimeout bounds how long a new socket may take to send CONNECT;
// mochi waits forever otherwise (BROKER-NOTES.md). mochi replaces the
// deadline with the keepalive one once connected.
const connectTimeout = 10 * time.Second

// acceptListener fixes two things of mochi's TCP listener: it sets a
// deadline for CONNECT, and it survives temporary Accept errors (such as
// running out of file descriptors), on which mochi would stop serving.
type acceptListener struct {
	net.Listener
	log *slog.Logger
}

func (l *acceptListener) Accept() (net.Conn, error) {
	backoff := 5 * time.Millisecond
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(connectTimeout))
			return c, nil
		}
		if errors.Is(err, net.ErrClosed) {
			return nil, err
		}
		l.log.Warn("accept failed, retrying", "addr", l.Addr().String(), "error", err, "backoff", backoff)
		time.Sleep(backoff)
		backoff = min(2*backoff, time.Second)
	}
}

// wsListener serves MQTT over WebSocket on /mqtt [IM-1.1-2]. Unlike mochi's
// own, it binds its port before serving, so a taken port is an error at
// start, and it sets the CONNECT deadline too.
type wsListener struct {
	id        string
	ln        net.Listener
	srv       *http.Server
	upgrader  websocket.Upgrader
	establish listeners.EstablishFn
	log       *slog.Logger
	closeOnce gosync.Once
}

var _ listeners.Listener = (*wsListener)(nil)

// NewTCPListener serves MQTT over TCP on ln with acceptListener's fixes.
func NewTCPListener(id string, ln net.Listener, log *slog.Logger) listeners.Listener {
	return listeners.NewNet(id, &acceptListener{Listener: ln, log: log})
}

// NewWSListener serves MQTT over WebSocket on ln, path /mqtt; over wss
// when ln is a TLS listener (tls.NewListener).
func NewWSListener(id string, ln net.Listener) listeners.Listener {
	return newWSListener(id, ln)
}

func newWSListener(id string, ln net.Listener) *wsListener {
	l := &wsListener{id: id, ln: ln, upgrader: websocket.Upgrader{
		Subprotocols: []string{"mqtt"},
		// Browsers on any origin may connect: authentication is the token.
		CheckOrigin: func(*http.Request) bool { return true },
	}}
	mux := http.NewServeMux()
	mux.HandleFunc("/mqtt", l.handle)
	l.srv = &http.Server{Handler: mux, ReadHeaderTimeout: connectTimeout}
	return l
}

func (l *wsListener) ID() string       { return l.id }
func (l *wsListener) Address() string  { return l.ln.Addr().String() }
func (l *wsListener) Protocol() string { return "ws" }

func (l *wsListener) Init(log *slog.Logger) error {
	l.log = log
	// Failed wss handshakes are the clients' business.
	l.srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	return nil
}

func (l *wsListener) Serve(establish listeners.EstablishFn) {
	l.establish = establish
	if err := l.srv.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		l.log.Error("websocket listener stopped", "addr", l.Address(), "error", err)
	}
}

func (l *wsListener) handle(w http.ResponseWriter, r *http.Request) {
	c, err := l.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	_ = c.NetConn().SetDeadline(time.Now().Add(connectTimeout))
	if err := l.establish(l.id, &wsConn{Conn: c.NetConn(), c: c}); err != nil {
		l.log.Debug("websocket client closed", "error", err)
	}
}

// Close stops accepting connections; closeClients closes those it has. Like
// mochi's TCP listener, only the first call does anything.
func (l *wsListener) Close(closeClients listeners.CloseFn) {
	l.closeOnce.Do(func() {
		// Close (not Shutdown): the hijacked MQTT connections are not the
		// http.Server's to wait for.
		_ = l.srv.Close()
		closeClients(l.id)
	})
}

// wsConn is a WebSocket connection as a byte stream: MQTT packets may span
// or share binary frames.
type wsConn struct {
	net.Conn
	c *websocket.Conn
	r io.Reader
}

// ConnectionState is the TLS state of a wss connection (zero over ws): it
// carries the client certificate the auth hook looks for [IM-3.4-1].
func (ws *wsConn) ConnectionState() tls.ConnectionState {
	if tc, ok := ws.Conn.(*tls.Conn); ok {
		return tc.ConnectionState()
	}
	return tls.ConnectionState{}
}

func (ws *wsConn) Read(p []byte) (int, error) {
	for {
		if ws.r == nil {
			op, r, err := ws.c.NextReader()
			if err != nil {
				return 0, err
			}
			if op != websocket.BinaryMessage {
				return 0, errors.New("websocket: MQTT needs binary frames")
			}
			ws.r = r
		}
		n, err := ws.r.Read(p)
		if errors.Is(err, io.EOF) {
			ws.r = nil // end of this frame; the stream goes on in the next
			if n == 0 {
				continue
			}
			return n, nil
		}
		if err != nil {
			ws.r = nil
		}
		return n, err
	}
}

// SetWriteDeadline goes to the WebSocket connection, which sets its own
// deadline on the socket before every frame it writes: set on the socket
// directly, mochi's write deadline would be cleared [IM-5.2-8].
func (ws *wsConn) SetWriteDeadline(t time.Time) error { return ws.c.SetWriteDeadline(t) }

// SetDeadline sets both, as SetWriteDeadline explains.
func (ws *wsConn) SetDeadline(t time.Time) error {
	_ = ws.c.SetWriteDeadline(t)
	return ws.Conn.SetDeadline(t)
}

func (ws *wsConn) Write(p []byte) (int, error) {
	if err := ws.c.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}
