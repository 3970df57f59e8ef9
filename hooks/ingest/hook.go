// Package ingest is the send pipeline [IM-4]: the mochi hook that takes every
// publish of a device, validates and authorizes it, hands sends to a
// group-commit writer, answers with a PUBACK only after commit, and then
// passes the committed events to delivery. It also serves the RPC topic.
//
// mochi calls OnPublish on the publishing client's read goroutine and would
// write the PUBACK right after it, so the hook takes the packet instead
// (ErrRejectPacket) and acknowledges it itself once the batch commits, in
// arrival order per connection (see acker.go). The queue to the committer is
// bounded: when it is full OnPublish blocks, which pushes back on the socket.
//
// Concurrency: one committer goroutine owns the store writes, so commits and
// therefore deliveries happen in one order. RPCs run on a bounded set of
// goroutines. Shutdown stops intake, drains the queue and waits for all of it.
package ingest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"strconv"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mqim/mqim/hooks/device"
	"github.com/mqim/mqim/internal/snowflake"
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/protocol/authtoken"
	"github.com/mqim/mqim/store"
)

// Appender is the part of the store the pipeline writes through.
type Appender interface {
	Append(ctx context.Context, batch []store.SendRequest) ([]store.SendResult, error)
	AppendGroup(ctx context.Context, batch []store.SendRequest) ([]store.SendResult, error)
	ChangeGroup(ctx context.Context, c store.GroupChange) (store.GroupResult, error)
	MarkRead(ctx context.Context, user, conv string, seq int64) (store.ReadState, []store.InboxEvent, error)
}

// Groups takes what group changes and read-fan-out messages need beyond
// inbox events [IM-11.3]: Broadcast publishes a committed message on its
// group's topic; MembersChanged runs right after a membership change is
// committed and before anything later is delivered, so that a removed
// member's devices stop receiving the group at once.
type Groups interface {
	Broadcast(msg *store.Message)
	MembersChanged(conv string, added, removed []string)
}

// Deliverer takes committed events, in commit order, for delivery.
type Deliverer interface {
	Deliver(events []store.InboxEvent)
}

// Handler serves the read-only RPC methods (sync/catchup). Each returns
// the result to encode, or an error (a *protocol.Error for errors the
// client should see).
type Handler interface {
	Sync(ctx context.Context, user string, f protocol.Format, payload []byte) (any, error)
	History(ctx context.Context, user string, f protocol.Format, payload []byte) (any, error)
	Conversations(ctx context.Context, user string, f protocol.Format, payload []byte) (any, error)
	GroupInfo(ctx context.Context, user string, f protocol.Format, payload []byte) (any, error)
}

// Responder publishes an RPC response to a reply topic.
type Responder interface {
	Respond(topic string, correlation []byte, f protocol.Format, payload []byte)
}

// Disconnecter closes a connection with a reason code.
type Disconnecter interface {
	DisconnectClient(cl *mqtt.Client, code packets.Code) error
}

// Config configures the hook. Zero values mean the defaults noted.
type Config struct {
	Store      Appender
	Deliver    Deliverer
	Groups     Groups
	RPC        Handler
	Respond    Responder
	Disconnect Disconnecter
	Devices    *device.Registry
	IDs        *snowflake.Generator
	Ext        Ext                    // contacts, recall, edit, typing, presence (ext.go); nil: those methods are unknown
	Signal     Signaler               // relays typing signals (typing.go); nil: the typing topic is refused
	Online     func(user string) bool // whether a device of user is connected to any node (presence.go)
	Push       Pusher                 // push registrations (push.go); nil: push is off
	// RecallWindow is how long after sending a sender may recall [IM-14.1-1]; zero: 2 minutes.
	RecallWindow time.Duration

	MaxBody        int           // encoded body bytes; zero: 16 KiB
	MaxBatch       int           // sends per commit; zero: 512
	QueueSize      int           // queued operations; zero: 8192
	ReceiveMaximum int           // pending QoS 1 publishes per MQTT 5 connection; zero: 256
	RPCWorkers     int           // concurrent RPCs; zero: 64
	Timeout        time.Duration // per store call; zero: 10s
	// GroupReadFanout is the member count above which a group fans out on
	// read [IM-11.3-1]; zero: store.DefaultReadFanout.
	GroupReadFanout int
	Log             *slog.Logger
	Registerer      prometheus.Registerer // nil: metrics not registered
}

// Hook implements mqtt.Hook.
type Hook struct {
	mqtt.HookBase
	cfg   Config
	conns conns
	queue chan *op

	intake  gosync.RWMutex // write-locked once, by Shutdown
	stopped bool
	rpcSem  chan struct{}
	seenSem chan struct{}    // last-seen writes in flight (presence.go)
	workers gosync.WaitGroup // committer, RPC goroutines, ack writers
	done    chan struct{}    // closed when the committer has exited
	stop    gosync.Once
	started atomic.Bool

	// wmu guards waiting, set by Shutdown before it waits for workers:
	// goroutines spawned after that are not counted, as a WaitGroup must
	// not grow from zero while (or after) someone waits on it.
	wmu     gosync.Mutex
	waiting bool

	m      metrics
	typing limiter // typing.go
}

var _ mqtt.Hook = (*Hook)(nil)

// New returns the hook; Start starts its committer.
func New(cfg Config) *Hook {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 16 << 10
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 512
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 8192
	}
	if cfg.ReceiveMaximum <= 0 {
		cfg.ReceiveMaximum = 256
	}
	if cfg.RecallWindow <= 0 {
		cfg.RecallWindow = 2 * time.Minute
	}
	if cfg.RPCWorkers <= 0 {
		cfg.RPCWorkers = 64
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	h := &Hook{
		cfg:     cfg,
		queue:   make(chan *op, cfg.QueueSize),
		rpcSem:  make(chan struct{}, cfg.RPCWorkers),
		seenSem: make(chan struct{}, lastSeenWriters),
		done:    make(chan struct{}),
		m:       newMetrics(cfg.Registerer),
	}
	return h
}

// ID names the hook.
func (h *Hook) ID() string { return "mqim-ingest" }

// Provides lists the events handled.
func (h *Hook) Provides(b byte) bool {
	return b == mqtt.OnPublish || b == mqtt.OnPacketRead || b == mqtt.OnDisconnect
}

// Start starts the committer.
func (h *Hook) Start() {
	h.started.Store(true)
	h.workers.Add(1)
	go h.commitLoop()
}

// spawn runs f, work for the connection cl (nil if none), on a new
// goroutine, counted in h.workers unless Shutdown is already waiting for
// them (work that starts then is not waited for). A panic in f closes cl,
// not the node (see recoverConn).
func (h *Hook) spawn(cl *mqtt.Client, f func()) {
	h.wmu.Lock()
	counted := !h.waiting
	if counted {
		h.workers.Add(1)
	}
	h.wmu.Unlock()
	go func() {
		if counted {
			defer h.workers.Done()
		}
		defer h.recoverConn(cl)
		f()
	}()
}

// recoverConn is the seat belt of the goroutines spawned for a connection,
// as mochi's read and write loops have theirs (third_party/mochi): a panic
// is logged once with the stack, counted, and ends that connection only.
func (h *Hook) recoverConn(cl *mqtt.Client) {
	r := recover()
	if r == nil {
		return
	}
	h.m.panics.Inc()
	id := ""
	if cl != nil {
		id = cl.ID
	}
	h.cfg.Log.Error("panic while handling a connection's request; closed it",
		"client", id, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	if cl != nil {
		cl.Stop(fmt.Errorf("%w: %v", mqtt.ErrConnectionPanic, r))
	}
}

// Shutdown stops taking publishes (later ones are answered "unavailable"),
// commits and acknowledges everything already queued, and waits for running
// RPCs and acknowledgement writes, or for ctx.
func (h *Hook) Shutdown(ctx context.Context) error {
	h.stop.Do(func() {
		h.intake.Lock()
		h.stopped = true
		close(h.queue)
		h.intake.Unlock()
	})
	all := make(chan struct{})
	go func() {
		if h.started.Load() {
			<-h.done // the committer has drained the queue and resolved its acks
		}
		h.wmu.Lock()
		h.waiting = true
		h.wmu.Unlock()
		h.workers.Wait()
		close(all)
	}()
	select {
	case <-all:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("drain send pipeline: %w", ctx.Err())
	}
}

// OnDisconnect drops the connection's pipeline state; pending PUBACKs can
// no longer be written, and the client resends those publishes.
func (h *Hook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	h.conns.drop(cl)
	h.typing.forget(cl)
	h.lastSeen(cl) // presence.go
}

// OnPacketRead works around mochi's packet-id collision (BROKER-NOTES.md):
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
func (h *Hook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	switch pk.FixedHeader.Type {
	case packets.Publish:
	case packets.Subscribe, packets.Unsubscribe:
		h.reissue(cl, pk.PacketID)
		return pk, nil
	default:
		return pk, nil
	}
	if pk.FixedHeader.Qos == 2 && !cl.Net.Inline {
		if cl.Properties.ProtocolVersion == 5 {
			_ = h.cfg.Disconnect.DisconnectClient(cl, packets.ErrQosNotSupported) // [MQTT-3.2.2-11]
			return pk, packets.ErrRejectPacket
		}
		h.conns.get(cl).markQoS2(pk.PacketID)
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
	if !cl.Net.Inline && topic != "" && !mqtt.IsValidFilter(topic, true) && !strings.ContainsAny(topic, "+#") {
		// mochi drops a publish to $SYS/… before any hook sees it, with no
		// PUBACK (the client would wait forever): refuse it here [IM-2.2-1].
		// (Wildcards in a topic name are a protocol error mochi handles.)
		_, _ = h.OnPublish(cl, pk)
		return pk, nil
	}
	if pk.FixedHeader.Qos > 0 {
		h.reissue(cl, pk.PacketID)
	}
	return pk, nil
}

// reissue re-sends the unacknowledged delivery to cl with packet id id, if
// any, under a fresh id, freeing id for the client's own packet. A delivery
// still held for the device's Receive Maximum moves to the new id and stays
// held: writing it now would exceed the quota.
func (h *Hook) reissue(cl *mqtt.Client, id uint16) {
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
	h.m.resent.Inc()
	if !held {
		_ = cl.WritePacket(out)
	}
}

// OnPublish takes every device publish [IM-2.2-1].
func (h *Hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	var s *slot
	if pk.FixedHeader.Qos > 0 {
		v5 := cl.Properties.ProtocolVersion == 5
		var ok bool
		if s, ok = h.conns.get(cl).push(pk.PacketID, h.cfg.ReceiveMaximum, !v5); !ok {
			if v5 {
				_ = h.cfg.Disconnect.DisconnectClient(cl, packets.ErrReceiveMaximum)
			}
			return pk, packets.ErrRejectPacket
		}
	}
	dev := h.cfg.Devices.Get(cl)
	t := protocol.ParseTopic(pk.TopicName)
	switch {
	case dev != nil && h.extTopic(cl, dev, s, pk): // typing.go
	case dev != nil && pk.TopicName == protocol.SysNotifyTopic:
		h.notify(cl, dev, s, pk)
	case dev == nil || t.User != dev.User:
		h.fail(cl, s, "", protocol.Errorf(protocol.CodeNotAuthorized, "may not publish to %q", pk.TopicName))
	case t.Kind == protocol.TopicSend:
		h.send(cl, dev, s, pk)
	case t.Kind == protocol.TopicRPC:
		h.rpc(cl, dev, s, pk, t.Method)
	default:
		h.fail(cl, s, "", protocol.Errorf(protocol.CodeNotAuthorized, "may not publish to %q", pk.TopicName))
	}
	return pk, packets.ErrRejectPacket
}

// op is one unit of work for the committer.
type op struct {
	cl     *mqtt.Client
	slot   *slot
	send   *store.SendRequest
	read   *readOp
	change *changeOp
	ext    *extOp // other work ordered with sends (ext.go)
	// done, if set, takes the outcome of send instead of a PUBACK: a send
	// that came another way than MQTT (Submit).
	done func(store.SendResult, *protocol.Error)
}

// refuse answers a send op with err.
func (h *Hook) refuse(o *op, err *protocol.Error) {
	if o.done != nil {
		o.done(store.SendResult{}, err)
		return
	}
	h.fail(o.cl, o.slot, o.send.Cmid, err)
}

// accept answers a send op with its stored message; inboxSeq is the
// sender's inbox seq of it, if any.
func (h *Hook) accept(o *op, r *store.SendResult, inboxSeq int64) {
	if o.done != nil {
		o.done(*r, nil)
		return
	}
	h.ack(o.cl, o.slot, successProps(&r.Msg, inboxSeq))
}

// Submit commits a send that did not come over MQTT — a notification
// posted over HTTP [IM-8.1-6] — on the committer, so that it is ordered,
// committed and delivered (inbox events, other nodes, the group topic)
// exactly like a publish. req is complete (ID, TS and Digest set). It
// returns the store's result, or the error a publish would get
// (unavailable while the node shuts down). If ctx ends first the send may
// still be committed; a retry with the same cmid finds it.
func (h *Hook) Submit(ctx context.Context, req store.SendRequest) (store.SendResult, *protocol.Error) {
	type outcome struct {
		res store.SendResult
		err *protocol.Error
	}
	ch := make(chan outcome, 1)
	h.enqueue(&op{send: &req, done: func(r store.SendResult, err *protocol.Error) { ch <- outcome{r, err} }})
	select {
	case o := <-ch:
		return o.res, o.err
	case <-ctx.Done():
		return store.SendResult{}, protocol.Errorf(protocol.CodeUnavailable, "not committed in time, retry with the same cmid")
	}
}

func (h *Hook) send(cl *mqtt.Client, dev *device.Device, s *slot, pk packets.Packet) {
	req, err := h.parseSend(dev.User, pk, false)
	if err != nil {
		h.m.sends.WithLabelValues(err.Code).Inc()
		h.fail(cl, s, req.Cmid, err)
		return
	}
	h.enqueue(&op{cl: cl, slot: s, send: &req})
}

// notify takes a system notification from a bridge [IM-4.6]: a send of
// type system from the bridge's account, to a user or to a group (of which
// the bridge need not be a member [IM-4.6-5]: SendRequest.System),
// committed and delivered like any other message.
func (h *Hook) notify(cl *mqtt.Client, dev *device.Device, s *slot, pk packets.Packet) {
	if dev.Role != authtoken.RoleBridge {
		h.fail(cl, s, "", protocol.Errorf(protocol.CodeNotAuthorized, "only bridge accounts may publish to %q", pk.TopicName))
		return
	}
	req, err := h.parseSend(dev.User, pk, true)
	if err != nil {
		h.m.sends.WithLabelValues(err.Code).Inc()
		h.fail(cl, s, req.Cmid, err)
		return
	}
	h.enqueue(&op{cl: cl, slot: s, send: &req})
}

// parseSend decodes and validates a send [IM-4.1], [IM-4.2], or with
// system a notification [IM-4.6]. The returned request carries the cmid
// even on error, for the error event.
func (h *Hook) parseSend(user string, pk packets.Packet, system bool) (store.SendRequest, *protocol.Error) {
	var msg protocol.Send
	f := protocol.Detect(pk.Payload, pk.Properties.ContentType)
	if err := protocol.Decode(f, pk.Payload, &msg); err != nil {
		var pe *protocol.Error
		errors.As(err, &pe)
		// A field of the wrong type fails the whole decode; the error
		// event still names the cmid when it can be read [IM-4.4-6].
		var c struct {
			Cmid string `json:"cmid" msgpack:"cmid"`
		}
		if protocol.Decode(f, pk.Payload, &c) == nil && validCmid(c.Cmid) {
			return store.SendRequest{Cmid: c.Cmid}, pe
		}
		return store.SendRequest{}, pe
	}
	return h.ValidateSend(user, msg, system)
}

// ValidateSend validates a decoded send from user [IM-4.1], [IM-4.2], or
// with system a notification [IM-4.6], and turns it into the request the
// committer takes. MQTT sends and the HTTP API's notifications both come
// through here, so that they are refused alike. The returned request
// carries the cmid even on error, for the error event.
func (h *Hook) ValidateSend(user string, msg protocol.Send, system bool) (store.SendRequest, *protocol.Error) {
	if system && msg.Type == "" {
		msg.Type = protocol.TypeSystem // [IM-4.6-2]
	}
	req := store.SendRequest{From: user, Cmid: msg.Cmid, To: msg.To, Group: msg.Group, Type: msg.Type, System: system}
	switch {
	case system && msg.Type != protocol.TypeSystem:
		return req, protocol.Errorf(protocol.CodeBadRequest, "a notification has type %q", protocol.TypeSystem)
	case !validCmid(msg.Cmid):
		return req, protocol.Errorf(protocol.CodeBadRequest, "cmid must be 1 to 64 printable characters")
	case msg.Group != "" && msg.To != "":
		return req, protocol.Errorf(protocol.CodeBadRequest, "a send has either to or group, not both") // [IM-11.5-1]
	case msg.Group != "" && !protocol.IsGroupConv(msg.Group):
		return req, protocol.Errorf(protocol.CodeBadRequest, "group must be a group id (g:…)")
	case msg.Group == "" && !protocol.ValidID(msg.To):
		return req, protocol.Errorf(protocol.CodeBadRequest, "to must be a user id")
	case msg.To == user:
		return req, protocol.Errorf(protocol.CodeBadRequest, "cannot send to yourself")
	case len(msg.Mentions) > 0 && msg.Group == "":
		return req, protocol.Errorf(protocol.CodeBadRequest, "mentions are for group messages")
	case len(msg.Mentions) > MaxMentions:
		return req, protocol.Errorf(protocol.CodeBadRequest, "at most %d mentions", MaxMentions)
	case msg.Body == nil:
		return req, protocol.Errorf(protocol.CodeBadRequest, "body must be an object")
	case msg.Type == "":
		return req, protocol.Errorf(protocol.CodeBadRequest, "type is required") // [IM-4.1-3]
	}
	if msg.Type == protocol.TypeSystem {
		if !system {
			return req, protocol.Errorf(protocol.CodeUnknownType, "only bridges send %q messages, on %s", msg.Type, protocol.SysNotifyTopic)
		}
	} else if err := protocol.CheckBody(msg.Type, msg.Body); err != nil { // [IM-4.2], [IM-12.1]
		return req, err
	}
	if err := checkBody(msg.Body, maxDepth); err != nil {
		return req, err
	}
	body, err := protocol.Encode(protocol.MsgPack, msg.Body)
	if err != nil {
		return req, protocol.Errorf(protocol.CodeBadPayload, "body cannot be encoded: %v", err)
	}
	if len(body) > h.cfg.MaxBody {
		return req, protocol.Errorf(protocol.CodeTooLarge, "body is %d bytes, the limit is %d", len(body), h.cfg.MaxBody)
	}
	for _, m := range msg.Mentions {
		if m != "*" && !protocol.ValidID(m) {
			return req, protocol.Errorf(protocol.CodeBadRequest, "mention %q is not a user id or \"*\"", m)
		}
	}
	req.Mentions = msg.Mentions
	target := msg.To
	if msg.Group != "" {
		target = msg.Group
	}
	req.Body, req.Digest = body, Digest(target, msg.Type, body, msg.Mentions)
	req.ID = h.cfg.IDs.Next()
	req.TS = time.Now().UnixMilli()
	return req, nil
}

// Digest identifies what a send stores, so that a retry is told apart
// from a cmid reused for another message [IM-4.5-3], [IM-11.5-1]: its
// target (the user to, or the group), type, canonical body and mentions.
// A retry must repeat them all.
func Digest(target, typ string, body []byte, mentions []string) []byte {
	d := sha256.New()
	for _, part := range [][]byte{[]byte(target), []byte(typ), body} {
		d.Write(part)
		d.Write([]byte{0})
	}
	for _, m := range mentions {
		d.Write([]byte(m))
		d.Write([]byte{1})
	}
	return d.Sum(nil)
}

// MaxMentions bounds the mentions of one message [IM-11.6-1].
const MaxMentions = 100

// maxDepth bounds body nesting [IM-4.2-4], so that no client's decoder
// hits its own recursion limit on a body the server accepted.
const maxDepth = 32

// checkBody refuses bodies that some devices could not read [IM-4.2-4]:
// nesting deeper than left levels, and NaN or infinite numbers, which
// MessagePack carries but JSON cannot.
func checkBody(v any, left int) *protocol.Error {
	if left < 0 {
		return protocol.Errorf(protocol.CodeBadRequest, "body nests deeper than %d levels", maxDepth)
	}
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			if err := checkBody(e, left-1); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range x {
			if err := checkBody(e, left-1); err != nil {
				return err
			}
		}
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return protocol.Errorf(protocol.CodeBadRequest, "body numbers must be finite")
		}
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return protocol.Errorf(protocol.CodeBadRequest, "body numbers must be finite")
		}
	}
	return nil
}

func validCmid(s string) bool {
	if s == "" || len(s) > 64 || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// enqueue hands o to the committer, blocking while the queue is full.
func (h *Hook) enqueue(o *op) {
	h.intake.RLock()
	defer h.intake.RUnlock()
	if h.stopped {
		err := protocol.Errorf(protocol.CodeUnavailable, "node is shutting down")
		switch {
		case o.read != nil:
			o.read.reply(nil, err)
		case o.change != nil:
			o.change.reply(nil, err)
		case o.ext != nil:
			o.ext.reply(nil, err)
		default:
			h.refuse(o, err)
		}
		return
	}
	h.queue <- o
	h.m.queued.Inc()
}

// ack answers s with success; props go on MQTT 5 PUBACKs [IM-4.4-1].
func (h *Hook) ack(cl *mqtt.Client, s *slot, props []packets.UserProperty) {
	if s == nil {
		return
	}
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: s.ackType}, PacketID: s.packetID}
	if cl.Properties.ProtocolVersion == 5 {
		pk.Properties.User = props
	}
	s.conn.resolve(s, []packets.Packet{pk}, h.spawn)
}

// fail answers a publish with err [IM-2.2-1], [IM-4.4-2]: a PUBACK with the
// reason code for MQTT 5; for MQTT 3.1.1 (or QoS 0) an ephemeral error event
// on the device's inbox, then a plain PUBACK so the client does not resend.
func (h *Hook) fail(cl *mqtt.Client, s *slot, cmid string, err *protocol.Error) {
	v5 := cl.Properties.ProtocolVersion == 5
	var out []packets.Packet
	if !v5 || s == nil {
		if ev, ok := h.errorEvent(cl, cmid, err); ok {
			out = append(out, ev)
		}
	}
	if s == nil {
		if len(out) > 0 {
			// Not on the caller's goroutine, which may be the committer: a
			// client that stops reading holds its lock while a write blocks.
			h.spawn(cl, func() { _ = cl.WritePacket(out[0]) })
		}
		return
	}
	ack := packets.Packet{FixedHeader: packets.FixedHeader{Type: s.ackType}, PacketID: s.packetID}
	if v5 {
		ack.ReasonCode = err.Reason()
		ack.Properties.ReasonString = err.Code // the code, not the message [IM-4.4-3]
		ack.Properties.User = []packets.UserProperty{{Key: "code", Val: err.Code}}
	}
	s.conn.resolve(s, append(out, ack), h.spawn)
}

// errorEvent builds an error event for cl, if cl subscribes to its inbox.
func (h *Hook) errorEvent(cl *mqtt.Client, cmid string, err *protocol.Error) (packets.Packet, bool) {
	dev := h.cfg.Devices.Get(cl)
	if dev == nil {
		return packets.Packet{}, false
	}
	topic := protocol.InboxTopic(dev.User)
	if _, ok := cl.State.Subscriptions.Get(topic); !ok {
		return packets.Packet{}, false
	}
	payload, e := protocol.Encode(dev.Format, &protocol.Event{Kind: protocol.KindError, Cmid: cmid, Error: err})
	if e != nil {
		return packets.Packet{}, false
	}
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, TopicName: topic, Payload: payload}
	if cl.Properties.ProtocolVersion == 5 {
		pk.Properties.ContentType = dev.Format.ContentType()
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
