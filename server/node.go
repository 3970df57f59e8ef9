// Package server wires one mqim node: the core (im), the MQTT broker
// (mqtt.Broker) on the TCP and WebSocket listeners it binds, delivery, push,
// account control and the HTTP API (httpapi). It owns the node's lifecycle:
// New builds, Start binds and serves, Shutdown drains and stops.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

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
	"github.com/mqim/mqim/internal/run"
	"github.com/mqim/mqim/internal/snowflake"
	"github.com/mqim/mqim/media"
	imqtt "github.com/mqim/mqim/mqtt"
	"github.com/mqim/mqim/protocol/authtoken"
	"github.com/mqim/mqim/push"
)

// Node is one running mqim server.
type Node struct {
	cfg      Config
	log      *slog.Logger
	broker   *imqtt.Broker // the MQTT broker, its listeners and hooks
	core     *im.Service
	deliver  *delivery.Dispatcher
	fanout   *local.Fanout
	bus      *cluster.Bus      // nil without NATS
	table    *routes.Table     // nil without NATS
	limits   *imqtt.ConnLimits // CONNECT limits (limits.go)
	media    *media.Handler    // nil: attachments disabled
	auth     *httpapi.Auth     // the bearer check of every HTTP endpoint
	accounts *account.Service  // account control [IM-8.3]
	adminAPI *httpapi.Admin
	api      *httpapi.API  // users, presence, nodes, notifications
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
	mod       moderator // word lists and webhook (moderation.go)
	// goroutines of the node's own: the HTTP servers, the certificate
	// poller.
	goroutines run.Group

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

	n := &Node{cfg: cfg, log: cfg.Log, ids: ids, media: mediaHandler, auth: httpAuth, certs: crt, certID: certID, proxy: proxy}
	n.broker = imqtt.NewBroker(imqtt.BrokerConfig{
		Members: cfg.Store, MaxPacket: cfg.MaxPacket, ReceiveMaximum: cfg.ReceiveMaximum, WriteTimeout: cfg.WriteTimeout,
		ServerReference: n.serverReference, Log: cfg.Log, Registerer: cfg.Registry,
	})
	n.fanout = local.New(n.broker, local.Config{Log: cfg.Log, Registerer: cfg.Registry})
	sinks := []delivery.Sink{n.fanout}
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
			TakenOver: n.broker.TakeOver, Changed: n.broker.PublishPresence,
		}); err != nil {
			return nil, err
		}
	}
	// One delivery port for the core: inbox events, group broadcasts,
	// membership changes and signals, to this node and the others.
	n.deliver = delivery.NewDispatcher(sinks...)
	consumers, err := n.newPush([]im.Consumer{n.deliver}) // of committed events
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
	wiring := imqtt.Wiring{Core: n.core, Auth: imqtt.AuthConfig{Tokens: cfg.Tokens, Users: cfg.Store, Log: cfg.Log,
		PresenceAllowed: im.NewPresenceACL(cfg.Store).Allowed, CertIdentity: certID, Limits: n.limits}}
	if n.table != nil {
		wiring.Router = n.table
	}
	if n.push != nil {
		wiring.Acks = n.push
	}
	if err := n.broker.Attach(wiring); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if err := n.newAccounts(n.broker); err != nil {
		return nil, err
	}
	n.http = n.httpServers()
	return n, nil
}

// undoTimeout bounds the undoing of a Start that failed.
const undoTimeout = 10 * time.Second

// Start binds the listeners (listeners.go) and starts every component in
// turn; ctx bounds the start-up steps only (push's stream, say). A taken
// port is an error naming the address. What has started is undone, in
// reverse, when a later step fails, so that a failed Start leaves no
// listener bound and no goroutine running.
func (n *Node) Start(ctx context.Context) (err error) {
	var undo []func(context.Context) error
	defer func() {
		if err != nil {
			ctx, cancel := context.WithTimeout(context.Background(), undoTimeout)
			defer cancel()
			for i := len(undo) - 1; i >= 0; i-- {
				_ = undo[i](ctx)
			}
		}
	}()
	step := func(start, stop func(context.Context) error) error {
		if err := start(ctx); err != nil {
			return err
		}
		undo = append(undo, stop)
		return nil
	}
	if err := n.bind(); err != nil {
		return err
	}
	undo = append(undo, func(context.Context) error { n.closeListeners(); return nil })
	if err := n.serveMQTT(); err != nil {
		return err
	}
	if err := step(n.fanout.Start, n.fanout.Shutdown); err != nil {
		return err
	}
	if n.bus != nil {
		if err := step(n.bus.Start, n.bus.Shutdown); err != nil {
			return err
		}
	}
	if n.table != nil {
		if err := step(n.table.Start, n.table.Shutdown); err != nil {
			return err
		}
	}
	if err := step(n.accounts.Start, n.accounts.Shutdown); err != nil {
		return err
	}
	if n.push != nil {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := n.push.Start(pctx)
		cancel()
		if err != nil {
			return err
		}
		undo = append(undo, n.push.Shutdown)
	}
	if err := step(n.core.Start, n.core.Shutdown); err != nil {
		return err
	}
	n.startModeration()
	undo = append(undo, func(context.Context) error { n.stopModeration(); return nil })
	if err := n.broker.Start(ctx); err != nil {
		return err
	}
	n.serveHTTP()
	if n.certs != nil {
		cctx, cancel := context.WithCancel(context.Background())
		n.certsStop = cancel
		n.goroutines.Go(func() { n.certs.Run(cctx) })
	}
	n.logListeners()
	return nil
}

// Shutdown drains the node: it stops accepting connections, commits and
// acknowledges every publish already taken, delivers what was committed,
// then disconnects the clients (0x8B for MQTT 5) and stops, each step
// bounded by ctx. It is idempotent; the store is the caller's to close.
func (n *Node) Shutdown(ctx context.Context) error {
	n.shutdown.Do(func() {
		n.draining.Store(true)
		_ = n.limits.Stop()      // connections held for failed authentications are answered now
		n.broker.StopAccepting() // clients stay for now
		err := n.core.Shutdown(ctx)
		aerr := n.accounts.Shutdown(ctx)
		var berr, ferr error
		if err == nil {
			// Only once the committer is done: a commit that outlives the
			// deadline still hands its events to fanout and the bus.
			if n.bus != nil {
				berr = n.bus.Shutdown(ctx)
			}
			ferr = n.fanout.Shutdown(ctx)
		}
		var perr error
		if n.push != nil {
			perr = n.push.Shutdown(ctx) // after the committer: its last nudges are taken or left in the outbox
		}
		merr := n.broker.Shutdown(ctx) // delivers what was queued, then disconnects
		var terr error
		if n.table != nil {
			terr = n.table.Shutdown(ctx)
		}
		herr := n.shutdownHTTP(ctx)
		if n.certsStop != nil {
			n.certsStop()
		}
		n.stopModeration()
		gerr := n.goroutines.Wait(ctx) // HTTP servers, certificate poller
		n.shutdownErr = errors.Join(err, aerr, berr, ferr, perr, merr, terr, herr, gerr)
	})
	return n.shutdownErr
}

// serverReference is where draining MQTT 5 devices are sent: the
// configured one, else the other live nodes (a space-separated list).
func (n *Node) serverReference() string {
	if n.cfg.ServerReference != "" || n.table == nil {
		return n.cfg.ServerReference
	}
	return strings.Join(n.table.Peers(), " ")
}
