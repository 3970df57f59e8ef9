package mqtt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	gosync "sync"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/pires/go-proxyproto"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mqim/mqim/account"
	"github.com/mqim/mqim/im"
	"github.com/mqim/mqim/protocol"
)

// Per-connection buffers, the bulk of an idle connection's heap
// (docs/BENCHMARKS.md, conns). The outbound queue still holds a full
// Receive Maximum of deliveries; reads of larger packets go around the
// buffer.
const (
	outboundQueue = 256  // mochi's default 8192
	readBuffer    = 1024 // mochi's default 2048
)

// BrokerConfig configures a Broker. Zero values are not valid unless noted.
type BrokerConfig struct {
	// Members answers group membership for the group topic ACL [IM-2.2-4].
	Members        MemberChecker
	MaxPacket      int           // the announced Maximum Packet Size [IM-1.3]
	ReceiveMaximum int           // QoS 1 publishes in flight per MQTT 5 connection
	WriteTimeout   time.Duration // every socket write to a device [IM-5.2-8]
	// ServerReference tells draining MQTT 5 devices where to go (a
	// space-separated list); nil or "": DISCONNECT 0x8B without one.
	ServerReference func() string
	Log             *slog.Logger          // zero: slog.Default()
	Registerer      prometheus.Registerer // nil: metrics not registered
}

// Wiring is what connects the broker to the rest of the node, given to
// Attach once the core exists.
type Wiring struct {
	Core *im.Service
	// Auth configures the auth hook; its Devices and Members are the
	// broker's and need not be set.
	Auth AuthConfig
	// Router, when set, learns every device's connect and disconnect (the
	// cluster's routing table); nil: no presence hook.
	Router Router
	// Acks, when set, learns acknowledged deliveries and connects (offline
	// push); nil: none.
	Acks AckSink
}

// Broker is the embedded MQTT broker with mqim's hooks: the one owner of
// the mochi server. The rest of the node talks to devices only through it.
//
// Lifecycle: NewBroker, Attach, AddTCPListener/AddWSListener, Start; then
// StopAccepting when the drain begins and Shutdown once delivery has handed
// over what was committed.
type Broker struct {
	cfg      BrokerConfig
	log      *slog.Logger
	server   *mochi.Server
	inline   *mochi.Client
	sessions *Sessions
	members  *Members
	auth     *Auth    // after Attach
	ids      []string // of the listeners added
}

// NewBroker builds the broker; it serves nothing before Start.
func NewBroker(cfg BrokerConfig) *Broker {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	caps := mochi.NewDefaultServerCapabilities()
	caps.MaximumQos = 1
	caps.MinimumProtocolVersion = 4 // MQTT 3.1 (MQIsdp) is not supported [IM-1.1-1]
	caps.ReceiveMaximum = uint16(cfg.ReceiveMaximum)
	caps.MaximumPacketSize = uint32(HardPacketFactor * cfg.MaxPacket) // see NewPacketLimit
	// Memory per connection: mochi allocates the outbound queue (8 bytes
	// a slot) with every client; a full queue drops and the device syncs.
	caps.MaximumClientWritesPending = outboundQueue
	caps.MaximumMessageExpiryInterval = 3600
	caps.MaximumSessionExpiryInterval = 24 * 3600
	caps.SharedSubAvailable = 0
	// mochi would copy the publisher's user properties into the PUBACK and
	// may send the invalid reason 0x01 (BROKER-NOTES.md).
	caps.Compatibilities.NoInheritedPropertiesOnAck = true

	b := &Broker{cfg: cfg, log: cfg.Log, sessions: &Sessions{}, members: &Members{Store: cfg.Members}}
	b.server = mochi.New(&mochi.Options{
		ClientNetReadBufferSize: readBuffer,
		ClientWriteTimeout:      cfg.WriteTimeout, // [IM-5.2-8]
		Capabilities:            caps,
		InlineClient:            true,
		Logger:                  slog.New(Redact(cfg.Log.Handler())),
		SysTopicResendInterval:  60,
	})
	b.inline = b.server.NewClient(nil, mochi.LocalListener, "mqim-node", true)
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mqim_connected_devices", Help: "Devices (MQTT connections) connected to this node."},
				func() float64 { d, _ := b.Connected(); return float64(d) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mqim_connected_users", Help: "Users with a device connected to this node."},
				func() float64 { _, u := b.Connected(); return float64(u) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "mqim_connection_panics_total", Help: "Panics recovered while handling a connection (each closed that connection).",
				ConstLabels: prometheus.Labels{"where": "mqtt"},
			}, func() float64 { return float64(b.server.ConnectionPanics()) }),
		)
	}
	return b
}

// Attach adds mqim's hooks, in the order their OnPacketRead must run: the
// packet limit first, presence before auth (auth's OnDisconnect forgets
// the device), then the pipeline, the outbound transcoding, the
// backpressure counters and push's acknowledgements.
func (b *Broker) Attach(w Wiring) error {
	if b.auth != nil {
		return errors.New("mqtt: broker already attached")
	}
	hooks := []mochi.Hook{NewPacketLimit(uint32(b.cfg.MaxPacket), b.server)}
	if w.Router != nil {
		hooks = append(hooks, NewPresence(b.sessions, w.Router))
	}
	w.Auth.Devices, w.Auth.Members = b.sessions, b.members
	b.auth = NewAuth(b.server, w.Auth)
	hooks = append(hooks, b.auth)
	if w.Auth.Limits != nil {
		hooks = append(hooks, w.Auth.Limits) // counts connections per user
	}
	hooks = append(hooks,
		NewPipeline(PipelineConfig{
			Service: w.Core, Sessions: b.sessions, Respond: b, Disconnect: b.server,
			ReceiveMaximum: b.cfg.ReceiveMaximum, Log: b.log, Registerer: b.cfg.Registerer,
		}),
		NewOutbound(b.sessions, b.log, uint32(b.cfg.MaxPacket), b.cfg.Registerer),
		NewBackpressure(b.cfg.Registerer),
	)
	if w.Acks != nil {
		hooks = append(hooks, NewDeliveryAcks(b.sessions, w.Acks))
	}
	for _, h := range hooks {
		if err := b.server.AddHook(h, nil); err != nil {
			return fmt.Errorf("mqtt: add hook %s: %w", h.ID(), err)
		}
	}
	return nil
}

// AddTCPListener serves MQTT over TCP (or TLS, when ln is a TLS listener)
// on ln from Start on; id names it (mochi's listener id).
func (b *Broker) AddTCPListener(id string, ln net.Listener) error {
	return b.addListener(NewTCPListener(id, ln, b.log))
}

// AddWSListener serves MQTT over WebSocket (path /mqtt; wss when ln is a
// TLS listener) on ln from Start on.
func (b *Broker) AddWSListener(id string, ln net.Listener) error {
	return b.addListener(NewWSListener(id, ln))
}

func (b *Broker) addListener(l listeners.Listener) error {
	if err := b.server.AddListener(l); err != nil {
		return fmt.Errorf("mqtt: add listener %s: %w", l.ID(), err)
	}
	b.ids = append(b.ids, l.ID())
	return nil
}

// Start serves the listeners added; it returns at once.
func (b *Broker) Start(context.Context) error {
	if err := b.server.Serve(); err != nil {
		return fmt.Errorf("start MQTT server: %w", err)
	}
	return nil
}

// StopAccepting closes the listeners; connected devices stay. Closed this
// way, the listeners will not close their clients when Shutdown closes them
// again: Shutdown does, including connections that were still in their
// CONNECT.
func (b *Broker) StopAccepting() {
	// Not Listeners.CloseAll, which waits for every client to end.
	for _, id := range b.ids {
		b.server.Listeners.Close(id, func(string) {})
	}
}

// maxFlush bounds how long a drain waits for devices to take what was
// delivered to them: a device that stops reading must not hold the node.
const maxFlush = 10 * time.Second

// closeGrace is how long a draining node waits for a device to close its
// side after the node's FIN before closing the socket itself.
const closeGrace = 2 * time.Second

// Shutdown ends every connection and stops the broker: it waits until
// every device has been written what was queued for it (bounded by ctx and
// maxFlush), then tells MQTT 5 devices where to go — DISCONNECT 0x9C "use
// another server" with a Server Reference when one is known, else 0x8B
// "server shutting down" — and closes 3.1.1 connections; a device that
// does not close its side within closeGrace, or once ctx has ended, is
// closed. It returns when mochi's Close has waited for every connection to
// end.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.flush(ctx)
	ref := ""
	if b.cfg.ServerReference != nil {
		ref = b.cfg.ServerReference()
	}
	b.closeAll(ctx, ref)
	return nil
}

// flush waits until every device has been written what delivery queued
// for it (mochi writes on each client's own goroutine), so that the drain
// delivers what it committed [IM-1.1-4] and the DISCONNECT goes out after
// it, or until ctx or maxFlush ends.
func (b *Broker) flush(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, maxFlush)
	defer cancel()
	for {
		pending := false
		for _, cl := range b.server.Clients.GetAll() {
			if !cl.Net.Inline && !cl.Closed() && cl.WritesPending() {
				pending = true
				break
			}
		}
		if !pending {
			return
		}
		select {
		case <-ctx.Done():
			b.log.Warn("drain: disconnecting devices with deliveries still queued", "error", ctx.Err())
			return
		case <-time.After(10 * time.Millisecond): // a poll interval
		}
	}
}

// closeAll disconnects every client and stops mochi, whose Close waits for
// every connection to end. A connection that was still in its CONNECT when
// the listeners closed becomes a client later, so clients are disconnected
// again until Close returns.
func (b *Broker) closeAll(ctx context.Context, ref string) {
	closed := make(chan struct{})
	go func() { b.server.Close(); close(closed) }()
	// Each DISCONNECT is written on a goroutine of its own: a device that
	// stopped reading blocks only its own write, until closeGrace stops it.
	var writes gosync.WaitGroup
	defer writes.Wait()
	ending := map[*mochi.Client]time.Time{} // half-closed, waiting for the device to close
	for {
		for _, cl := range b.server.Clients.GetAll() {
			if cl.Net.Inline || cl.Closed() {
				continue
			}
			since, ok := ending[cl]
			switch {
			case !ok:
				ending[cl] = time.Now()
				writes.Go(func() { b.disconnect(cl, ref) })
			case time.Since(since) > closeGrace || ctx.Err() != nil:
				cl.Stop(packets.ErrServerShuttingDown)
			}
		}
		select {
		case <-closed:
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// disconnect tells an MQTT 5 client why it is disconnected and ends the
// connection. Over TCP the node only half-closes: closing a socket with
// unread input (the device's PUBACKs) sends a reset, and a reset makes the
// device's kernel drop what it had received but the app not yet read, the
// last deliveries and the DISCONNECT among them. After the FIN the device
// reads everything, closes, and the read loop ends (closeAll bounds it).
func (b *Broker) disconnect(cl *mochi.Client, ref string) {
	if cl.Properties.ProtocolVersion == 5 {
		pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect}, ReasonCode: packets.ErrServerShuttingDown.Code,
			Properties: packets.Properties{ReasonString: packets.ErrServerShuttingDown.Reason}}
		if ref != "" {
			pk.ReasonCode = packets.ErrUseAnotherServer.Code
			pk.Properties = packets.Properties{ServerReference: ref, ReasonString: packets.ErrUseAnotherServer.Reason}
		}
		_ = cl.WritePacket(pk)
	}
	if closeWrite(cl.Net.Conn) {
		return
	}
	cl.Stop(packets.ErrServerShuttingDown)
}

// closeWrite half-closes a connection for the drain (disconnect): TCP, also
// behind a PROXY protocol header, and TLS (close_notify: the device reads
// everything sent before it, then EOF).
func closeWrite(c net.Conn) bool {
	switch c := c.(type) {
	case *net.TCPConn:
		return c.CloseWrite() == nil
	case *proxyproto.Conn:
		tc, ok := c.TCPConn()
		return ok && tc.CloseWrite() == nil
	case *tls.Conn:
		return c.CloseWrite() == nil
	}
	return false
}

// End disconnects the live sessions on this node that m selects (the auth
// hook's End); it implements account.Sessions.
func (b *Broker) End(m account.Match, why account.Reason) int {
	if b.auth == nil {
		return 0
	}
	return b.auth.End(m, why)
}

// devices calls f for every connected device until f returns false.
func (b *Broker) devices(f func(cl *mochi.Client) bool) {
	for _, cl := range b.server.Clients.GetAll() {
		if cl.Net.Inline || cl.Closed() {
			continue
		}
		if !f(cl) {
			return
		}
	}
}

// Connected counts the devices connected here and their users.
func (b *Broker) Connected() (devices, users int) {
	seen := map[string]bool{}
	b.devices(func(cl *mochi.Client) bool {
		devices++
		seen[string(cl.Properties.Username)] = true
		return true
	})
	return devices, len(seen)
}

// UserOnline reports whether a device of user is connected to this node.
func (b *Broker) UserOnline(user string) bool {
	online := false
	b.devices(func(cl *mochi.Client) bool {
		online = string(cl.Properties.Username) == user
		return !online
	})
	return online
}

// TakeOver disconnects a device that connected again on another node
// [MQTT-3.1.4-2].
func (b *Broker) TakeOver(user, client string) {
	if cl, ok := b.server.Clients.Get(client); ok && !cl.Closed() && string(cl.Properties.Username) == user {
		b.log.Info("device moved to another node", "user", user, "client", client)
		_ = b.server.DisconnectClient(cl, packets.ErrSessionTakenOver)
	}
}

// Subscribed reports whether the client with this client id is connected
// with a subscription to exactly filter.
func (b *Broker) Subscribed(clientID, filter string) bool {
	cl, ok := b.server.Clients.Get(clientID)
	if !ok || cl.Closed() {
		return false
	}
	_, ok = cl.State.Subscriptions.Get(filter)
	return ok
}

// ClientRemote is the remote address of a connected client (behind a load
// balancer: the one of its PROXY protocol header), "" when it is not
// connected.
func (b *Broker) ClientRemote(clientID string) string {
	cl, ok := b.server.Clients.Get(clientID)
	if !ok || cl.Closed() {
		return ""
	}
	return cl.Net.Remote
}

// PublishInbox publishes an encoded event to a user's devices on this node.
func (b *Broker) PublishInbox(user string, payload []byte, at time.Time) {
	b.inject(protocol.InboxTopic(user), payload, packets.Properties{ContentType: EventContentType}, NewEncodings(payload, at), false)
}

// InboxSubscribed reports whether a device on this node subscribes to the
// user's inbox (persistent sessions of offline devices included).
func (b *Broker) InboxSubscribed(user string) bool {
	return len(b.server.Topics.Subscribers(protocol.InboxTopic(user)).Subscriptions) > 0
}

// PublishGroup publishes an encoded group event on a group topic to the
// member devices on this node [IM-11.3].
func (b *Broker) PublishGroup(conv string, payload []byte, at time.Time) {
	b.inject(protocol.GroupTopic(conv), payload, packets.Properties{ContentType: EventContentType}, NewEncodings(payload, at), false)
}

// ForgetMembers applies a committed membership change on this node (the
// local delivery sink calls it, for changes committed here and on other
// nodes): the cached answers of the group topic ACL are dropped, and the
// removed users' devices are unsubscribed from the group topic
// [IM-11.4-4]. mochi checks the ACL again on every delivery, so nothing
// published after this returns reaches them even if a subscription raced
// with it.
func (b *Broker) ForgetMembers(conv string, added, removed []string) {
	b.members.Forget(conv, append(slices.Clone(added), removed...)...)
	if len(removed) == 0 {
		return
	}
	topic := protocol.GroupTopic(conv)
	for _, cl := range b.server.Clients.GetAll() {
		if cl.Net.Inline || !slices.Contains(removed, string(cl.Properties.Username)) {
			continue
		}
		if _, ok := cl.State.Subscriptions.Get(topic); ok {
			b.server.Topics.Unsubscribe(topic, cl.ID)
			cl.State.Subscriptions.Delete(topic)
		}
	}
}

// PublishPresence publishes a user's new state, retained, on its presence
// topic [IM-15.3-1]. Every node learns every change from the routing table
// and keeps its own retained copy.
func (b *Broker) PublishPresence(user string, online bool) {
	payload, err := protocol.Encode(protocol.MsgPack, &protocol.Presence{User: user, Online: online, LastSeen: time.Now().UnixMilli()})
	if err != nil {
		b.log.Error("encode presence", "error", err)
		return
	}
	b.inject(protocol.PresenceTopic(user), payload, packets.Properties{ContentType: PresenceContentType}, nil, true)
}

// Respond publishes an RPC response.
func (b *Broker) Respond(topic string, correlation []byte, f protocol.Format, payload []byte) {
	b.inject(topic, payload, packets.Properties{ContentType: f.ContentType(), CorrelationData: correlation}, nil, false)
}

// inject publishes through mochi's inline client; shared travels with every
// subscriber's copy (the outbound hook's per-format encodings).
func (b *Broker) inject(topic string, payload []byte, props packets.Properties, shared any, retain bool) {
	err := b.server.InjectPacket(b.inline, packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1, Retain: retain},
		TopicName:   topic,
		Payload:     payload,
		Properties:  props,
		PacketID:    1, // never used: inline publishes are not acknowledged
		Shared:      shared,
	})
	if err != nil {
		b.log.Warn("publish failed", "topic", topic, "error", err)
	}
}
