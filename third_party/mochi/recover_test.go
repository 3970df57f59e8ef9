// mqim patch: tests of Server.readClient's DISCONNECT on undecodable
// packets and of the panic recovery around a connection's goroutines
// (README.md).

package mqtt

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// mqimAllowHook lets every client in and allows every topic; its
// OnPacketRead panics on a PUBLISH to the topic "panic".
type mqimAllowHook struct{ HookBase }

func (h *mqimAllowHook) ID() string { return "mqim-test-allow" }
func (h *mqimAllowHook) Provides(b byte) bool {
	return b == OnConnectAuthenticate || b == OnACLCheck || b == OnPacketRead
}
func (h *mqimAllowHook) OnConnectAuthenticate(*Client, packets.Packet) bool { return true }
func (h *mqimAllowHook) OnACLCheck(*Client, string, bool) bool              { return true }
func (h *mqimAllowHook) OnPacketRead(cl *Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Type == packets.Publish && pk.TopicName == "panic" {
		panic("test: a packet handler panicked")
	}
	return pk, nil
}

// mqimLogs collects ERROR records.
type mqimLogs struct {
	mu   sync.Mutex
	errs []string
}

func mqimServer(t *testing.T) (*Server, string, *mqimLogs) {
	t.Helper()
	logs := &mqimLogs{}
	s := New(&Options{Logger: slog.New(&mqimLogHandler{logs})})
	if err := s.AddHook(new(mqimAllowHook), nil); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddListener(listeners.NewNet("t", ln)); err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, ln.Addr().String(), logs
}

// mqimConn is a raw MQTT connection.
type mqimConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

// mqimDial connects with the given protocol version (4 or 5) and client id
// and waits for a successful CONNACK.
func mqimDial(t *testing.T, addr string, version byte, id string) *mqimConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	mc := &mqimConn{t: t, c: c, r: bufio.NewReader(c)}
	body := []byte{0, 4, 'M', 'Q', 'T', 'T', version, 0x02, 0, 60}
	if version == 5 {
		body = append(body, 0) // no properties
	}
	body = append(body, 0, byte(len(id)))
	body = append(body, id...)
	mc.write(append([]byte{0x10, byte(len(body))}, body...))
	typ, ack := mc.read()
	if typ != packets.Connack || len(ack) < 2 || ack[1] != 0 {
		t.Fatalf("CONNECT: got type %d % x, want a successful CONNACK", typ, ack)
	}
	return mc
}

func (mc *mqimConn) write(b []byte) {
	mc.t.Helper()
	_ = mc.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := mc.c.Write(b); err != nil {
		mc.t.Fatalf("write: %v", err)
	}
}

// read reads one packet; io.EOF-like errors end the test.
func (mc *mqimConn) read() (byte, []byte) {
	mc.t.Helper()
	typ, body, err := mc.tryRead()
	if err != nil {
		mc.t.Fatalf("read: %v", err)
	}
	return typ, body
}

func (mc *mqimConn) tryRead() (byte, []byte, error) {
	_ = mc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	h, err := mc.r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, _, err := packets.DecodeLength(mc.r)
	if err != nil {
		return 0, nil, err
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(mc.r, body); err != nil {
		return 0, nil, err
	}
	return h >> 4, body, nil
}

// closed waits for the server to close the connection.
func (mc *mqimConn) closed() {
	mc.t.Helper()
	for {
		typ, body, err := mc.tryRead()
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			mc.t.Fatal("the server did not close the connection")
		case err != nil:
			return
		}
		mc.t.Logf("before the close: type %d % x", typ, body)
	}
}

// ping checks that the connection is served.
func (mc *mqimConn) ping() {
	mc.t.Helper()
	mc.write([]byte{0xc0, 0x00})
	if typ, _ := mc.read(); typ != packets.Pingresp {
		mc.t.Fatalf("PINGREQ answered with type %d", typ)
	}
}

// Upstream issue #501: one SUBSCRIBE killed the process.
func TestMalformedSubscribeDisconnects(t *testing.T) {
	cases := []struct {
		name string
		raw  []byte
		code byte
	}{
		{"no options byte", []byte{0x82, 0x06, 0x00, 0x01, 0x00, 0x00, 0x01, 0x61}, 0x81},
		{"subscription identifier 0", []byte{0x82, 0x08, 0x4f, 0xf0, 0x02, 0x0b, 0x00, 0x00, 0x01, 0x23}, 0x82},
		{"reserved option bits", []byte{0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0xc1}, 0x81},
		{"pingreq with a body", []byte{0xc0, 0x01, 0x00}, 0x81},
		{"duplicate content type", []byte{0x30, 0x0d, 0x00, 0x01, 't', 0x08, 0x03, 0x00, 0x01, 'a', 0x03, 0x00, 0x01, 'b', 'x'}, 0x82},
		{"reserved packet type", []byte{0x00, 0x00}, 0x81},
	}
	_, addr, _ := mqimServer(t)
	other := mqimDial(t, addr, 5, "bystander")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mc := mqimDial(t, addr, 5, "victim")
			mc.write(c.raw)
			typ, body := mc.read()
			if typ != packets.Disconnect || len(body) == 0 || body[0] != c.code {
				t.Fatalf("after % x: got type %d % x, want DISCONNECT %#x", c.raw, typ, body, c.code)
			}
			mc.closed()
			other.ping()
			// MQTT 3.1.1 has no DISCONNECT from the server: just closed.
			old := mqimDial(t, addr, 4, "victim311")
			old.write([]byte{0x82, 0x05, 0x00, 0x01, 0x00, 0x01, 'a'})
			old.closed()
			other.ping()
		})
	}
}

func TestPanicClosesOnlyThatConnection(t *testing.T) {
	s, addr, logs := mqimServer(t)
	other := mqimDial(t, addr, 5, "bystander")
	for i, version := range []byte{4, 5} {
		mc := mqimDial(t, addr, version, "victim")
		topic := "panic"
		body := append([]byte{0, byte(len(topic))}, topic...)
		if version == 5 {
			body = append(body, 0)
		}
		mc.write(append([]byte{0x30, byte(len(body))}, body...))
		mc.closed()
		other.ping()
		mqimDial(t, addr, version, "after").ping()
		if got := s.ConnectionPanics(); got != int64(i+1) {
			t.Fatalf("ConnectionPanics = %d, want %d", got, i+1)
		}
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	n := 0
	for _, e := range logs.errs {
		if strings.Contains(e, "panic while handling a connection") {
			n++
			if !strings.Contains(e, "client=victim") || !strings.Contains(e, "goroutine") {
				t.Errorf("the log names no client id or stack: %s", e)
			}
		}
	}
	if n != 2 {
		t.Fatalf("%d panic log records, want one per panic (2): %q", n, logs.errs)
	}
}

// mqimLogHandler is a slog.Handler writing ERROR records to mqimLogs.
type mqimLogHandler struct{ l *mqimLogs }

func (h *mqimLogHandler) Enabled(_ context.Context, lv slog.Level) bool {
	return lv >= slog.LevelError
}

func (h *mqimLogHandler) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool { msg += " " + a.String(); return true })
	h.l.mu.Lock()
	h.l.errs = append(h.l.errs, msg)
	h.l.mu.Unlock()
	return nil
}

func (h *mqimLogHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *mqimLogHandler) WithGroup(string) slog.Handler      { return h }
