// mqim patch: fuzz targets for every packet as the server reads it from a
// client's byte stream, MQTT 3.1.1 and 5 (README.md, "Fuzzing"). They call
// the decoders and handlers directly, outside the recovery of readClient,
// so every panic they can provoke is reported.
//
//	go test -run '^$' -fuzz '^FuzzServe5$' -fuzztime 10m github.com/mochi-mqtt/server/v2
//
// (from the mqim module root; scripts/fuzz runs every target in turn).

package mqtt

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/mochi-mqtt/server/v2/system"
)

// fuzzConn is a client connection whose bytes come from the fuzzer and
// whose writes are dropped.
type fuzzConn struct{ r *bytes.Reader }

func (c *fuzzConn) Read(b []byte) (int, error)  { return c.r.Read(b) }
func (c *fuzzConn) Write(b []byte) (int, error) { return len(b), nil }
func (c *fuzzConn) Close() error                { return nil }
func (c *fuzzConn) LocalAddr() net.Addr         { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1883} }
func (c *fuzzConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 40000}
}
func (c *fuzzConn) SetDeadline(time.Time) error      { return nil }
func (c *fuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fuzzConn) SetWriteDeadline(time.Time) error { return nil }

// fuzzSeeds are the seeds of the targets: every packet of upstream's
// fixtures of the given version (each type, valid and invalid), and the
// packets that crashed v2.7.9. mqim's end-to-end test replays the same
// fixtures and the fuzzers' corpora against a running node.
func fuzzSeeds(version byte) [][]byte {
	var seeds [][]byte
	for _, cases := range packets.TPacketData {
		for _, c := range cases {
			if c.Packet != nil && c.Packet.ProtocolVersion != 0 && c.Packet.ProtocolVersion != version && c.Packet.FixedHeader.Type != packets.Connect {
				continue
			}
			if len(c.RawBytes) > 0 {
				seeds = append(seeds, c.RawBytes)
			}
		}
	}
	return append(seeds,
		[]byte{0x82, 0x06, 0x00, 0x01, 0x00, 0x00, 0x01, 0x61},
		[]byte{0x82, 0x08, 0x4f, 0xf0, 0x02, 0x0b, 0x00, 0x00, 0x01, 0x23},
	)
}

var fuzzLog = slog.New(slog.NewTextHandler(io.Discard, nil))

func fuzzClient(data []byte, version byte) *Client {
	cl := newClient(&fuzzConn{r: bytes.NewReader(data)}, &ops{
		options: &Options{Capabilities: NewDefaultServerCapabilities(), ClientNetReadBufferSize: 1024},
		info:    new(system.Info),
		hooks:   &Hooks{Log: fuzzLog},
		log:     fuzzLog,
	})
	cl.Properties.ProtocolVersion = version
	return cl
}

// FuzzRead311 and FuzzRead5 decode a stream of packets as Client.Read
// does, then validate and re-encode each (mochi forwards decoded
// properties to subscribers, so encoding what was decoded must hold).
func FuzzRead311(f *testing.F) { fuzzRead(f, 4) }
func FuzzRead5(f *testing.F)   { fuzzRead(f, 5) }

func fuzzRead(f *testing.F, version byte) {
	for _, s := range fuzzSeeds(version) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cl := fuzzClient(data, version)
		for {
			fh := new(packets.FixedHeader)
			if err := cl.ReadFixedHeader(fh); err != nil {
				return
			}
			pk, err := cl.ReadPacket(fh)
			if err != nil {
				return
			}
			validate(pk)
			var buf bytes.Buffer
			_ = encode(&pk, &buf)
		}
	})
}

// FuzzServe311 and FuzzServe5 run a stream through a server as one
// connected client: an optional CONNECT first (validated and parsed as the
// connect phase does), then every packet through processPacket.
func FuzzServe311(f *testing.F) { fuzzServe(f, 4) }
func FuzzServe5(f *testing.F)   { fuzzServe(f, 5) }

func fuzzServe(f *testing.F, version byte) {
	for _, s := range fuzzSeeds(version) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := New(&Options{Logger: fuzzLog, InlineClient: true})
		defer stopTickers(s)
		_ = s.AddHook(new(fuzzAllowHook), nil)
		cl := s.NewClient(&fuzzConn{r: bytes.NewReader(data)}, "fuzz", "fuzz-client", false)
		cl.Properties.ProtocolVersion = version
		first := true
		for !cl.Closed() {
			fh := new(packets.FixedHeader)
			if err := cl.ReadFixedHeader(fh); err != nil {
				return
			}
			pk, err := cl.ReadPacket(fh)
			if err != nil {
				return
			}
			if first && pk.FixedHeader.Type == packets.Connect {
				cl.ParseConnect("fuzz", pk)
				if s.validateConnect(cl, pk) != packets.CodeSuccess {
					return
				}
				s.inheritClientSession(pk, cl)
				s.Clients.Add(cl)
				first = false
				continue
			}
			if first {
				s.Clients.Add(cl)
				first = false
			}
			if err := s.processPacket(cl, pk); err != nil {
				return
			}
		}
	})
}

// fuzzAllowHook allows every client and topic, so that the fuzzer reaches
// subscribe and publish handling.
type fuzzAllowHook struct{ HookBase }

func (h *fuzzAllowHook) ID() string { return "fuzz-allow" }
func (h *fuzzAllowHook) Provides(b byte) bool {
	return b == OnConnectAuthenticate || b == OnACLCheck
}
func (h *fuzzAllowHook) OnConnectAuthenticate(*Client, packets.Packet) bool { return true }
func (h *fuzzAllowHook) OnACLCheck(*Client, string, bool) bool              { return true }

func validate(pk packets.Packet) {
	switch pk.FixedHeader.Type {
	case packets.Connect:
		pk.ConnectValidate()
	case packets.Publish:
		pk.PublishValidate(65535)
	case packets.Subscribe:
		pk.SubscribeValidate()
	case packets.Unsubscribe:
		pk.UnsubscribeValidate()
	case packets.Auth:
		pk.AuthValidate()
	}
	pk.ReasonCodeValid()
}

func encode(pk *packets.Packet, buf *bytes.Buffer) error {
	switch pk.FixedHeader.Type {
	case packets.Connect:
		return pk.ConnectEncode(buf)
	case packets.Connack:
		return pk.ConnackEncode(buf)
	case packets.Publish:
		return pk.PublishEncode(buf)
	case packets.Puback:
		return pk.PubackEncode(buf)
	case packets.Pubrec:
		return pk.PubrecEncode(buf)
	case packets.Pubrel:
		return pk.PubrelEncode(buf)
	case packets.Pubcomp:
		return pk.PubcompEncode(buf)
	case packets.Subscribe:
		return pk.SubscribeEncode(buf)
	case packets.Suback:
		return pk.SubackEncode(buf)
	case packets.Unsubscribe:
		return pk.UnsubscribeEncode(buf)
	case packets.Unsuback:
		return pk.UnsubackEncode(buf)
	case packets.Pingreq:
		return pk.PingreqEncode(buf)
	case packets.Pingresp:
		return pk.PingrespEncode(buf)
	case packets.Disconnect:
		return pk.DisconnectEncode(buf)
	case packets.Auth:
		return pk.AuthEncode(buf)
	}
	return nil
}

// stopTickers stops the tickers New starts. Under this module's go 1.21
// timer semantics an unstopped ticker is never collected: a worker running
// thousands of servers a second ended up spending its time firing them and
// was reported as hung (twice, after about three minutes).
func stopTickers(s *Server) {
	for _, t := range []*time.Ticker{s.loop.sysTopics, s.loop.clientExpiry, s.loop.inflightExpiry, s.loop.retainedExpiry, s.loop.willDelaySend} {
		t.Stop()
	}
}
