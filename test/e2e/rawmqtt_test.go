package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	gosync "sync"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// rawClient is an MQTT client driven packet by packet, for what the client
// libraries will not do: choose packet ids, withhold acknowledgements,
// subscribe to filters the server announced it does not support. It encodes
// and decodes with mochi's packets package.
type rawClient struct {
	t       *testing.T
	conn    net.Conn
	version byte
	in      chan packets.Packet
	readErr chan error // receives the read loop's final error
	wmu     gosync.Mutex
}

// dialRaw connects and returns the client and the CONNACK.
// dialRawOK connects user as "{user}.raw" with a valid token and fails the
// test unless the CONNACK is a success; the CONNACK is returned.
func dialRawOK(t *testing.T, n *testNode, dl dialer, user string) (*rawClient, packets.Packet) {
	t.Helper()
	c, ca := dialRaw(t, n.MQTTAddr(), dl.version, user, user+".raw", token(t, user))
	if ca.ReasonCode != 0 {
		t.Fatalf("%s: CONNACK %#x", user, ca.ReasonCode)
	}
	return c, ca
}

func dialRaw(t *testing.T, addr string, version byte, user, clientID, tok string) (*rawClient, packets.Packet) {
	t.Helper()
	return dialRawProps(t, addr, version, user, clientID, tok, packets.Properties{})
}

// dialRawProps is dialRaw with MQTT 5 CONNECT properties.
func dialRawProps(t *testing.T, addr string, version byte, user, clientID, tok string, props packets.Properties) (*rawClient, packets.Packet) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := &rawClient{t: t, conn: conn, version: version, in: make(chan packets.Packet, 4096), readErr: make(chan error, 1)}
	t.Cleanup(func() { conn.Close() })
	go c.readLoop()
	c.write(packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: version,
		Connect: packets.ConnectParams{
			ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 60, ClientIdentifier: clientID,
			UsernameFlag: true, Username: []byte(user), PasswordFlag: true, Password: []byte(tok),
		},
		Properties: props,
	})
	ca := c.read()
	if ca.FixedHeader.Type != packets.Connack {
		t.Fatalf("raw %s: expected CONNACK, got packet type %d", clientID, ca.FixedHeader.Type)
	}
	return c, ca
}

func (c *rawClient) readLoop() {
	r := bufio.NewReader(c.conn)
	for {
		pk, err := readPacket(r, c.version)
		if err != nil {
			c.readErr <- err
			close(c.in)
			return
		}
		c.in <- pk
	}
}

// readPacket reads one MQTT packet.
func readPacket(r *bufio.Reader, version byte) (packets.Packet, error) {
	var pk packets.Packet
	b, err := r.ReadByte()
	if err != nil {
		return pk, err
	}
	if err := pk.FixedHeader.Decode(b); err != nil {
		return pk, err
	}
	n, _, err := packets.DecodeLength(r)
	if err != nil {
		return pk, err
	}
	pk.FixedHeader.Remaining = n
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return pk, err
	}
	pk.ProtocolVersion = version
	switch pk.FixedHeader.Type {
	case packets.Connack:
		err = pk.ConnackDecode(body)
	case packets.Publish:
		err = pk.PublishDecode(body)
	case packets.Puback:
		err = pk.PubackDecode(body)
	case packets.Pubrec:
		err = pk.PubrecDecode(body)
	case packets.Pubcomp:
		err = pk.PubcompDecode(body)
	case packets.Suback:
		err = pk.SubackDecode(body)
	case packets.Disconnect:
		err = pk.DisconnectDecode(body)
	case packets.Pingresp:
	default:
		err = fmt.Errorf("unexpected packet type %d", pk.FixedHeader.Type)
	}
	return pk, err
}

// write encodes and sends pk.
func (c *rawClient) write(pk packets.Packet) {
	c.t.Helper()
	pk.ProtocolVersion = c.version
	var buf bytes.Buffer
	var err error
	switch pk.FixedHeader.Type {
	case packets.Connect:
		err = pk.ConnectEncode(&buf)
	case packets.Publish:
		err = pk.PublishEncode(&buf)
	case packets.Puback:
		err = pk.PubackEncode(&buf)
	case packets.Pubrel:
		pk.FixedHeader.Qos = 1 // fixed header flags 0010 [MQTT-3.6.1-1]
		err = pk.PubrelEncode(&buf)
	case packets.Subscribe:
		pk.FixedHeader.Qos = 1 // fixed header flags 0010 [MQTT-3.8.1-1]
		err = pk.SubscribeEncode(&buf)
	case packets.Disconnect:
		err = pk.DisconnectEncode(&buf)
	default:
		err = fmt.Errorf("cannot encode packet type %d", pk.FixedHeader.Type)
	}
	if err != nil {
		c.t.Fatal(err)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := c.conn.Write(buf.Bytes()); err != nil {
		c.t.Fatalf("raw write: %v", err)
	}
}

// read returns the next packet, failing the test on timeout or close.
func (c *rawClient) read() packets.Packet {
	c.t.Helper()
	select {
	case pk, ok := <-c.in:
		if !ok {
			c.t.Fatalf("raw: connection closed: %v", <-c.readErr)
		}
		return pk
	case <-time.After(waitTimeout):
		c.t.Fatalf("raw: no packet within %v", waitTimeout)
	}
	return packets.Packet{}
}

// subscribe sends one SUBSCRIBE with the filters (QoS 1) and returns the
// SUBACK reason codes; other packets read meanwhile are returned too.
func (c *rawClient) subscribe(id uint16, filters ...string) (codes []byte, other []packets.Packet) {
	c.t.Helper()
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe}, PacketID: id}
	for _, f := range filters {
		pk.Filters = append(pk.Filters, packets.Subscription{Filter: f, Qos: 1})
	}
	c.write(pk)
	for {
		r := c.read()
		if r.FixedHeader.Type == packets.Suback && r.PacketID == id {
			return r.ReasonCodes, other
		}
		other = append(other, r)
	}
}

func (c *rawClient) publish(id uint16, topic string, payload []byte) {
	c.t.Helper()
	c.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, PacketID: id,
		TopicName: topic, Payload: payload})
}

func (c *rawClient) puback(id uint16) {
	c.t.Helper()
	c.write(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: id})
}
