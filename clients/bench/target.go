package bench

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/protocol/authtoken"
)

// Target is a server to load and the way to talk to it.
type Target struct {
	Name string // "mqimd" or "bare": the summary's target
	Addr string // host:port of the MQTT listener
	// Cluster: connection i of each kind goes to Nodes[i % len]; with
	// Cross, receiver i goes to the node after its sender's, so that every
	// message crosses between nodes.
	Nodes []string
	Cross bool
	// Memory, when set, reads the server's memory (the conns scenario).
	Memory func() (Mem, error)
	secret []byte // mqimd: JWT secret that tokens are minted with
	im     bool   // the mqim protocol; else plain topics
}

// IM reports whether the target speaks the mqim protocol (else plain
// topics on a bare MQTT broker).
func (t Target) IM() bool { return t.im }

// MQIMD is an mqim server at addr whose tokens are signed with secret.
// Senders publish sends to im/v1/u/bs{i}/send, receivers read the inbox
// of br{i} (MessagePack events).
func MQIMD(addr string, secret []byte) Target {
	return Target{Name: "mqimd", Addr: addr, secret: secret, im: true}
}

// BareTarget is a plain MQTT broker at addr: senders publish the text as
// the payload to bench/{i}, receivers subscribe to bench/{i}.
func BareTarget(addr string) Target {
	return Target{Name: "bare", Addr: addr}
}

// addr is where connection i (a receiver or a sender) connects.
func (t Target) addr(i int, receiver bool) string {
	if len(t.Nodes) == 0 {
		return t.Addr
	}
	if receiver && t.Cross {
		i++
	}
	return t.Nodes[i%len(t.Nodes)]
}

// ParseServer turns mqtt://host:port, tcp://host:port or host:port into
// host:port (port 1883 when absent).
func ParseServer(s string) (string, error) {
	for _, scheme := range []string{"mqtt://", "tcp://"} {
		s = strings.TrimPrefix(s, scheme)
	}
	if strings.Contains(s, "://") {
		return "", fmt.Errorf("server %q: only mqtt:// (plain TCP) is supported", s)
	}
	s = strings.TrimSuffix(s, "/")
	if _, _, err := net.SplitHostPort(s); err != nil {
		s = net.JoinHostPort(s, "1883")
		if _, _, err := net.SplitHostPort(s); err != nil {
			return "", fmt.Errorf("server %q: %w", s, err)
		}
	}
	return s, nil
}

func senderUser(i int) string   { return "bs" + strconv.Itoa(i) }
func receiverUser(i int) string { return "br" + strconv.Itoa(i) }

// credentials are the CONNECT username and password of user.
func (t Target) credentials(user string) (string, []byte, error) {
	if !t.im {
		return "", nil, nil
	}
	if len(t.secret) == 0 {
		return "", nil, errors.New("a JWT secret is needed to connect to mqimd")
	}
	tok, err := authtoken.Mint(t.secret, user, authtoken.RoleUser, 24*time.Hour)
	if err != nil {
		return "", nil, err
	}
	return user, []byte(tok), nil
}

// sendTopic is where sender i publishes.
func (t Target) sendTopic(i int) string {
	if t.im {
		return protocol.SendTopic(senderUser(i))
	}
	return "bench/" + strconv.Itoa(i)
}

// receiveTopic is what receiver i subscribes to.
func (t Target) receiveTopic(i int) string {
	if t.im {
		return protocol.InboxTopic(receiverUser(i))
	}
	return "bench/" + strconv.Itoa(i)
}

// payloadTo is what sender s.pair publishes for s, addressed to user to
// (mqimd; plain brokers take the text alone).
func (t Target) payloadTo(run string, s stamp, size int, to string) ([]byte, error) {
	text := s.appendText(make([]byte, 0, size+32), size)
	if !t.im {
		return text, nil
	}
	b, err := protocol.Encode(protocol.MsgPack, &protocol.Send{
		Cmid: run + "-" + strconv.Itoa(s.pair) + "-" + strconv.Itoa(s.seq),
		To:   to,
		Type: protocol.TypeText,
		Body: map[string]any{"text": string(text)},
	})
	if err != nil {
		return nil, fmt.Errorf("encode send: %w", err)
	}
	return b, nil
}

// errSkip marks a publish that carries no benchmark message (an event of
// another kind).
var errSkip = errors.New("not a message")

// text extracts the message text of a received publish.
func (t Target) text(p *paho.Publish) (string, error) {
	if !t.im {
		return string(p.Payload), nil
	}
	var ct string
	if p.Properties != nil {
		ct = p.Properties.ContentType
	}
	var ev protocol.Event
	if err := protocol.Decode(protocol.Detect(p.Payload, ct), p.Payload, &ev); err != nil {
		return "", err
	}
	if ev.Kind != protocol.KindMessage || ev.Msg == nil {
		return "", errSkip
	}
	text, ok := ev.Msg.Body["text"].(string)
	if !ok {
		return "", errSkip
	}
	return text, nil
}
