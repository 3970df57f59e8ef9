// Command mqimd runs an mqim node. Flags are documented by --help; each has
// an MQIM_* environment equivalent (--mqtt-addr ↔ MQIM_MQTT_ADDR).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mqim/mqim/internal/certs"
	"github.com/mqim/mqim/media"
	"github.com/mqim/mqim/server"
	"github.com/mqim/mqim/store"
	"github.com/mqim/mqim/store/pgstore"
	"github.com/mqim/mqim/store/sqlitestore"
	"github.com/mqim/mqim/sync/bus"
)

// exitDrainInterrupted is the exit status when a second SIGINT or SIGTERM
// interrupts the drain.
const exitDrainInterrupted = 3

func main() {
	if err := run(os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "mqimd:", err)
		}
		os.Exit(1)
	}
}

type options struct {
	mqttAddr, wsAddr, httpAddr string
	storeURL, dataDir          string
	secret                     string
	nodeID, maxBody            int
	groupReadFanout            int
	logLevel                   string

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
	recallWindow         time.Duration
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
	fs.StringVar(&o.metricsToken, "metrics-token", "", "bearer token that /metrics requires; empty: none")
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
	fs.StringVar(&o.mediaTypes, "media-types", strings.Join(media.DefaultAllowed, ","), "allowed attachment media types, comma-separated; type/* allows a whole family (others: 415)")
	fs.DurationVar(&o.recallWindow, "recall-window", server.DefaultRecallWindow, "how long after sending a sender may recall a message")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: mqimd [flags]\n\nRuns an mqim node. Every flag can also be set by its MQIM_* environment variable\n(--mqtt-addr is MQIM_MQTT_ADDR); a flag on the command line wins.\n\n")
		fs.PrintDefaults()
	}
	// Environment first, so that flags given on the command line override it.
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := "MQIM_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok {
			if err := f.Value.Set(v); err != nil && envErr == nil {
				envErr = fmt.Errorf("%s=%q: %w", name, v, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	return o, nil
}

func run(args []string) error {
	o, err := parse(args)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	secret, secretSource, err := loadSecret(o.secret, o.dataDir)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

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
	nc, err := bus.ConnectNATS(natsCtx, bus.NATSConfig{
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
	node, err := server.New(server.Config{
		MQTTAddr: o.mqttAddr, WSAddr: o.wsAddr, HTTPAddr: o.httpAddr,
		Secret: secret, NodeID: o.nodeID, Store: st, MaxBody: o.maxBody, GroupReadFanout: o.groupReadFanout, Log: log,
		NATS: nc.Conn, NodeName: nodeName, Advertise: o.advertise, ServerReference: o.serverReference,
		Replicas: o.natsReplicas, Standalone: nc.Private(), RouteTTL: o.routeTTL,
		Media:        server.Media{Dir: mediaDir, MaxBytes: o.mediaMaxBytes, Allowed: splitList(o.mediaTypes)},
		RecallWindow: o.recallWindow,
		TLSCert:      o.tlsCert, TLSKey: o.tlsKey, TLSClientCA: o.tlsClientCA, TLSClientIdentity: o.tlsClientIdentity, TLSPoll: o.tlsPoll,
		MQTTSAddr: o.mqttsAddr, WSSAddr: o.wssAddr, HTTPSAddr: o.httpsAddr, ProxyProtocolFrom: splitList(o.proxyFrom),
		MetricsAddr: o.metricsAddr, MetricsToken: o.metricsToken, AdminAddr: o.adminAddr,
	})
	if err != nil {
		return err
	}
	if err := node.Start(); err != nil {
		return err
	}
	log.Info("mqimd serving",
		"node", nodeName, "store", storeDesc, "nats", nc.String(),
		"mqtt", node.MQTTAddr(), "websocket", "ws://"+node.WSAddr()+"/mqtt", "http", node.HTTPAddr(),
		"mqtts", node.MQTTSAddr(), "https", node.HTTPSAddr(),
		"jwt_secret", secretSource)
	if node.MQTTSAddr() == "" {
		log.Warn("no TLS certificate configured (--tls-cert, --tls-key): every listener is plaintext and tokens cross the network in the clear")
	}
	if secretSource != "flag" {
		log.Info("development token: go run ./cmd/mqim token --secret-file " + filepath.Join(o.dataDir, "jwt-secret") + " --user alice")
	}

	// SIGHUP reloads the TLS files; live connections keep theirs.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	hupDone := make(chan struct{})
	go func() {
		defer close(hupDone)
		for range hup {
			if err := node.ReloadTLS(); err != nil {
				log.Warn("SIGHUP: TLS not reloaded", "error", err)
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
