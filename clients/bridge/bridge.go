// Package bridge is a small client for bridge accounts: services that
// post system notifications to users and groups [IM-4.6] over MQTT, on the
// topic im/v1/sys/notify, with a token whose role claim is "bridge".
//
// A Bridge is one MQTT 5 connection. Notify (to a user) and NotifyGroup
// (to a group, of which the bridge need not be a member [IM-4.6-5]) are
// safe for concurrent use and return once the server has stored the
// notification (PUBACK after commit); they are idempotent per cmid, so a
// caller that got an error may retry with the same cmid on a new Bridge.
// Close ends the connection and its goroutines. The example command
// (clients/bridge/example) posts one notification per line of its input.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/mqim/mqim/protocol"
)

// Config is how a bridge connects.
type Config struct {
	Server   string        // host:port or mqtt://host:port of mqimd's MQTT listener; required
	User     string        // the bridge account's user id; required
	Token    string        // its JWT, with role "bridge"; required
	ClientID string        // zero: User + ".bridge"
	Timeout  time.Duration // per connect and per notification; zero: 10s
}

// Bridge is a connected bridge account.
type Bridge struct {
	cfg    Config
	client *paho.Client
}

// Error is a notification the server refused: Code is the spec's error
// code [IM-6.1] (not_authorized, bad_request, unknown_user, …).
type Error struct {
	Reason byte // PUBACK reason code
	Code   string
}

func (e *Error) Error() string {
	return fmt.Sprintf("bridge: notification refused: %s (0x%02x)", e.Code, e.Reason)
}

// Dial connects a bridge.
func Dial(ctx context.Context, cfg Config) (*Bridge, error) {
	if cfg.Server == "" || cfg.User == "" || cfg.Token == "" {
		return nil, errors.New("bridge: Server, User and Token are required")
	}
	if cfg.ClientID == "" {
		cfg.ClientID = cfg.User + ".bridge"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	addr := strings.TrimPrefix(strings.TrimPrefix(cfg.Server, "mqtt://"), "tcp://")
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	c := paho.NewClient(paho.ClientConfig{ClientID: cfg.ClientID, Conn: packets.NewThreadSafeConn(nc), PacketTimeout: cfg.Timeout})
	ca, err := c.Connect(ctx, &paho.Connect{
		ClientID: cfg.ClientID, CleanStart: true, KeepAlive: 30,
		Username: cfg.User, UsernameFlag: true, Password: []byte(cfg.Token), PasswordFlag: true,
	})
	if err != nil {
		if ca != nil {
			err = fmt.Errorf("%w (CONNACK 0x%02x)", err, ca.ReasonCode)
		}
		nc.Close()
		return nil, fmt.Errorf("bridge: connect: %w", err)
	}
	return &Bridge{cfg: cfg, client: c}, nil
}

// Sent is a stored notification: its message id, conversation and seq.
type Sent struct {
	ID   int64
	Conv string
	Seq  int64
}

// Notify posts a system notification with body to user to and waits for
// the server to store it. cmid identifies it: a retry with the same cmid
// stores nothing new [IM-4.5].
func (b *Bridge) Notify(ctx context.Context, to, cmid string, body map[string]any) (Sent, error) {
	return b.publish(ctx, to, &protocol.Send{Cmid: cmid, To: to, Type: protocol.TypeSystem, Body: body})
}

// NotifyGroup posts a system notification with body to group (a group
// conversation id, "g:…") and waits for the server to store it in the
// group's timeline [IM-4.6-5]: Sent.Conv is the group and Sent.Seq its conv
// seq. mentions, if any, are members' user ids or "*" [IM-11.6-1]. Every
// member gets it like a group message; the bridge gets nothing back, not
// even the members' answers [IM-4.6-7]. Errors are as for Notify, plus
// unknown_group.
func (b *Bridge) NotifyGroup(ctx context.Context, group, cmid string, body map[string]any, mentions ...string) (Sent, error) {
	return b.publish(ctx, group, &protocol.Send{Cmid: cmid, Group: group, Type: protocol.TypeSystem, Body: body, Mentions: mentions})
}

func (b *Bridge) publish(ctx context.Context, to string, msg *protocol.Send) (Sent, error) {
	payload, err := protocol.Encode(protocol.MsgPack, msg)
	if err != nil {
		return Sent{}, fmt.Errorf("bridge: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	defer cancel()
	r, err := b.client.Publish(ctx, &paho.Publish{QoS: 1, Topic: protocol.SysNotifyTopic, Payload: payload,
		Properties: &paho.PublishProperties{ContentType: protocol.ContentTypeMsgPack}})
	if r != nil && r.ReasonCode >= 0x80 {
		e := &Error{Reason: r.ReasonCode}
		if r.Properties != nil {
			e.Code = r.Properties.User.Get("code")
		}
		return Sent{}, e
	}
	if err != nil {
		return Sent{}, fmt.Errorf("bridge: notify %s: %w", to, err)
	}
	var s Sent
	if r != nil && r.Properties != nil {
		s.ID, _ = strconv.ParseInt(r.Properties.User.Get("id"), 10, 64)
		s.Conv = r.Properties.User.Get("conv")
		s.Seq, _ = strconv.ParseInt(r.Properties.User.Get("seq"), 10, 64)
	}
	return s, nil
}

// Close disconnects and stops the connection's goroutines.
func (b *Bridge) Close() error {
	if err := b.client.Disconnect(&paho.Disconnect{ReasonCode: 0}); err != nil {
		return fmt.Errorf("bridge: %w", err)
	}
	return nil
}
