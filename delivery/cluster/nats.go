package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// NATSConfig says which NATS a node uses: an external one at URL, or, with
// no URL, a nats-server embedded in the process with JetStream in StoreDir.
type NATSConfig struct {
	URL string

	StoreDir    string   // embedded: JetStream storage directory
	Listen      string   // embedded: client address to expose ("" = in-process only)
	ClusterAddr string   // embedded: route listen address; required with Routes
	Routes      []string // embedded: nats-route://host:port of the other servers
	ServerName  string   // embedded: unique in a cluster

	Log *slog.Logger
}

// NATS is a node's connection to NATS, and the embedded server if any.
type NATS struct {
	Conn    *nats.Conn
	server  *server.Server
	private bool
	desc    string
}

// ConnectNATS starts the embedded server if configured and connects to NATS.
// An external NATS that is not reachable yet is retried in the background.
func ConnectNATS(ctx context.Context, cfg NATSConfig) (*NATS, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	log := cfg.Log
	n := &NATS{}
	opts := []nats.Option{
		nats.Name("mqimd"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, 100*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS disconnected; live delivery between nodes pauses, devices sync", "error", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("NATS reconnected", "server", c.ConnectedUrlRedacted())
		}),
	}
	if cfg.URL != "" {
		if len(cfg.Routes) > 0 || cfg.Listen != "" || cfg.ClusterAddr != "" {
			return nil, errors.New("--nats-listen, --nats-cluster-addr and --nats-routes configure the embedded NATS server; they cannot be used with --nats")
		}
		opts = append(opts, nats.RetryOnFailedConnect(true))
		nc, err := nats.Connect(cfg.URL, opts...)
		if err != nil {
			return nil, fmt.Errorf("connect to NATS %s: %w", cfg.URL, err)
		}
		if !nc.IsConnected() {
			log.Warn("NATS not reachable yet; retrying in the background", "url", nc.Opts.Url)
		}
		n.Conn, n.desc = nc, "external "+redact(cfg.URL)
		return n, nil
	}

	so, err := embeddedOptions(cfg)
	if err != nil {
		return nil, err
	}
	ns, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	ns.SetLoggerV2(natsLogger{log.With("component", "nats-server")}, false, false, false)
	ns.Start()
	ready := make(chan bool, 1)
	go func() { ready <- ns.ReadyForConnections(30 * time.Second) }()
	select {
	case ok := <-ready:
		if !ok {
			ns.Shutdown()
			return nil, errors.New("embedded NATS did not start (see log)")
		}
	case <-ctx.Done():
		ns.Shutdown()
		return nil, ctx.Err()
	}
	opts = append(opts, nats.InProcessServer(ns))
	nc, err := nats.Connect("", opts...)
	if err != nil {
		ns.Shutdown()
		return nil, fmt.Errorf("connect to embedded NATS: %w", err)
	}
	n.Conn, n.server = nc, ns
	n.private = cfg.Listen == "" && cfg.ClusterAddr == ""
	n.desc = "embedded, JetStream in " + cfg.StoreDir
	if cfg.Listen != "" {
		n.desc += ", clients on " + ns.ClientURL()
	}
	if len(cfg.Routes) > 0 {
		n.desc += ", routes " + strings.Join(cfg.Routes, ",")
	}
	return n, nil
}

func embeddedOptions(cfg NATSConfig) (*server.Options, error) {
	so := &server.Options{
		ServerName: cfg.ServerName,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true,
	}
	switch {
	case cfg.Listen == "" && cfg.ClusterAddr == "":
		so.DontListen = true // in-process connections only
	case cfg.Listen == "":
		// nats-server starts routing only once its client listener is up.
		so.Host, so.Port = "127.0.0.1", server.RANDOM_PORT
	default:
		host, port, err := splitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("--nats-listen: %w", err)
		}
		so.Host, so.Port = host, port
	}
	if len(cfg.Routes) > 0 && cfg.ClusterAddr == "" {
		return nil, errors.New("--nats-routes needs --nats-cluster-addr, the address this node's NATS listens on for the others")
	}
	if cfg.ClusterAddr != "" {
		host, port, err := splitHostPort(cfg.ClusterAddr)
		if err != nil {
			return nil, fmt.Errorf("--nats-cluster-addr: %w", err)
		}
		so.Cluster = server.ClusterOpts{Name: "mqim", Host: host, Port: port}
		for _, r := range cfg.Routes {
			u := server.RoutesFromStr(r)
			if len(u) == 0 {
				return nil, fmt.Errorf("--nats-routes: bad route %q", r)
			}
			so.Routes = append(so.Routes, u...)
		}
	}
	return so, nil
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("bad port in %q", addr)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

// Private reports whether no other process can reach this NATS: an
// embedded server with neither a client port nor routes. Such a node is
// alone, and has no one to publish its events to.
func (n *NATS) Private() bool {
	return n.server != nil && n.private
}

// String says which NATS this is, for the start-up log.
func (n *NATS) String() string { return n.desc }

// Close drains the connection and stops the embedded server.
func (n *NATS) Close() {
	if n.Conn != nil {
		n.Conn.Close()
	}
	if n.server != nil {
		n.server.Shutdown()
		n.server.WaitForShutdown()
	}
}

func redact(u string) string {
	if at := strings.LastIndex(u, "@"); at >= 0 {
		if i := strings.Index(u, "://"); i >= 0 && i < at {
			return u[:i+3] + "***" + u[at:]
		}
	}
	return u
}

// natsLogger sends the embedded server's log to slog; its notices are
// start-up chatter, so they go to debug. Its blank lines (the banner's
// spacing) are dropped: a log line without a message says nothing.
type natsLogger struct{ l *slog.Logger }

func (g natsLogger) Noticef(format string, v ...any) { g.log(slog.LevelDebug, format, v) }
func (g natsLogger) Warnf(format string, v ...any)   { g.log(slog.LevelWarn, format, v) }
func (g natsLogger) Fatalf(format string, v ...any)  { g.log(slog.LevelError, format, v) }
func (g natsLogger) Errorf(format string, v ...any)  { g.log(slog.LevelError, format, v) }
func (g natsLogger) Debugf(format string, v ...any)  { g.log(slog.LevelDebug, format, v) }
func (g natsLogger) Tracef(format string, v ...any)  { g.log(slog.LevelDebug, format, v) }

func (g natsLogger) log(level slog.Level, format string, v []any) {
	if !g.l.Enabled(context.Background(), level) {
		return
	}
	if msg := strings.TrimSpace(fmt.Sprintf(format, v...)); msg != "" {
		g.l.Log(context.Background(), level, msg)
	}
}
