package server

import (
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mqim/mqim/protocol/authtoken"
	"github.com/mqim/mqim/push"
	"github.com/mqim/mqim/store"
)

// The defaults of Config, which cmd/mqimd's flags show and use.
const (
	DefaultMQTTAddr        = ":1883"
	DefaultWSAddr          = ":8083"
	DefaultHTTPAddr        = ":8080"
	DefaultMQTTSAddr       = ":8883" // with a TLS certificate [IM-1.1-5]
	DefaultWSSAddr         = ":8084"
	DefaultHTTPSAddr       = ":8443"
	DefaultMaxBody         = 16 << 10  // [IM-1.3]
	DefaultMaxPacket       = 256 << 10 // [IM-1.3]
	DefaultReceiveMaximum  = 256       // [IM-1.3]
	DefaultGroupReadFanout = 500       // [IM-11.3-1]
	DefaultReplicas        = 1
	DefaultRouteTTL        = 30 * time.Second
	DefaultRecallWindow    = 2 * time.Minute  // [IM-14.1]
	DefaultWriteTimeout    = 30 * time.Second // [IM-5.2-8]
)

// Config configures a node. Zero values mean the defaults noted (the
// Default… constants); New fills them in, so that every component sees the
// same values. Only cmd/mqimd reads flags, the environment or files.
type Config struct {
	MQTTAddr string // TCP listen address; zero: ":1883"
	WSAddr   string // WebSocket listen address (path /mqtt); zero: ":8083"
	HTTPAddr string // HTTP API address; zero: ":8080"
	Secret   []byte // HS256 secret of device and admin tokens; required unless Tokens is set
	// Tokens verifies device and admin tokens (RS256/ES256/EdDSA keys,
	// JWKS, issuer, audience, skew) [IM-3.1-2]; zero: HS256 with Secret.
	Tokens *authtoken.Verifier
	NodeID int // 0..1023, part of message ids
	Store  store.Store

	MaxBody        int // encoded message body limit; zero: 16 KiB
	MaxPacket      int // MQTT packet limit; zero: 256 KiB
	ReceiveMaximum int // QoS 1 publishes in flight per MQTT 5 connection; zero: 256
	// WriteTimeout bounds every socket write to a device: a device whose
	// socket takes nothing for this long is disconnected [IM-5.2-8]; zero:
	// 30 s.
	WriteTimeout time.Duration
	// GroupReadFanout is the member count above which a group fans out on
	// read [IM-11.3-1]; zero: 500.
	GroupReadFanout int

	// Cluster. With NATS nil the node runs alone: no bus, no routing table.
	NATS            *nats.Conn
	NodeName        string        // name in the routing table; zero: "node-<NodeID>"
	Advertise       string        // host:port where MQTT clients can reach this node
	ServerReference string        // where draining MQTT 5 clients go; zero: another live node
	Replicas        int           // JetStream replicas of the stream and buckets; zero: 1
	Standalone      bool          // no other node shares this NATS: keep events off the bus
	RouteTTL        time.Duration // routing entries of a dead node expire after this; zero: 30 s

	Log      *slog.Logger         // zero: slog.Default()
	Registry *prometheus.Registry // zero: a new registry

	// TLS [IM-1.1-5]. With TLSCert and TLSKey (PEM files) the TLS
	// listeners start beside the plain ones; the files are reloaded when
	// they change (polled every TLSPoll; zero: 10 s) and on ReloadTLS.
	TLSCert, TLSKey string
	MQTTSAddr       string // MQTT over TLS; zero: ":8883"
	WSSAddr         string // MQTT over wss (path /mqtt); zero: ":8084"
	HTTPSAddr       string // HTTP API over TLS; zero: ":8443"
	TLSPoll         time.Duration
	// TLSClientCA is a PEM file of the CAs of client certificates (mTLS): a
	// verified certificate that names the user authenticates it without a
	// token [IM-3.4-1]. TLSClientIdentity says where the certificate names
	// it: "cn" (zero), "dns" or "email" (a SAN).
	TLSClientCA, TLSClientIdentity string
	// ProxyProtocolFrom are the CIDRs (or addresses) whose connections may
	// start with a PROXY protocol header (a load balancer's), on every
	// listener [IM-1.1-6]; a header from elsewhere closes the connection.
	ProxyProtocolFrom []string

	// MetricsAddr moves GET /metrics to a listener of its own; zero: on the
	// HTTP listeners. MetricsToken, when set, is the bearer token /metrics
	// requires [IM-8.1-3].
	MetricsAddr, MetricsToken string
	// AdminAddr moves the admin API (the endpoints for admin and bridge
	// tokens) to a listener of its own, over TLS when TLS is configured;
	// zero: on the HTTP listeners [IM-8.4].
	AdminAddr string

	Media        Media         // attachments [IM-12.2]
	RecallWindow time.Duration // how long a sender may recall a message [IM-14.1]; zero: 2 minutes

	// Push is offline push [IM-17]: off without Providers; the node fills
	// in its store, NATS, name, presence, log and registry.
	Push push.Config

	// Moderation is the word filter and the before-send webhook [IM-18]
	// (moderation.go); zero: off.
	Moderation Moderation
	// Limits are the rate and connection limits (limits.go); nil:
	// DefaultLimits.
	Limits *Limits
}

func (cfg *Config) setDefaults() {
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.MQTTAddr, DefaultMQTTAddr)
	def(&cfg.WSAddr, DefaultWSAddr)
	def(&cfg.HTTPAddr, DefaultHTTPAddr)
	def(&cfg.MQTTSAddr, DefaultMQTTSAddr)
	def(&cfg.WSSAddr, DefaultWSSAddr)
	def(&cfg.HTTPSAddr, DefaultHTTPSAddr)
	defInt(&cfg.MaxBody, DefaultMaxBody)
	defInt(&cfg.MaxPacket, DefaultMaxPacket)
	defInt(&cfg.ReceiveMaximum, DefaultReceiveMaximum)
	defInt(&cfg.GroupReadFanout, DefaultGroupReadFanout)
	defInt(&cfg.Replicas, DefaultReplicas)
	if cfg.RouteTTL <= 0 {
		cfg.RouteTTL = DefaultRouteTTL
	}
	if cfg.RecallWindow <= 0 {
		cfg.RecallWindow = DefaultRecallWindow
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.Limits == nil {
		cfg.Limits = DefaultLimits()
	}
}
