package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/mqim/mqim/httpapi"
	"github.com/mqim/mqim/internal/certs"
	imqtt "github.com/mqim/mqim/mqtt"
)

// The node's listeners, by name: the plain ones always, the TLS ones with a
// certificate [IM-1.1-5], metrics and admin when given addresses of their
// own [IM-8.4].
const (
	lnMQTT    = "mqtt"
	lnWS      = "ws"
	lnHTTP    = "http"
	lnMQTTS   = "mqtts"
	lnWSS     = "wss"
	lnHTTPS   = "https"
	lnMetrics = "metrics"
	lnAdmin   = "admin"
)

// The broker's ids of the MQTT listeners.
var mqttListenerIDs = map[string]string{lnMQTT: "tcp", lnWS: "ws", lnMQTTS: "tls", lnWSS: "wss"}

// boundListener is one bound address.
type boundListener struct {
	name string
	ln   net.Listener // PROXY protocol and TLS applied as configured
	tls  bool
}

// tlsSetup checks the TLS and PROXY protocol settings of cfg and loads the
// certificate: nil without one.
func tlsSetup(cfg Config) (*certs.Reloader, imqtt.CertIdentity, proxyproto.ConnPolicyFunc, error) {
	id, err := imqtt.ParseCertIdentity(cfg.TLSClientIdentity)
	if err != nil {
		return nil, "", nil, fmt.Errorf("server: %w", err)
	}
	var policy proxyproto.ConnPolicyFunc
	if len(cfg.ProxyProtocolFrom) > 0 {
		// From a trusted range the header is optional (health checks and
		// direct clients have none); from elsewhere it ends the connection.
		if policy, err = proxyproto.PolicyFromRanges(cfg.ProxyProtocolFrom, proxyproto.USE, proxyproto.REJECT); err != nil {
			return nil, "", nil, fmt.Errorf("server: PROXY protocol sources %q: %w", cfg.ProxyProtocolFrom, err)
		}
	}
	switch {
	case cfg.TLSCert == "" && cfg.TLSKey == "" && cfg.TLSClientCA == "":
		return nil, id, policy, nil
	case cfg.TLSCert == "" || cfg.TLSKey == "":
		return nil, "", nil, errors.New("server: TLS needs both a certificate and a key file (--tls-cert, --tls-key)")
	}
	r, err := certs.New(certs.Config{CertFile: cfg.TLSCert, KeyFile: cfg.TLSKey, ClientCAFile: cfg.TLSClientCA,
		Poll: cfg.TLSPoll, Log: cfg.Log, Registerer: cfg.Registry})
	if err != nil {
		return nil, "", nil, fmt.Errorf("server: %w", err)
	}
	return r, id, policy, nil
}

// bind binds every configured listener, or none: a taken port or a bad
// address is an error naming it.
func (n *Node) bind() error {
	type spec struct {
		name, what, addr string
		tls              *tls.Config
	}
	specs := []spec{
		{lnMQTT, "MQTT", n.cfg.MQTTAddr, nil},
		{lnWS, "WebSocket", n.cfg.WSAddr, nil},
		{lnHTTP, "HTTP", n.cfg.HTTPAddr, nil},
	}
	if n.certs != nil {
		specs = append(specs,
			spec{lnMQTTS, "MQTT over TLS", n.cfg.MQTTSAddr, n.certs.TLSConfig()},
			spec{lnWSS, "WebSocket over TLS", n.cfg.WSSAddr, n.certs.TLSConfig("http/1.1")},
			spec{lnHTTPS, "HTTPS", n.cfg.HTTPSAddr, n.certs.TLSConfig("h2", "http/1.1")})
	}
	if n.cfg.MetricsAddr != "" {
		specs = append(specs, spec{lnMetrics, "metrics", n.cfg.MetricsAddr, nil})
	}
	if n.cfg.AdminAddr != "" {
		var c *tls.Config
		if n.certs != nil {
			c = n.certs.TLSConfig("h2", "http/1.1")
		}
		specs = append(specs, spec{lnAdmin, "admin API", n.cfg.AdminAddr, c})
	}
	n.listeners = map[string]*boundListener{}
	for _, s := range specs {
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			n.closeListeners()
			return fmt.Errorf("cannot listen for %s on %s: %w", s.what, s.addr, err)
		}
		if n.proxy != nil {
			ln = &proxyproto.Listener{Listener: ln, ConnPolicy: n.proxy, ReadHeaderTimeout: proxyHeaderTimeout}
		}
		if s.tls != nil {
			ln = tls.NewListener(ln, s.tls)
		}
		n.listeners[s.name] = &boundListener{name: s.name, ln: ln, tls: s.tls != nil}
	}
	return nil
}

// closeListeners closes what bind bound (a Start that failed).
func (n *Node) closeListeners() {
	for _, b := range n.listeners {
		b.ln.Close()
	}
}

// proxyHeaderTimeout bounds the wait for a PROXY protocol header: HAProxy
// sends it at once.
const proxyHeaderTimeout = 5 * time.Second

// serveMQTT hands the MQTT listeners to the broker.
func (n *Node) serveMQTT() error {
	for _, name := range []string{lnMQTT, lnWS, lnMQTTS, lnWSS} {
		b, ok := n.listeners[name]
		if !ok {
			continue
		}
		add := n.broker.AddWSListener
		if name == lnMQTT || name == lnMQTTS {
			add = n.broker.AddTCPListener
		}
		if err := add(mqttListenerIDs[name], b.ln); err != nil {
			return err
		}
	}
	return nil
}

// httpServers are the HTTP servers of the node's HTTP listeners, built by
// New; Start serves those whose listener is configured.
func (n *Node) httpServers() map[string]*http.Server {
	srv := func(h http.Handler) *http.Server {
		// Failed TLS handshakes (scanners, clients that do not trust the
		// certificate) are not the node's faults.
		return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(n.log.Handler(), slog.LevelDebug)}
	}
	out := map[string]*http.Server{lnHTTP: srv(n.routes(n.portOf(lnWS)))}
	if n.certs != nil {
		// The page served over HTTPS connects over wss.
		out[lnHTTPS] = srv(n.routes(n.portOf(lnWSS)))
	}
	if n.cfg.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", httpapi.Metrics(n.cfg.Registry, n.cfg.MetricsToken))
		out[lnMetrics] = srv(mux)
	}
	if n.cfg.AdminAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /livez", httpapi.Livez)
		n.adminRoutes(mux)
		out[lnAdmin] = srv(mux)
	}
	return out
}

// serveHTTP serves the HTTP listeners; Shutdown stops them.
func (n *Node) serveHTTP() {
	for name, srv := range n.http {
		b := n.listeners[name]
		n.goroutines.Go(func() {
			if err := srv.Serve(b.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				n.log.Error("HTTP server stopped", "listener", name, "error", err)
			}
		})
	}
}

// shutdownHTTP stops the HTTP servers, waiting for requests in progress
// until ctx ends.
func (n *Node) shutdownHTTP(ctx context.Context) error {
	var errs []error
	for name, srv := range n.http {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("HTTP %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// logListeners says at start which listeners are plaintext and which TLS.
func (n *Node) logListeners() {
	var plain, secure []string
	for _, name := range []string{lnMQTT, lnWS, lnHTTP, lnMetrics, lnAdmin, lnMQTTS, lnWSS, lnHTTPS} {
		b, ok := n.listeners[name]
		if !ok {
			continue
		}
		if b.tls {
			secure = append(secure, name+"="+b.ln.Addr().String())
		} else {
			plain = append(plain, name+"="+b.ln.Addr().String())
		}
	}
	attrs := []any{"plaintext", strings.Join(plain, " "), "tls", strings.Join(secure, " ")}
	if n.certs != nil && n.certs.ClientCA() {
		attrs = append(attrs, "client_certificates", "verified, user id from "+string(n.certID))
	}
	if n.proxy != nil {
		attrs = append(attrs, "proxy_protocol_from", strings.Join(n.cfg.ProxyProtocolFrom, ","))
	}
	n.log.Info("listening", attrs...)
}

// addr is the bound address of a listener, "" if it is not configured.
func (n *Node) addr(name string) string {
	if b, ok := n.listeners[name]; ok {
		return b.ln.Addr().String()
	}
	return ""
}

// portOf returns a function that tells a listener's port, 0 before Start.
func (n *Node) portOf(name string) func() int {
	return func() int {
		if b, ok := n.listeners[name]; ok {
			if a, ok := b.ln.Addr().(*net.TCPAddr); ok {
				return a.Port
			}
		}
		return 0
	}
}

// ReloadTLS reads the certificate, key and client CA files again (mqimd
// does on SIGHUP); new handshakes use them, established connections stay.
// On an error the previous certificate stays in use.
func (n *Node) ReloadTLS() error {
	if n.certs == nil {
		return errors.New("no TLS certificate configured")
	}
	return n.certs.Reload()
}

// The bound addresses (after Start); "" for a listener not configured.
func (n *Node) MQTTAddr() string    { return n.addr(lnMQTT) }
func (n *Node) WSAddr() string      { return n.addr(lnWS) }
func (n *Node) HTTPAddr() string    { return n.addr(lnHTTP) }
func (n *Node) MQTTSAddr() string   { return n.addr(lnMQTTS) }
func (n *Node) WSSAddr() string     { return n.addr(lnWSS) }
func (n *Node) HTTPSAddr() string   { return n.addr(lnHTTPS) }
func (n *Node) MetricsAddr() string { return n.addr(lnMetrics) }
func (n *Node) AdminAddr() string   { return n.addr(lnAdmin) }
