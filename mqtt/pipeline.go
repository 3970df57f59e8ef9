package mqtt

import (
	"errors"
	"log/slog"
	"strconv"
	"strings"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mqim/mqim/im"
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// Responder publishes an RPC response to a reply topic.
type Responder interface {
	Respond(topic string, correlation []byte, f protocol.Format, payload []byte)
}

// Disconnecter closes a connection with a reason code.
type Disconnecter interface {
	DisconnectClient(cl *mochi.Client, code packets.Code) error
}

// PipelineConfig configures the pipeline hook.
type PipelineConfig struct {
	Service    *im.Service
	Sessions   *Sessions
	Respond    Responder
	Disconnect Disconnecter
	// ReceiveMaximum is the QoS 1 publishes in flight per MQTT 5
	// connection, as announced in CONNACK; zero: 256.
	ReceiveMaximum int
	Log            *slog.Logger
	Registerer     prometheus.Registerer // nil: metrics not registered
}

// Pipeline is the hook that turns device publishes into commands of the
// core [IM-2.2-1] — a send, a notification, an RPC, a typing signal — and
// writes their answers: the PUBACK, or for MQTT 3.1.1 an error event.
//
// mochi calls OnPublish on the publishing client's read goroutine and would
// write the PUBACK right after it, so the hook takes the packet instead
// (ErrRejectPacket) and acknowledges it itself once the core has answered,
// in arrival order per connection (acks.go). When the core's queue is full
// OnPublish blocks, which pushes back on the socket.
type Pipeline struct {
	mochi.HookBase
	cfg    PipelineConfig
	conns  conns
	resent prometheus.Counter
}

var _ mochi.Hook = (*Pipeline)(nil)

// NewPipeline returns the hook.
func NewPipeline(cfg PipelineConfig) *Pipeline {
	if cfg.ReceiveMaximum <= 0 {
		cfg.ReceiveMaximum = 256
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	p := &Pipeline{cfg: cfg, resent: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "mqim_packet_id_collisions_total", Help: "Deliveries re-issued because a client publish or (un)subscribe reused their packet id."})}
	acked := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "mqim_puback_seconds",
		Help:    "From reading a QoS 1 publish to writing its PUBACK (after commit, in arrival order).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	})
	p.conns.acked = acked
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(p.resent, acked)
	}
	return p
}

// ID names the hook.
func (p *Pipeline) ID() string { return "mqim-pipeline" }

// Provides lists the events handled.
func (p *Pipeline) Provides(b byte) bool {
	return b == mochi.OnPublish || b == mochi.OnPacketRead || b == mochi.OnDisconnect
}

// OnDisconnect drops the connection's pipeline state; pending PUBACKs can
// no longer be written, and the client resends those publishes. The core
// records the device's last seen [IM-15.2-3].
func (p *Pipeline) OnDisconnect(cl *mochi.Client, err error, expire bool) {
	p.conns.drop(cl)
	if !cl.Net.Inline {
		// The session registry has forgotten cl by now (the auth hook runs
		// first): the user is the CONNECT's.
		p.cfg.Service.Disconnected(&im.Session{User: string(cl.Properties.Username), Client: cl.ID})
	}
}

// OnPacketRead works around mochi's packet-id collision (docs/ARCHITECTURE.md):
// mochi keeps the ids of server→client and client→server QoS 1 publishes in
// one map, and a client publish whose id equals that of an unacknowledged
// delivery deletes the delivery, which is then never resent. Re-issue that
// delivery under a fresh id first; the device dedups by seq. A SUBSCRIBE or
// UNSUBSCRIBE with such an id would be refused with 0x91 (packet identifier
// in use) although the ids of the two directions are independent, so the
// delivery is moved out of its way too.
//
// It also handles QoS 2 [IM-1.3-2], which mochi would downgrade to QoS 1 and
// answer with a PUBACK where the client waits for a PUBREC: MQTT 5 devices
// were told Maximum QoS 1 and are disconnected (0x9B); for 3.1.1 the publish
// is answered with PUBREC after commit, and mochi completes the exchange.
func (p *Pipeline) OnPacketRead(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	switch pk.FixedHeader.Type {
	case packets.Publish:
	case packets.Subscribe, packets.Unsubscribe:
		p.reissue(cl, pk.PacketID)
		return pk, nil
	default:
		return pk, nil
	}
	if pk.FixedHeader.Qos == 2 && !cl.Net.Inline {
		if cl.Properties.ProtocolVersion == 5 {
			_ = p.cfg.Disconnect.DisconnectClient(cl, packets.ErrQosNotSupported) // [MQTT-3.2.2-11]
			return pk, packets.ErrRejectPacket
		}
		p.conns.get(cl, p.cfg.Sessions.Get(cl)).markQoS2(pk.PacketID)
	}
	topic := pk.TopicName
	if topic == "" && pk.Properties.TopicAliasFlag {
		// mochi resolves the alias after this hook; an alias never set
		// is a protocol error it answers (DISCONNECT 0x82).
		var ok bool
		if topic, ok = cl.State.TopicAliases.Inbound.Get(pk.Properties.TopicAlias); !ok {
			return pk, nil
		}
	}
	if !cl.Net.Inline && topic != "" && !mochi.IsValidFilter(topic, true) && !strings.ContainsAny(topic, "+#") {
		// mochi drops a publish to $SYS/… before any hook sees it, with no
		// PUBACK (the client would wait forever): refuse it here [IM-2.2-1].
		// (Wildcards in a topic name are a protocol error mochi handles.)
		_, _ = p.OnPublish(cl, pk)
		return pk, nil
	}
	if pk.FixedHeader.Qos > 0 {
		p.reissue(cl, pk.PacketID)
	}
	return pk, nil
}

// reissue re-sends the unacknowledged delivery to cl with packet id id, if
// any, under a fresh id, freeing id for the client's own packet. A delivery
// still held for the device's Receive Maximum moves to the new id and stays
// held: writing it now would exceed the quota.
func (p *Pipeline) reissue(cl *mochi.Client, id uint16) {
	if out, ok := cl.State.Inflight.Get(id); !ok || out.FixedHeader.Type != packets.Publish {
		return
	}
	next, err := cl.NextPacketID()
	if err != nil {
		return // no free id: the delivery is lost here and the device recovers by sync
	}
	out, held, ok := cl.State.Inflight.Reissue(id, uint16(next))
	if !ok {
		return
	}
	p.resent.Inc()
	if !held {
		_ = cl.WritePacket(out)
	}
}

// OnPublish takes every device publish [IM-2.2-1] and hands it to the core
// as the command its topic names.
func (p *Pipeline) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	dev := p.cfg.Sessions.Get(cl)
	c := p.conns.get(cl, dev)
	var s *slot
	if pk.FixedHeader.Qos > 0 {
		v5 := cl.Properties.ProtocolVersion == 5
		var ok bool
		if s, ok = c.push(pk.PacketID, p.cfg.ReceiveMaximum, !v5); !ok {
			if v5 {
				_ = p.cfg.Disconnect.DisconnectClient(cl, packets.ErrReceiveMaximum)
			}
			return pk, packets.ErrRejectPacket
		}
	}
	f := protocol.Detect(pk.Payload, pk.Properties.ContentType)
	t := protocol.ParseTopic(pk.TopicName)
	typingUser, typing := protocol.ParseTypingTopic(pk.TopicName)
	switch {
	case dev != nil && typing && typingUser == dev.User:
		if err := p.cfg.Service.Typing(c.sess, f, pk.Payload); err != nil {
			p.fail(c, s, "", err)
		} else {
			p.ack(c, s, nil)
		}
	case dev != nil && pk.TopicName == protocol.SysNotifyTopic:
		p.cfg.Service.Notify(c.sess, f, pk.Payload, p.answer(c, s))
	case dev == nil || t.User != dev.User || typing:
		p.fail(c, s, "", protocol.Errorf(protocol.CodeNotAuthorized, "may not publish to %q", pk.TopicName))
	case t.Kind == protocol.TopicSend:
		p.cfg.Service.Send(c.sess, f, pk.Payload, p.answer(c, s))
	case t.Kind == protocol.TopicRPC:
		p.rpc(c, s, pk, f, t.Method)
	default:
		p.fail(c, s, "", protocol.Errorf(protocol.CodeNotAuthorized, "may not publish to %q", pk.TopicName))
	}
	return pk, packets.ErrRejectPacket
}

// answer returns the function that acknowledges a send with its outcome.
func (p *Pipeline) answer(c *conn, s *slot) func(im.SendOutcome) {
	return func(o im.SendOutcome) {
		if o.Err != nil {
			p.fail(c, s, o.Cmid, o.Err)
			return
		}
		p.ack(c, s, successProps(o.Msg, o.InboxSeq))
	}
}

// rpc serves a request on im/v1/u/{uid}/rpc/{method} [IM-7.1]. The PUBACK
// only says the request was received; the answer goes to the reply topic.
func (p *Pipeline) rpc(c *conn, s *slot, pk packets.Packet, f protocol.Format, method string) {
	user := c.sess.User
	topic := pk.Properties.ResponseTopic
	if topic == "" {
		var env protocol.RequestEnvelope
		decodeErr := protocol.Decode(f, pk.Payload, &env)
		topic = env.ReplyTo
		if topic == "" && protocol.ValidID(c.cl.ID) {
			topic = protocol.ReplyTopic(user, c.cl.ID)
		}
		if topic == "" {
			err := protocol.Errorf(protocol.CodeBadRequest, "no reply topic: set Response Topic or reply_to")
			errors.As(decodeErr, &err) // an undecodable request is bad_payload [IM-7.1-3]
			p.fail(c, s, "", err)
			return
		}
	}
	if !strings.HasPrefix(topic, protocol.ReplyPrefix(user)) || topic == protocol.ReplyPrefix(user) || strings.ContainsAny(topic, "+#") {
		p.fail(c, s, "", protocol.Errorf(protocol.CodeNotAuthorized, "reply topic must be under %q", protocol.ReplyPrefix(user)))
		return
	}
	p.ack(c, s, nil)
	corr := pk.Properties.CorrelationData
	p.cfg.Service.Call(c.sess, method, f, pk.Payload, func(resp *protocol.Response) {
		payload, err := protocol.Encode(c.sess.Format, resp)
		if err != nil {
			p.cfg.Log.Error("encode rpc response", "method", method, "error", err)
			return
		}
		p.cfg.Respond.Respond(topic, corr, c.sess.Format, payload)
	})
}

// ack answers s with success; props go on MQTT 5 PUBACKs [IM-4.4-1].
func (p *Pipeline) ack(c *conn, s *slot, props []packets.UserProperty) {
	if s == nil {
		return
	}
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: s.ackType}, PacketID: s.packetID}
	if c.cl.Properties.ProtocolVersion == 5 {
		pk.Properties.User = props
	}
	s.conn.resolve(s, []packets.Packet{pk}, p.cfg.Service.Spawn)
}

// fail answers a publish with err [IM-2.2-1], [IM-4.4-2]: a PUBACK with the
// reason code for MQTT 5; for MQTT 3.1.1 (or QoS 0) an ephemeral error event
// on the device's inbox, then a plain PUBACK so the client does not resend.
func (p *Pipeline) fail(c *conn, s *slot, cmid string, err *protocol.Error) {
	v5 := c.cl.Properties.ProtocolVersion == 5
	var out []packets.Packet
	if !v5 || s == nil {
		if ev, ok := errorEvent(c, cmid, err); ok {
			out = append(out, ev)
		}
	}
	if s == nil {
		if len(out) > 0 {
			// Not on the caller's goroutine, which may be the committer: a
			// client that stops reading holds its lock while a write blocks.
			p.cfg.Service.Spawn(c.sess, func() { _ = c.cl.WritePacket(out[0]) })
		}
		return
	}
	ack := packets.Packet{FixedHeader: packets.FixedHeader{Type: s.ackType}, PacketID: s.packetID}
	if v5 {
		ack.ReasonCode = err.Reason()
		ack.Properties.ReasonString = err.Code // the code, not the message [IM-4.4-3]
		ack.Properties.User = []packets.UserProperty{{Key: "code", Val: err.Code}}
		if err.RetryAfterMs > 0 { // rate_limited [IM-1.3-6]
			ack.Properties.User = append(ack.Properties.User, packets.UserProperty{Key: "retry_after_ms", Val: strconv.FormatInt(err.RetryAfterMs, 10)})
		}
	}
	s.conn.resolve(s, append(out, ack), p.cfg.Service.Spawn)
}

// errorEvent builds an error event for c's device, if it subscribes to its
// inbox.
func errorEvent(c *conn, cmid string, err *protocol.Error) (packets.Packet, bool) {
	if c.sess.User == "" {
		return packets.Packet{}, false
	}
	topic := protocol.InboxTopic(c.sess.User)
	if _, ok := c.cl.State.Subscriptions.Get(topic); !ok {
		return packets.Packet{}, false
	}
	payload, e := protocol.Encode(c.sess.Format, &protocol.Event{Kind: protocol.KindError, Cmid: cmid, Error: err})
	if e != nil {
		return packets.Packet{}, false
	}
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, TopicName: topic, Payload: payload}
	if c.cl.Properties.ProtocolVersion == 5 {
		pk.Properties.ContentType = c.sess.Format.ContentType()
	}
	return pk, true
}

// successProps are the user properties of a success PUBACK [IM-4.4-1].
func successProps(m *store.Message, inboxSeq int64) []packets.UserProperty {
	props := []packets.UserProperty{
		{Key: "id", Val: strconv.FormatInt(m.ID, 10)},
		{Key: "conv", Val: m.Conv},
		{Key: "seq", Val: strconv.FormatInt(m.Seq, 10)},
	}
	if inboxSeq > 0 {
		props = append(props, packets.UserProperty{Key: "inbox_seq", Val: strconv.FormatInt(inboxSeq, 10)})
	}
	return props
}
