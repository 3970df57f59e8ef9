package sdk

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/mqim/mqim/protocol"
)

// Sent is a stored message as its success PUBACK describes it [IM-4.4-2].
type Sent struct {
	Cmid string // the cmid the message was sent with
	ID   int64  // message id
	Conv string // conversation id
	Seq  int64  // conversation seq
	// InboxSeq is the sender's inbox seq of the message, 0 when the PUBACK
	// answered a retry. The cursor never moves to it: the event itself
	// still arrives on the inbox.
	InboxSeq int64
}

// SendOption changes one send.
type SendOption func(*sendOpts)

type sendOpts struct {
	cmid     string
	mentions []string
}

// WithMentions marks members of a group as mentioned in a group message
// (user ids, or "*" for everyone) [IM-11.6].
func WithMentions(users ...string) SendOption { return func(o *sendOpts) { o.mentions = users } }

// WithCmid sends with the given cmid instead of a fresh one: for an
// application that stores its outgoing messages and sends them again after
// a restart. The cmid must be 1–64 bytes and never reused for another
// message [IM-4.5-4].
func WithCmid(cmid string) SendOption { return func(o *sendOpts) { o.cmid = cmid } }

// packetOverhead bounds the bytes of a send's PUBLISH besides topic and
// payload: fixed header, packet id, properties (content type).
const packetOverhead = 64

// maxInternalRetries bounds the retries of a send refused as internal
// ([IM-6.1-1]: "at most a few times").
const maxInternalRetries = 3

// Send sends a message of type typ (protocol.TypeText, protocol.TypeCustom)
// with body to user to, and returns once the server has stored it. Until
// then it retries with the same cmid, across reconnects and after
// retryable refusals (unavailable, overloaded), so the message is stored
// once however often it is sent [IM-4.5]. A refusal returns an *Error with
// the spec's code; ctx ending returns ctx's error wrapped, and the message
// may or may not be stored (send it again WithCmid to find out).
func (c *Client) Send(ctx context.Context, to, typ string, body map[string]any, opts ...SendOption) (Sent, error) {
	return c.send(ctx, protocol.Send{To: to, Type: typ, Body: body}, opts)
}

// SendGroup sends a message to a group the user is a member of [IM-11.5],
// like Send.
func (c *Client) SendGroup(ctx context.Context, group, typ string, body map[string]any, opts ...SendOption) (Sent, error) {
	return c.send(ctx, protocol.Send{Group: group, Type: typ, Body: body}, opts)
}

func (c *Client) send(ctx context.Context, msg protocol.Send, opts []SendOption) (Sent, error) {
	var o sendOpts
	for _, f := range opts {
		f(&o)
	}
	if o.cmid == "" {
		o.cmid = NewCmid()
	}
	if msg.Body == nil {
		msg.Body = map[string]any{}
	}
	msg.Cmid, msg.Mentions = o.cmid, o.mentions
	// Encoded once: a retry resends the identical payload [IM-4.5-3].
	payload, err := protocol.Encode(protocol.MsgPack, msg)
	if err != nil {
		return Sent{}, fmt.Errorf("mqim: send: %w", err)
	}
	pub := &paho.Publish{
		QoS:        1,
		Topic:      protocol.SendTopic(c.cfg.User),
		Payload:    payload,
		Properties: &paho.PublishProperties{ContentType: protocol.ContentTypeMsgPack},
	}
	var last error
	internal := 0
	for attempt := 0; ; attempt++ {
		cn, err := c.awaitConn(ctx)
		if err != nil {
			return Sent{}, c.stopErr("send "+o.cmid+" not acknowledged", err, last)
		}
		// A packet over the server's limit would cost the connection
		// (DISCONNECT 0x95) on every retry [IM-1.3-1]: refuse it here.
		if cn.maxPacket > 0 && len(payload)+len(pub.Topic)+packetOverhead > cn.maxPacket {
			return Sent{}, &Error{Code: protocol.CodeTooLarge, Message: fmt.Sprintf("%d bytes exceed the server's maximum packet size %d", len(payload), cn.maxPacket)}
		}
		actx, cancel := c.attempt(ctx, cn)
		resp, err := c.cm.Publish(actx, pub)
		cancel()
		if resp != nil && resp.ReasonCode >= 0x80 {
			e := pubackError(resp)
			if !e.Retryable() || (e.Code == protocol.CodeInternal && internal >= maxInternalRetries) {
				return Sent{}, e
			}
			if e.Code == protocol.CodeInternal {
				internal++
			}
			err = e
		} else if err == nil && resp != nil {
			return sentFrom(o.cmid, resp), nil
		} else if err == nil {
			err = errors.New("no PUBACK")
		}
		last = err
		c.log.Debug("mqim: send attempt failed; retrying with the same cmid", "cmid", o.cmid, "error", err)
		delay := retryDelay(attempt)
		var e *Error
		if errors.As(err, &e) {
			delay = max(delay, e.RetryAfter) // rate_limited [IM-1.3-6]
		}
		if !sleep(ctx, delay) {
			return Sent{}, c.stopErr("send "+o.cmid+" not acknowledged", ctx.Err(), last)
		}
	}
}

// SendText sends a text message [IM-4.2-1].
func (c *Client) SendText(ctx context.Context, to, text string, opts ...SendOption) (Sent, error) {
	return c.Send(ctx, to, protocol.TypeText, map[string]any{"text": text}, opts...)
}

// pubackError reads a failure PUBACK [IM-4.4-3].
func pubackError(r *paho.PublishResponse) *Error {
	e := &Error{Reason: r.ReasonCode}
	if r.Properties != nil {
		e.Code = r.Properties.User.Get("code")
		e.Message = r.Properties.ReasonString
		if ms, err := strconv.ParseInt(r.Properties.User.Get("retry_after_ms"), 10, 64); err == nil && ms > 0 {
			e.RetryAfter = time.Duration(ms) * time.Millisecond
		}
	}
	return e
}

func sentFrom(cmid string, r *paho.PublishResponse) Sent {
	s := Sent{Cmid: cmid}
	if r.Properties == nil {
		return s // Request Problem Information 0 would do this [IM-4.4-4]; not set here
	}
	u := r.Properties.User
	s.ID, _ = strconv.ParseInt(u.Get("id"), 10, 64)
	s.Conv = u.Get("conv")
	s.Seq, _ = strconv.ParseInt(u.Get("seq"), 10, 64)
	s.InboxSeq, _ = strconv.ParseInt(u.Get("inbox_seq"), 10, 64)
	return s
}

// NewCmid returns a fresh client message id: a ULID (26 characters of
// Crockford base32: 48 bits of milliseconds, 80 random bits), as the spec
// recommends [IM-3.3-5].
func NewCmid() string {
	const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixMilli())<<16)
	_, _ = rand.Read(b[6:])
	// 128 bits as 26 base32 digits, most significant first.
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}
