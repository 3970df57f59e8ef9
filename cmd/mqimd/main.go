// Command mqimd runs an mqim node. Flags are documented by --help; each has
// an MQIM_* environment equivalent (--mqtt-addr ↔ MQIM_MQTT_ADDR) and a key
// of the same name in the --config YAML file.
package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/mqim/mqim/delivery/cluster"
	"github.com/mqim/mqim/internal/certs"
	"github.com/mqim/mqim/internal/flagconfig"
	"github.com/mqim/mqim/media"
	"github.com/mqim/mqim/server"
	"github.com/mqim/mqim/store"
	"github.com/mqim/mqim/store/pgstore"
	"github.com/mqim/mqim/store/sqlitestore"
)

// exitDrainInterrupted is the exit status when a second SIGINT or SIGTERM
// interrupts the drain.
const exitDrainInterrupted = 3

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) || errors.Is(err, errVersion) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "mqimd:", err)
		os.Exit(1)
	}
}

// version is set at build time (-ldflags "-X main.version=v1.2.3"); empty:
// the module version and commit from the build info.
var version string

// errVersion ends run after --version printed it.
var errVersion = errors.New("version printed")

// loader reads mqimd's flags from the command line, MQIM_* variables and
// the --config file.
var loader = flagconfig.Loader{EnvPrefix: "MQIM_", FileFlag: "config", CommandLineOnly: []string{"version"}}

// sections order --help by concern; a flag in none is listed under Other.
var sections = []flagconfig.Section{
	{Title: "General", Names: []string{"config", "version"}},
	{Title: "Listeners", Names: []string{"mqtt-addr", "ws-addr", "http-addr", "mqtts-addr", "wss-addr", "https-addr"}, Prefixes: []string{"tls-", "proxy-", "metrics-", "admin-"}},
	{Title: "Store and local state", Names: []string{"store", "data-dir"}},
	{Title: "Authentication", Names: []string{"jwt-secret"}, Prefixes: []string{"jwt-", "jwks"}},
	{Title: "Cluster", Names: []string{"node-id", "node-name", "advertise", "server-reference", "route-ttl"}, Prefixes: []string{"nats"}},
	{Title: "Limits", Names: []string{"max-body", "group-read-fanout", "recall-window", "write-timeout", "limits"}, Prefixes: []string{"limit-"}},
	{Title: "Media (attachments)", Prefixes: []string{"media-", "s3-"}},
	{Title: "Push notifications", Prefixes: []string{"push-", "apns-", "fcm-"}},
	{Title: "Moderation", Prefixes: []string{"moderation-"}},
	{Title: "Logging", Prefixes: []string{"log-"}},
}

const usageHead = `Usage: mqimd [flags]

Runs an mqim node. Every flag can also be set by its MQIM_* environment variable
(--mqtt-addr is MQIM_MQTT_ADDR) and in a YAML config file (--config FILE) whose
keys are the flag names (mqtt-addr: ":1883"). A flag on the command line wins
over the environment, which wins over the file.
`

type options struct {
	mqttAddr, wsAddr, httpAddr string
	storeURL, dataDir          string
	secret                     string
	nodeID, maxBody            int
	groupReadFanout            int
	logLevel, logFormat        string
	configFile                 string
	printVersion               bool

	natsURL, natsListen, natsClusterAddr, natsRoutes string
	nodeName, advertise, serverReference             string
	natsReplicas                                     int
	routeTTL                                         time.Duration

	tlsCert, tlsKey, tlsClientCA, tlsClientIdentity string
	mqttsAddr, wssAddr, httpsAddr                   string
	proxyFrom                                       string
	tlsPoll                                         time.Duration
	metricsAddr, metricsToken, adminAddr            string

	mediaDir, mediaTypes string
	mediaMaxBytes        int64
	mediaS3              media.S3Config
	recallWindow         time.Duration

	tokens       tokenOptions // tokens.go
	limits       limitOptions // limits.go
	writeTimeout time.Duration
	push         *pushOptions       // push.go
	moderation   *moderationOptions // moderation.go
}

func parse(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("mqimd", flag.ContinueOnError)
	fs.StringVar(&o.mqttAddr, "mqtt-addr", server.DefaultMQTTAddr, "MQTT over TCP listen address")
	fs.StringVar(&o.wsAddr, "ws-addr", server.DefaultWSAddr, "MQTT over WebSocket listen address (path /mqtt)")
	fs.StringVar(&o.httpAddr, "http-addr", server.DefaultHTTPAddr, "HTTP API listen address (/healthz, /metrics, /v1/users)")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate (chain) file; with --tls-key the TLS listeners start. Reloaded when it changes and on SIGHUP")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM private key file of --tls-cert")
	fs.StringVar(&o.tlsClientCA, "tls-client-ca", "", "PEM file of the CAs of client certificates: a verified client certificate that names the user logs in without a token (mTLS)")
	fs.StringVar(&o.tlsClientIdentity, "tls-client-identity", "cn", "where a client certificate names the user id: cn, dns or email (a SAN)")
	fs.DurationVar(&o.tlsPoll, "tls-poll", certs.DefaultPoll, "how often the TLS files are checked for changes (SIGHUP reloads at once)")
	fs.StringVar(&o.mqttsAddr, "mqtts-addr", server.DefaultMQTTSAddr, "MQTT over TLS listen address (with --tls-cert)")
	fs.StringVar(&o.wssAddr, "wss-addr", server.DefaultWSSAddr, "MQTT over secure WebSocket listen address, path /mqtt (with --tls-cert)")
	fs.StringVar(&o.httpsAddr, "https-addr", server.DefaultHTTPSAddr, "HTTPS API listen address (with --tls-cert)")
	fs.StringVar(&o.proxyFrom, "proxy-protocol-from", "", "comma-separated CIDRs of load balancers whose connections may start with a PROXY protocol header (HAProxy send-proxy-v2); a header from elsewhere is refused")
	fs.StringVar(&o.metricsAddr, "metrics-addr", "", "serve /metrics on this address only; empty: on the HTTP listeners")
	fs.StringVar(&o.metricsToken, "metrics-token", "", "bearer token that /metrics requires; empty: none. Prefer the environment (MQIM_METRICS_TOKEN) or the --config file to a flag, which other users see in the process list")
	fs.StringVar(&o.adminAddr, "admin-addr", "", "serve the admin API (admin and bridge token endpoints) on this address only, over TLS with --tls-cert; empty: on the HTTP listeners")
	fs.StringVar(&o.storeURL, "store", "", "PostgreSQL URL (postgres://user:pass@host:port/db) or SQLite file (sqlite:PATH); empty: SQLite in <data-dir>/mqim.db")
	fs.StringVar(&o.dataDir, "data-dir", "./data", "directory for local state: the embedded store, the embedded NATS server's JetStream, the generated JWT secret")
	fs.StringVar(&o.secret, "jwt-secret", "", "HS256 secret for tokens; empty: read or create <data-dir>/jwt-secret")
	fs.IntVar(&o.nodeID, "node-id", 0, "node id 0..1023, unique per node (part of message ids)")
	fs.IntVar(&o.maxBody, "max-body", server.DefaultMaxBody, "largest encoded message body in bytes")
	fs.IntVar(&o.groupReadFanout, "group-read-fanout", server.DefaultGroupReadFanout, "groups with more members fan out on read (group topic)")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.natsURL, "nats", "", "NATS URL(s) of an external JetStream cluster, comma-separated; empty: run an embedded NATS server in <data-dir>/nats")
	fs.StringVar(&o.natsListen, "nats-listen", "", "embedded NATS: expose its client port on this address, so other nodes can use --nats nats://ADDR")
	fs.StringVar(&o.natsClusterAddr, "nats-cluster-addr", "", "embedded NATS: route listen address for clustering with --nats-routes (e.g. :6222)")
	fs.StringVar(&o.natsRoutes, "nats-routes", "", "embedded NATS: comma-separated nats-route://host:port of the other nodes' embedded servers")
	fs.IntVar(&o.natsReplicas, "nats-replicas", server.DefaultReplicas, "JetStream replicas for mqim's stream and KV buckets (3 on a 3-server NATS cluster)")
	fs.DurationVar(&o.routeTTL, "route-ttl", server.DefaultRouteTTL, "how long a dead node's devices stay in the routing table (presence); live nodes refresh at a third of it")
	fs.StringVar(&o.nodeName, "node-name", "", "name of this node in the cluster; empty: node-<node-id>")
	fs.StringVar(&o.advertise, "advertise", "", "host:port where MQTT clients reach this node; other nodes send draining clients here")
	fs.StringVar(&o.serverReference, "server-reference", "", "where this node sends MQTT 5 clients when it drains (e.g. the load balancer); empty: another live node's --advertise")
	fs.StringVar(&o.mediaDir, "media-dir", "", "directory of uploaded attachments; empty: <data-dir>/media")
	fs.Int64Var(&o.mediaMaxBytes, "media-max-bytes", media.DefaultMaxBytes, "largest attachment upload in bytes (larger: 413)")
	fs.StringVar(&o.mediaS3.Endpoint, "media-s3-endpoint", "", "keep attachments in an S3-compatible bucket at this URL (http(s)://host[:port]) instead of --media-dir; every node of a cluster then serves every upload")
	fs.StringVar(&o.mediaS3.Bucket, "media-s3-bucket", "", "S3 bucket of attachments (created if missing); required with --media-s3-endpoint")
	fs.StringVar(&o.mediaS3.Region, "media-s3-region", media.DefaultS3Region, "S3 region requests are signed for")
	fs.StringVar(&o.mediaS3.AccessKey, "media-s3-access-key", "", "S3 access key id")
	fs.StringVar(&o.mediaS3.SecretKey, "media-s3-secret-key", "", "S3 secret key, never logged; prefer the environment (MQIM_MEDIA_S3_SECRET_KEY) or the --config file to a flag, which other users see in the process list")
	fs.BoolVar(&o.mediaS3.PathStyle, "media-s3-path-style", false, "address the bucket in the URL path (endpoint/bucket/key), as most self-hosted S3 servers need; otherwise virtual-hosted style where the endpoint is known to support it (AWS)")
	fs.StringVar(&o.mediaTypes, "media-types", strings.Join(media.DefaultAllowed, ","), "allowed attachment media types, comma-separated; type/* allows a whole family (others: 415)")
	fs.DurationVar(&o.recallWindow, "recall-window", server.DefaultRecallWindow, "how long after sending a sender may recall a message")
	o.tokens.register(fs) // tokens.go
	o.limits.register(fs) // limits.go
	fs.DurationVar(&o.writeTimeout, "write-timeout", server.DefaultWriteTimeout, "a device whose socket accepts nothing for this long is disconnected (it reconnects and syncs)")
	fs.StringVar(&o.logFormat, "log-format", "text", "log line format: text or json")
	fs.StringVar(&o.configFile, "config", "", "read settings from this YAML file: keys are the flag names")
	fs.BoolVar(&o.printVersion, "version", false, "print the version and exit")
	o.push = pushFlags(fs)
	o.moderation = moderationFlags(fs)
	// Errors come back as one line from run; help goes to stdout.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := loader.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Print(usageHead)
			loader.PrintUsage(os.Stdout, fs, sections)
			return nil, err
		}
		return nil, fmt.Errorf("%w (see mqimd --help)", err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (see mqimd --help)", fs.Arg(0))
	}
	return o, nil
}

func run(args []string) error {
	o, err := parse(args)
	if err != nil {
		return err
	}
	if o.printVersion {
		fmt.Println("mqimd", versionString())
		return errVersion
	}
	log, err := newLogger(o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	limits, err := o.limits.config() // before anything is opened
	if err != nil {
		return err
	}

	secret, secretSource, err := loadSecret(o.secret, o.dataDir)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	reg := newRegistry() // before the node: the JWKS fetcher's metric
	tokens, tokensDesc, err := o.tokens.verifier(ctx, secret, log, reg)
	if err != nil {
		return err
	}

	openCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	st, storeDesc, err := openStore(openCtx, o.storeURL, o.dataDir)
	cancel()
	if err != nil {
		return fmt.Errorf("store %s: %w", storeDesc, err)
	}
	defer st.Close()

	nodeName := o.nodeName
	if nodeName == "" {
		nodeName = fmt.Sprintf("node-%d", o.nodeID)
	}
	natsCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	nc, err := cluster.ConnectNATS(natsCtx, cluster.NATSConfig{
		URL:         o.natsURL,
		StoreDir:    filepath.Join(o.dataDir, "nats"),
		Listen:      o.natsListen,
		ClusterAddr: o.natsClusterAddr,
		Routes:      splitList(o.natsRoutes),
		ServerName:  nodeName,
		Log:         log,
	})
	cancel()
	if err != nil {
		return err
	}
	defer nc.Close()

	mediaDir := o.mediaDir
	if mediaDir == "" {
		mediaDir = filepath.Join(o.dataDir, "media")
	}
	mediaDesc := "dir " + mediaDir
	if o.mediaS3.Endpoint == "" && (o.mediaS3.Bucket != "" || o.mediaS3.AccessKey != "" || o.mediaS3.SecretKey != "") {
		return errors.New("--media-s3-bucket and the S3 keys need --media-s3-endpoint")
	}
	if o.mediaS3.Endpoint != "" {
		mediaDir, mediaDesc = "", "s3 "+o.mediaS3.Endpoint+" bucket "+o.mediaS3.Bucket
	}
	pushCfg, err := o.push.config()
	if err != nil {
		return err
	}
	modCfg, err := o.moderation.config()
	if err != nil {
		return err
	}
	node, err := server.New(server.Config{
		MQTTAddr: o.mqttAddr, WSAddr: o.wsAddr, HTTPAddr: o.httpAddr,
		Secret: secret, Tokens: tokens, Registry: reg, NodeID: o.nodeID, Store: st, MaxBody: o.maxBody, GroupReadFanout: o.groupReadFanout, Log: log,
		NATS: nc.Conn, NodeName: nodeName, Advertise: o.advertise, ServerReference: o.serverReference,
		Replicas: o.natsReplicas, Standalone: nc.Private(), RouteTTL: o.routeTTL,
		Media:        server.Media{Dir: mediaDir, S3: o.mediaS3, MaxBytes: o.mediaMaxBytes, Allowed: splitList(o.mediaTypes)},
		RecallWindow: o.recallWindow,
		TLSCert:      o.tlsCert, TLSKey: o.tlsKey, TLSClientCA: o.tlsClientCA, TLSClientIdentity: o.tlsClientIdentity, TLSPoll: o.tlsPoll,
		MQTTSAddr: o.mqttsAddr, WSSAddr: o.wssAddr, HTTPSAddr: o.httpsAddr, ProxyProtocolFrom: splitList(o.proxyFrom),
		MetricsAddr: o.metricsAddr, MetricsToken: o.metricsToken, AdminAddr: o.adminAddr,
		WriteTimeout: o.writeTimeout,
		Push:         pushCfg,
		Moderation:   modCfg,
		Limits:       limits,
	})
	if err != nil {
		return err
	}
	if err := node.Start(ctx); err != nil {
		return err
	}
	log.Info("mqimd serving",
		"node", nodeName, "store", storeDesc, "nats", nc.String(),
		"mqtt", node.MQTTAddr(), "websocket", "ws://"+node.WSAddr()+"/mqtt", "http", node.HTTPAddr(),
		"mqtts", node.MQTTSAddr(), "https", node.HTTPSAddr(),
		"media", mediaDesc, "jwt_secret", secretSource, "tokens", tokensDesc)
	if node.MQTTSAddr() == "" {
		log.Warn("no TLS certificate configured (--tls-cert, --tls-key): every listener is plaintext and tokens cross the network in the clear")
	}
	if secretSource != "flag" {
		log.Info("development token: go run ./cmd/mqim token --secret-file " + filepath.Join(o.dataDir, "jwt-secret") + " --user alice")
	}

	// SIGHUP reloads the TLS files (live connections keep theirs) and the
	// word lists.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	hupDone := make(chan struct{})
	go func() {
		defer close(hupDone)
		for range hup {
			if err := node.ReloadTLS(); err != nil {
				log.Warn("SIGHUP: TLS not reloaded", "error", err)
			}
			if err := node.ReloadModeration(); err != nil && !errors.Is(err, server.ErrNoWordLists) {
				log.Warn("SIGHUP: word lists not reloaded; the previous ones stay", "error", err)
			}
		}
	}()
	defer func() { signal.Stop(hup); close(hup); <-hupDone }()

	<-ctx.Done()
	// A second signal ends the drain at once, with its own exit status
	// (README): what was acknowledged is stored; devices retry the rest.
	// Registered before stop, so that no signal meets the default action.
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer func() { signal.Stop(again); close(again) }()
	stop()
	log.Info("draining")
	go func() {
		if _, ok := <-again; ok {
			log.Warn("second signal: exiting without finishing the drain")
			os.Exit(exitDrainInterrupted)
		}
	}()
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := node.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// newLogger makes the node's logger: text or JSON lines on stderr.
func newLogger(level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// versionString is the version set at build time, else the module version
// and the commit the binary was built from (go build stamps both).
func versionString() string {
	v := version
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return cmp.Or(v, "unknown")
	}
	if v == "" {
		v = info.Main.Version
	}
	var rev, at, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = ", modified"
			}
		}
	}
	out := v
	if rev != "" {
		out += fmt.Sprintf(" (commit %.12s %s%s)", rev, at, dirty)
	}
	return out + " " + info.GoVersion
}

// openStore opens PostgreSQL for a postgres:// URL, else the embedded SQLite
// store: the file after "sqlite:", or mqim.db in the data directory.
func openStore(ctx context.Context, url, dataDir string) (store.Store, string, error) {
	if strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://") {
		desc := "postgres " + redactURL(url)
		st, err := pgstore.Open(ctx, url)
		if err != nil {
			return nil, desc, err
		}
		return st, desc, nil
	}
	path, ok := strings.CutPrefix(url, "sqlite:")
	if !ok && url != "" {
		return nil, url, errors.New("--store takes postgres://… or sqlite:PATH")
	}
	if path == "" {
		path = filepath.Join(dataDir, "mqim.db")
	}
	desc := "sqlite " + path
	st, err := sqlitestore.Open(ctx, path)
	if err != nil {
		return nil, desc, err
	}
	return st, desc, nil
}

// loadSecret returns the JWT secret: the flag's, else the one kept in the
// data directory, else a new random one written there.
func loadSecret(flagSecret, dataDir string) ([]byte, string, error) {
	if flagSecret != "" {
		return []byte(flagSecret), "flag", nil
	}
	path := filepath.Join(dataDir, "jwt-secret")
	if b, err := os.ReadFile(path); err == nil {
		s := strings.TrimSpace(string(b))
		if s == "" {
			return nil, "", fmt.Errorf("%s is empty", path)
		}
		return []byte(s), path, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, "", fmt.Errorf("read JWT secret: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, "", err
	}
	s := hex.EncodeToString(raw)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, "", fmt.Errorf("create data dir: %w", err)
	}
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return nil, "", fmt.Errorf("write JWT secret: %w", err)
	}
	return []byte(s), path + " (new)", nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// redactURL hides the password of a database URL for logs.
func redactURL(u string) string {
	at := strings.LastIndex(u, "@")
	scheme := strings.Index(u, "://")
	if at < 0 || scheme < 0 {
		return u
	}
	cred := u[scheme+3 : at]
	if user, _, ok := strings.Cut(cred, ":"); ok {
		return u[:scheme+3] + user + ":***" + u[at:]
	}
	return u
}
