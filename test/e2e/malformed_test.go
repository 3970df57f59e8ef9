package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// The packets that killed a node (issue 15: mochi's SUBSCRIBE decoder read
// the MQTT 5 options byte unchecked, upstream issue #501) and others the
// decoders refuse: each closes only its own connection, MQTT 5 with a
// DISCONNECT saying why, and the node goes on serving everyone else.
func TestMalformedPacketsCloseOnlyTheirConnection(t *testing.T) {
	cases := []struct {
		name string
		raw  []byte
		code byte // DISCONNECT reason for MQTT 5
	}{
		{"subscribe without options byte", []byte{0x82, 0x06, 0x00, 0x01, 0x00, 0x00, 0x01, 0x61}, 0x81},
		{"subscribe with identifier 0", []byte{0x82, 0x08, 0x4f, 0xf0, 0x02, 0x0b, 0x00, 0x00, 0x01, 0x23}, 0x82},
		{"subscribe with reserved option bits", []byte{0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0xc1}, 0x81},
		{"pingreq with a body", []byte{0xc0, 0x01, 0x00}, 0x81},
		{"publish properties past the end", []byte{0x32, 0x08, 0x00, 0x01, 't', 0x00, 0x01, 0x7f, 0x01, 0x02}, 0x81},
		{"publish with a duplicate content type", []byte{0x30, 0x0d, 0x00, 0x01, 't', 0x08, 0x03, 0x00, 0x01, 'a', 0x03, 0x00, 0x01, 'b', 'x'}, 0x82},
		{"remaining length of five bytes", []byte{0xc0, 0x80, 0x80, 0x80, 0x80, 0x01}, 0x81},
	}
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		alice := dl.dial(t, n, "alice")
		bob := dl.dial(t, n, "bob")
		for i, c := range cases {
			if dl.version == 4 && (c.name == "publish properties past the end" || c.name == "publish with a duplicate content type") {
				continue // MQTT 5 properties: a 3.1.1 publish has none
			}
			mallory, _ := dialRawOK(t, n, dl, "mallory")
			mallory.writeBytes(c.raw)
			if dl.v5() {
				pk := mallory.read()
				if pk.FixedHeader.Type != packets.Disconnect || pk.ReasonCode != c.code {
					t.Fatalf("%s: got packet type %d reason %#x, want DISCONNECT %#x", c.name, pk.FixedHeader.Type, pk.ReasonCode, c.code)
				}
			}
			mallory.waitClosed()
			s := alice.sendOK(text("m"+strconv.Itoa(i), "bob", c.name))
			if ev := bob.nextMessage(); ev.Msg.ID != s.ID {
				t.Fatalf("after %s: bob got %v, want message %d", c.name, ev, s.ID)
			}
		}
	})
}

// The fuzz targets' corpora (upstream's packet fixtures, which seed them,
// and the inputs in third_party/mochi/testdata/fuzz) replayed against a
// running node, each on a connection of its own after a valid CONNECT: the
// node logs no error (a recovered panic is one) and keeps serving.
func TestFuzzCorporaKeepNodeServing(t *testing.T) {
	corpus := map[byte][][]byte{4: nil, 5: nil}
	for _, cases := range packets.TPacketData {
		for _, c := range cases {
			if len(c.RawBytes) > 0 {
				corpus[4] = append(corpus[4], c.RawBytes)
				corpus[5] = append(corpus[5], c.RawBytes)
			}
		}
	}
	for target, version := range map[string]byte{"FuzzRead311": 4, "FuzzServe311": 4, "FuzzRead5": 5, "FuzzServe5": 5} {
		corpus[version] = append(corpus[version], readCorpus(t, filepath.Join("..", "..", "third_party", "mochi", "testdata", "fuzz", target))...)
	}
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		alice := dl.dial(t, n, "alice")
		bob := dl.dial(t, n, "bob")
		for i, raw := range corpus[dl.version] {
			c, _ := dialRawOK(t, n, dl, "fuzzer")
			c.writeBytes(raw)
			c.closeWrite() // the node reads to the end, then EOF
			c.waitClosed()
			if i%200 == 0 {
				s := alice.sendOK(text("f"+strconv.Itoa(i), "bob", "still serving"))
				if ev := bob.nextMessage(); ev.Msg.ID != s.ID {
					t.Fatalf("after input %d: bob got %v, want message %d", i, ev, s.ID)
				}
			}
		}
		s := alice.sendOK(text("f-end", "bob", "still serving"))
		if ev := bob.nextMessage(); ev.Msg.ID != s.ID {
			t.Fatalf("after the corpus: bob got %v, want message %d", ev, s.ID)
		}
		t.Logf("%d inputs replayed", len(corpus[dl.version]))
	})
}

// readCorpus reads the []byte inputs of a go test fuzz corpus folder.
func readCorpus(t *testing.T, dir string) [][]byte {
	t.Helper()
	files, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line, ok := strings.CutPrefix(sc.Text(), "[]byte(")
			if !ok {
				continue
			}
			s, err := strconv.Unquote(strings.TrimSuffix(line, ")"))
			if err != nil {
				t.Fatalf("%s: %v", f.Name(), err)
			}
			out = append(out, []byte(s))
		}
	}
	return out
}

// writeBytes sends raw bytes, whatever they are.
func (c *rawClient) writeBytes(b []byte) {
	c.t.Helper()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(waitTimeout))
	if _, err := c.conn.Write(b); err != nil && !isClosed(err) {
		c.t.Fatalf("raw write: %v", err)
	}
}

// closeWrite half-closes the connection.
func (c *rawClient) closeWrite() {
	if tc, ok := c.conn.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

// waitClosed waits until the server has closed the connection, dropping
// whatever it sent before.
func (c *rawClient) waitClosed() {
	c.t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case _, ok := <-c.in:
			if !ok {
				return
			}
		case <-timeout:
			c.t.Fatalf("raw: the server did not close the connection within %v", waitTimeout)
		}
	}
}

// isClosed reports a write to a connection the server already closed.
func isClosed(err error) bool {
	s := err.Error()
	return strings.Contains(s, "broken pipe") || strings.Contains(s, "connection reset")
}

// CONNECT refusals the spec names [IM-3.1-4]: an empty password is bad
// credentials, MQTT 3.1 is refused as an unacceptable version, and a 3.1.1
// CONNECT with a protocol error is closed without a CONNACK (3.1.1 has no
// return code for it; mochi used to send MQTT 5's 0x82).
func TestConnectRefusals(t *testing.T) { forEachStore(t, testConnectRefusals) }

func testConnectRefusals(t *testing.T, be backend) {
	n := startNode(t, be)
	cases := []struct {
		name    string
		version byte
		proto   string
		pk      packets.ConnectParams
		want    int // CONNACK reason / return code; -1: closed without CONNACK
	}{
		{"empty password v5", 5, "MQTT", packets.ConnectParams{UsernameFlag: true, Username: []byte("alice"), PasswordFlag: true}, 0x86},
		{"empty password 3.1.1", 4, "MQTT", packets.ConnectParams{UsernameFlag: true, Username: []byte("alice"), PasswordFlag: true}, 4},
		{"MQTT 3.1", 3, "MQIsdp", packets.ConnectParams{UsernameFlag: true, Username: []byte("alice"), PasswordFlag: true, Password: []byte(token(t, "alice"))}, 1},
		{"will flag without will 3.1.1", 4, "MQTT", packets.ConnectParams{UsernameFlag: true, Username: []byte("alice"), PasswordFlag: true, Password: []byte(token(t, "alice")), WillRetain: true}, -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.DialTimeout("tcp", n.MQTTAddr(), waitTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			c.pk.ProtocolName = []byte(c.proto)
			c.pk.Clean = true
			c.pk.Keepalive = 30
			c.pk.ClientIdentifier = "alice.refused"
			pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: c.version, Connect: c.pk}
			var buf bytes.Buffer
			if err := pk.ConnectEncode(&buf); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Write(buf.Bytes()); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(waitTimeout))
			ack, err := readPacket(bufio.NewReader(conn), c.version)
			switch {
			case c.want < 0 && err == nil:
				t.Fatalf("got packet type %d reason %#x, want the connection closed without CONNACK", ack.FixedHeader.Type, ack.ReasonCode)
			case c.want < 0:
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatal("the connection stayed open")
				}
			case err != nil:
				t.Fatalf("no CONNACK: %v", err)
			case ack.FixedHeader.Type != packets.Connack || int(ack.ReasonCode) != c.want:
				t.Fatalf("got packet type %d reason %#x, want CONNACK %#x", ack.FixedHeader.Type, ack.ReasonCode, c.want)
			}
		})
	}
}

// Topic aliases from MQTT 5 devices (the server announces a Topic Alias
// Maximum): a publish may name its topic by an alias it set before; an
// empty topic without an alias, or with one never set, is a protocol error
// that closes the connection (§3.3.2.3.4). mochi used to drop alias-only
// publishes without a PUBACK, and mqim answered the others 0x87.
func TestTopicAliases(t *testing.T) { forEachStore(t, testTopicAliases) }

func testTopicAliases(t *testing.T, be backend) {
	n := startNode(t, be)
	bob := dialer{5}.dial(t, n, "bob")
	c, _ := dialRawOK(t, n, dialer{5}, "alice")
	send := func(id uint16, topic string, alias uint16, cmid string) {
		pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, PacketID: id, TopicName: topic,
			Payload: []byte(`{"cmid":"` + cmid + `","to":"bob","type":"text","body":{"text":"via alias"}}`)}
		if alias > 0 {
			pk.Properties.TopicAlias, pk.Properties.TopicAliasFlag = alias, true
		}
		c.write(pk)
	}
	ack := func(id uint16) byte {
		for {
			pk := c.read()
			if pk.FixedHeader.Type == packets.Puback && pk.PacketID == id {
				return pk.ReasonCode
			}
		}
	}
	send(1, "im/v1/u/alice/send", 3, "alias-1")
	if code := ack(1); code != 0 {
		t.Fatalf("publish setting alias 3: PUBACK %#x", code)
	}
	send(2, "", 3, "alias-2")
	if code := ack(2); code != 0 {
		t.Fatalf("publish by alias 3: PUBACK %#x", code)
	}
	for _, cmid := range []string{"alias-1", "alias-2"} {
		if ev := bob.nextMessage(); ev.Msg.Cmid != cmid {
			t.Fatalf("bob got %v, want %s", ev, cmid)
		}
	}
	for _, alias := range []uint16{9, 0} {
		c, _ = dialRawOK(t, n, dialer{5}, "alice")
		send(3, "", alias, "alias-3")
		for {
			pk := c.read()
			if pk.FixedHeader.Type == packets.Disconnect {
				if pk.ReasonCode != 0x82 {
					t.Fatalf("empty topic, alias %d: DISCONNECT %#x, want 0x82", alias, pk.ReasonCode)
				}
				break
			}
			if pk.FixedHeader.Type == packets.Puback {
				t.Fatalf("empty topic, alias %d: PUBACK %#x, want DISCONNECT 0x82", alias, pk.ReasonCode)
			}
		}
		c.waitClosed()
	}
}
