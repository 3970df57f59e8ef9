// Package server runs one mqim node: the embedded mochi MQTT broker with its
// TCP and WebSocket listeners, the hooks that make it an IM server, local
// delivery, and the HTTP API. It owns the node's lifecycle: New builds,
// Start binds and serves, Shutdown drains and stops.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/pires/go-proxyproto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/mqim/mqim/account"
	"github.com/mqim/mqim/delivery"
	"github.com/mqim/mqim/delivery/cluster"
	"github.com/mqim/mqim/delivery/local"
	"github.com/mqim/mqim/delivery/routes"
	"github.com/mqim/mqim/httpapi"
	"github.com/mqim/mqim/im"
	"github.com/mqim/mqim/internal/certs"
	"github.com/mqim/mqim/internal/snowflake"
	"github.com/mqim/mqim/media"
	imqtt "github.com/mqim/mqim/mqtt"
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/protocol/authtoken"
	"github.com/mqim/mqim/push"
)

// Per-connection buffers, the bulk of an idle connection's heap
// (docs/BENCHMARKS.md, conns). The outbound queue still holds a full
// Receive Maximum of deliveries; reads of larger packets go around the
// buffer.
const (
	outboundQueue = 256  // mochi's default 8192
	readBuffer    = 1024 // mochi's default 2048
)

// Node is one running mqim server.
type Node struct {
	cfg      Config
	log      *slog.Logger
	mqtt     *mqtt.Server
	inline   *mqtt.Client
	core     *im.Service
	deliver  *delivery.Dispatcher
	fanout   *local.Fanout
	bus      *cluster.Bus  // nil without NATS
	table    *routes.Table // nil without NATS
	devices  *imqtt.Sessions
	limits   *imqtt.ConnLimits // CONNECT limits (limits.go)
	members  *imqtt.Members
	media    *media.Handler   // nil: attachments disabled
	auth     *httpapi.Auth    // the bearer check of every HTTP endpoint
	accounts *account.Service // account control [IM-8.3]
	adminAPI *httpapi.Admin
	push     *push.Service // nil: push off (push.go)
	ids      *snowflake.Generator
	http     map[string]*http.Server // by listener name (listeners.go)
	draining atomic.Bool
	health   health // health.go

	certs     *certs.Reloader // nil: no TLS
	certID    imqtt.CertIdentity
	proxy     proxyproto.ConnPolicyFunc // nil: no PROXY protocol
	listeners map[string]*boundListener // by name, after Start
	certsStop context.CancelFunc
	certsDone chan struct{}
	mod       moderator // word lists and webhook (moderation.go)

	shutdown    gosync.Once
	shutdownErr error
}

// New builds a node; it starts nothing.
func New(cfg Config) (*Node, error) {
	if cfg.Tokens == nil {
		if len(cfg.Secret) == 0 {
			return nil, errors.New("server: a JWT secret or a token verifier is required")
		}
		v, err := authtoken.NewVerifier(authtoken.VerifierConfig{Secret: cfg.Secret})
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		cfg.Tokens = v
	}
	if cfg.Store == nil {
		return nil, errors.New("server: a store is required")
	}
	cfg.setDefaults()
	if err := cfg.Limits.Validate(); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
		cfg.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	ids, err := snowflake.New(cfg.NodeID)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	// Before anything that starts goroutines: a bad media configuration
	// leaves nothing running.
	httpAuth := &httpapi.Auth{Tokens: cfg.Tokens, Users: cfg.Store}
	mediaHandler, err := newMedia(cfg, httpAuth)
	if err != nil {
		return nil, err
	}
	crt, certID, proxy, err := tlsSetup(cfg)
	if err != nil {
		return nil, err
	}

	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumQos = 1
	caps.MinimumProtocolVersion = 4 // MQTT 3.1 (MQIsdp) is not supported [IM-1.1-1]
	caps.ReceiveMaximum = uint16(cfg.ReceiveMaximum)
	caps.MaximumPacketSize = uint32(imqtt.HardPacketFactor * cfg.MaxPacket) // see mqtt.NewPacketLimit
	// Memory per connection: mochi allocates the outbound queue (8 bytes
	// a slot) with every client; a full queue drops and the device syncs.
	caps.MaximumClientWritesPending = outboundQueue
	caps.MaximumMessageExpiryInterval = 3600
	caps.MaximumSessionExpiryInterval = 24 * 3600
	caps.SharedSubAvailable = 0
	// mochi would copy the publisher's user properties into the PUBACK and
	// may send the invalid reason 0x01 (BROKER-NOTES.md).
	caps.Compatibilities.NoInheritedPropertiesOnAck = true

	n := &Node{cfg: cfg, log: cfg.Log, devices: &imqtt.Sessions{}, members: &imqtt.Members{Store: cfg.Store}, ids: ids, media: mediaHandler, auth: httpAuth,
		certs: crt, certID: certID, proxy: proxy}
	n.mqtt = mqtt.New(&mqtt.Options{
		ClientNetReadBufferSize: readBuffer,
		ClientWriteTimeout:      cfg.WriteTimeout, // [IM-5.2-8]
		Capabilities:            caps,
		InlineClient:            true,
		Logger:                  slog.New(imqtt.Redact(cfg.Log.Handler())),
		SysTopicResendInterval:  60,
	})
	n.inline = n.mqtt.NewClient(nil, mqtt.LocalListener, "mqim-node", true)
	n.fanout = local.New(n, local.Config{Log: cfg.Log, Registerer: cfg.Registry})
	sinks := []delivery.Sink{n.fanout}
	var hooks []mqtt.Hook // OnPacketRead runs in this order: the limit first
	hooks = append(hooks, imqtt.NewPacketLimit(uint32(cfg.MaxPacket), n.mqtt))
	if cfg.NATS != nil {
		if cfg.NodeName == "" {
			cfg.NodeName = fmt.Sprintf("node-%d", cfg.NodeID)
			n.cfg.NodeName = cfg.NodeName
		}
		if !cfg.Standalone {
			if n.bus, err = cluster.New(cfg.NATS, cluster.Config{
				Local: n.fanout, Replicas: cfg.Replicas, Log: cfg.Log, Registerer: cfg.Registry,
			}); err != nil {
				return nil, err
			}
			sinks = append(sinks, n.bus)
		}
		if n.table, err = routes.New(cfg.NATS, routes.Config{
			Node: cfg.NodeName, Advertise: cfg.Advertise, Replicas: cfg.Replicas, TTL: cfg.RouteTTL, Log: cfg.Log,
			TakenOver: n.takenOver, Changed: n.presenceChanged,
		}); err != nil {
			return nil, err
		}
		// Before auth: auth's OnDisconnect forgets the device.
		hooks = append(hooks, imqtt.NewPresence(n.devices, n.table))
	}
	// One delivery port for the core: inbox events, group broadcasts,
	// membership changes and signals, to this node and the others.
	n.deliver = delivery.NewDispatcher(sinks...)
	consumers, pushHook, err := n.newPush([]im.Consumer{n.deliver}) // of committed events
	if err != nil {
		return nil, err
	}
	words, beforeSend, err := n.newModeration(cfg)
	if err != nil {
		return nil, err
	}
	n.core = im.New(im.Config{
		Store:           cfg.Store,
		Consumers:       consumers,
		Groups:          n.deliver,
		Signal:          n.deliver,
		Online:          n.userOnline,
		IDs:             ids,
		Push:            n.pusher(),
		MaxBody:         cfg.MaxBody,
		RecallWindow:    cfg.RecallWindow,
		GroupReadFanout: cfg.GroupReadFanout,
		Words:           words,
		BeforeSend:      beforeSend,
		BeforeSendCalls: cfg.Moderation.WebhookCalls,
		Limits:          cfg.Limits.core(),
		Log:             cfg.Log,
		Registerer:      cfg.Registry,
	})
	n.limits = n.newConnLimits()
	authHook := imqtt.NewAuth(n.mqtt, imqtt.AuthConfig{Tokens: cfg.Tokens, Users: cfg.Store, Devices: n.devices, Members: n.members, Log: cfg.Log,
		PresenceAllowed: (&presenceACL{store: cfg.Store}).allowed, CertIdentity: certID, Limits: n.limits})
	hooks = append(hooks,
		authHook,
		n.limits,
		imqtt.NewPipeline(imqtt.PipelineConfig{
			Service: n.core, Sessions: n.devices, Respond: n, Disconnect: n.mqtt,
			ReceiveMaximum: cfg.ReceiveMaximum, Log: cfg.Log, Registerer: cfg.Registry,
		}),
		imqtt.NewOutbound(n.devices, cfg.Log, uint32(cfg.MaxPacket), cfg.Registry),
		imqtt.NewBackpressure(cfg.Registry),
	)
	if pushHook != nil {
		hooks = append(hooks, pushHook)
	}
	cfg.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mqim_connected_devices", Help: "Devices (MQTT connections) connected to this node."},
			func() float64 { d, _ := n.connected(); return float64(d) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "mqim_connected_users", Help: "Users with a device connected to this node."},
			func() float64 { _, u := n.connected(); return float64(u) }),
	)
	cfg.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "mqim_connection_panics_total", Help: "Panics recovered while handling a connection (each closed that connection).",
		ConstLabels: prometheus.Labels{"where": "mqtt"},
	}, func() float64 { return float64(n.mqtt.ConnectionPanics()) }))
	for _, h := range hooks {
		if err := n.mqtt.AddHook(h, nil); err != nil {
			return nil, fmt.Errorf("server: add hook %s: %w", h.ID(), err)
		}
	}
	if err := n.newAccounts(authHook); err != nil {
		return nil, err
	}
	n.http = n.httpServers()
	return n, nil
}

// Start binds the listeners (listeners.go) and serves them. A taken port is
// an error naming the address.
func (n *Node) Start() (err error) {
	// What has started is undone, in reverse, when a later step fails, so
	// that a failed Start leaves no listener bound and no goroutine running.
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	stopCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 10*time.Second)
	}
	if err := n.bind(); err != nil {
		return err
	}
	undo = append(undo, n.closeListeners)
	if err := n.serveMQTT(); err != nil {
		return err
	}
	n.fanout.Start()
	undo = append(undo, n.fanout.Stop)
	if n.bus != nil {
		if err := n.bus.Start(); err != nil {
			return err
		}
		undo = append(undo, func() { ctx, cancel := stopCtx(); defer cancel(); _ = n.bus.Stop(ctx) })
	}
	if n.table != nil {
		n.table.Start()
		undo = append(undo, func() { ctx, cancel := stopCtx(); defer cancel(); n.table.Stop(ctx) })
	}
	if err := n.accounts.Start(); err != nil {
		return err
	}
	undo = append(undo, n.accounts.Stop)
	if n.push != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := n.push.Start(ctx)
		cancel()
		if err != nil {
			return err
		}
		undo = append(undo, n.push.Stop)
	}
	n.core.Start()
	undo = append(undo, func() { ctx, cancel := stopCtx(); defer cancel(); _ = n.core.Shutdown(ctx) })
	n.startModeration()
	undo = append(undo, n.stopModeration)
	if err := n.mqtt.Serve(); err != nil {
		return fmt.Errorf("start MQTT server: %w", err)
	}
	n.serveHTTP()
	if n.certs != nil {
		ctx, cancel := context.WithCancel(context.Background())
		n.certsStop, n.certsDone = cancel, make(chan struct{})
		go func() { defer close(n.certsDone); n.certs.Run(ctx) }()
	}
	n.logListeners()
	return nil
}

// Shutdown drains the node: it stops accepting connections, commits and
// acknowledges every publish already taken, delivers what was committed,
// then disconnects the clients (0x8B for MQTT 5) and stops. It is
// idempotent; the store is the caller's to close.
func (n *Node) Shutdown(ctx context.Context) error {
	n.shutdown.Do(func() {
		n.draining.Store(true)
		_ = n.limits.Stop() // connections held for failed authentications are answered now
		// Stop accepting; clients stay for now. Closed this way, the
		// listeners will not close their clients when mqtt.Close closes them
		// again: closeMQTT does, including connections that were still in
		// their CONNECT.
		for _, id := range mqttListenerIDs {
			if l, ok := n.mqtt.Listeners.Get(id); ok {
				l.Close(func(string) {})
			}
		}
		err := n.core.Shutdown(ctx)
		n.accounts.Stop()
		var berr error
		if err == nil {
			// Only once the committer is done: a commit that outlives the
			// deadline still hands its events to fanout and the bus.
			if n.bus != nil {
				berr = n.bus.Stop(ctx)
			}
			n.fanout.Stop()
		}
		if n.push != nil {
			n.push.Stop() // after the committer: its last nudges are taken or left in the outbox
		}
		n.flushClients(ctx)
		n.closeMQTT()
		if n.table != nil {
			n.table.Stop(ctx)
		}
		herr := n.shutdownHTTP(ctx)
		if n.certsStop != nil {
			n.certsStop()
			<-n.certsDone
		}
		n.stopModeration()
		n.shutdownErr = errors.Join(err, berr, herr)
	})
	return n.shutdownErr
}

// maxFlush bounds how long a drain waits for devices to take what was
// delivered to them: a device that stops reading must not hold the node.
const maxFlush = 10 * time.Second

// flushClients waits until every device has been written what delivery
// queued for it (mochi writes on each client's own goroutine), so that the
// drain delivers what it committed [IM-1.1-4] and the DISCONNECT goes out
// after it, or until ctx or maxFlush ends.
func (n *Node) flushClients(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, maxFlush)
	defer cancel()
	for {
		pending := false
		for _, cl := range n.mqtt.Clients.GetAll() {
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
			n.log.Warn("drain: disconnecting devices with deliveries still queued", "error", ctx.Err())
			return
		case <-time.After(10 * time.Millisecond): // a poll interval
		}
	}
}

// closeMQTT disconnects every client and stops mochi, whose Close waits for
// every connection to end. MQTT 5 clients are told where to go: DISCONNECT
// 0x9C "use another server" with a Server Reference when another node is
// known, else 0x8B "server shutting down"; 3.1.1 connections are closed.
// A connection that was still in its CONNECT when the listeners closed
// becomes a client later, so clients are disconnected again until Close
// returns.
func (n *Node) closeMQTT() {
	ref := n.cfg.ServerReference
	if ref == "" && n.table != nil {
		// The MQTT 5 Server Reference is a space-separated list.
		ref = strings.Join(n.table.Peers(), " ")
	}
	closed := make(chan struct{})
	go func() { n.mqtt.Close(); close(closed) }()
	// Each DISCONNECT is written on a goroutine of its own: a device that
	// stopped reading blocks only its own write, until closeGrace stops it.
	var writes gosync.WaitGroup
	defer writes.Wait()
	ending := map[*mqtt.Client]time.Time{} // half-closed, waiting for the device to close
	for {
		for _, cl := range n.mqtt.Clients.GetAll() {
			if cl.Net.Inline || cl.Closed() {
				continue
			}
			since, ok := ending[cl]
			switch {
			case !ok:
				ending[cl] = time.Now()
				writes.Add(1)
				go func() {
					defer writes.Done()
					n.disconnect(cl, ref)
				}()
			case time.Since(since) > closeGrace:
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

// closeGrace is how long a draining node waits for a device to close its
// side after the node's FIN before closing the socket itself.
const closeGrace = 2 * time.Second

// disconnect tells an MQTT 5 client why it is disconnected and ends the
// connection. Over TCP the node only half-closes: closing a socket with
// unread input (the device's PUBACKs) sends a reset, and a reset makes the
// device's kernel drop what it had received but the app not yet read, the
// last deliveries and the DISCONNECT among them. After the FIN the device
// reads everything, closes, and the read loop ends (closeMQTT bounds it).
func (n *Node) disconnect(cl *mqtt.Client, ref string) {
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

// connected counts the devices connected here and their users.
func (n *Node) connected() (devices, users int) {
	seen := map[string]bool{}
	for _, cl := range n.mqtt.Clients.GetAll() {
		if cl.Net.Inline || cl.Closed() {
			continue
		}
		devices++
		seen[string(cl.Properties.Username)] = true
	}
	return devices, len(seen)
}

// takenOver disconnects a device that connected again on another node
// [MQTT-3.1.4-2].
func (n *Node) takenOver(user, client string) {
	if cl, ok := n.mqtt.Clients.Get(client); ok && !cl.Closed() && string(cl.Properties.Username) == user {
		n.log.Info("device moved to another node", "user", user, "client", client)
		_ = n.mqtt.DisconnectClient(cl, packets.ErrSessionTakenOver)
	}
}

// PublishInbox publishes an encoded event to a user's devices on this node.
func (n *Node) PublishInbox(user string, payload []byte, at time.Time) {
	n.inject(protocol.InboxTopic(user), payload, packets.Properties{ContentType: imqtt.EventContentType}, imqtt.NewEncodings(payload, at))
}

// InboxSubscribed reports whether a device on this node subscribes to the
// user's inbox (persistent sessions of offline devices included).
func (n *Node) InboxSubscribed(user string) bool {
	return len(n.mqtt.Topics.Subscribers(protocol.InboxTopic(user)).Subscriptions) > 0
}

// PublishGroup publishes an encoded group event on a group topic to the
// member devices on this node [IM-11.3].
func (n *Node) PublishGroup(conv string, payload []byte, at time.Time) {
	n.inject(protocol.GroupTopic(conv), payload, packets.Properties{ContentType: imqtt.EventContentType}, imqtt.NewEncodings(payload, at))
}

// ForgetMembers applies a committed membership change on this node (the
// local delivery sink calls it, for changes committed here and on other
// nodes): the cached answers of the group topic ACL are dropped, and the
// removed users' devices are unsubscribed from the group topic
// [IM-11.4-4]. mochi checks the ACL again on every delivery, so nothing
// published after this returns reaches them even if a subscription raced
// with it.
func (n *Node) ForgetMembers(conv string, added, removed []string) {
	n.members.Forget(conv, append(slices.Clone(added), removed...)...)
	if len(removed) == 0 {
		return
	}
	topic := protocol.GroupTopic(conv)
	for _, cl := range n.mqtt.Clients.GetAll() {
		if cl.Net.Inline || !slices.Contains(removed, string(cl.Properties.Username)) {
			continue
		}
		if _, ok := cl.State.Subscriptions.Get(topic); ok {
			n.mqtt.Topics.Unsubscribe(topic, cl.ID)
			cl.State.Subscriptions.Delete(topic)
		}
	}
}

// Respond publishes an RPC response.
func (n *Node) Respond(topic string, correlation []byte, f protocol.Format, payload []byte) {
	n.inject(topic, payload, packets.Properties{ContentType: f.ContentType(), CorrelationData: correlation}, nil)
}

// inject publishes through mochi's inline client; shared travels with every
// subscriber's copy (the outbound hook's per-format encodings).
func (n *Node) inject(topic string, payload []byte, props packets.Properties, shared any) {
	err := n.mqtt.InjectPacket(n.inline, packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1},
		TopicName:   topic,
		Payload:     payload,
		Properties:  props,
		PacketID:    1, // never used: inline publishes are not acknowledged
		Shared:      shared,
	})
	if err != nil {
		n.log.Warn("publish failed", "topic", topic, "error", err)
	}
}
