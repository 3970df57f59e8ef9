// Package certs holds a node's TLS certificate: it loads the certificate,
// key and optional client CA from files, reloads them when the files change
// (polled) or when asked (SIGHUP), and hands every TLS listener a
// tls.Config whose handshakes use the newest ones. Connections already
// established keep the certificate they were made with.
package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mqim/mqim/internal/filewatch"
)

// DefaultPoll is how often the files are checked for changes.
const DefaultPoll = 10 * time.Second

// Config names the files. CertFile and KeyFile are required.
type Config struct {
	CertFile, KeyFile string
	ClientCAFile      string        // PEM CA certificates that sign client certificates; empty: no mTLS
	Poll              time.Duration // zero: DefaultPoll
	Log               *slog.Logger  // zero: slog.Default()
	Registerer        prometheus.Registerer
}

// Reloader is the current TLS configuration of a node.
type Reloader struct {
	cfg Config
	cur atomic.Pointer[tls.Config]

	watch   filewatch.Watcher
	expiry  prometheus.Gauge
	reloads *prometheus.CounterVec
}

func (c *Config) files() []string {
	f := []string{c.CertFile, c.KeyFile}
	if c.ClientCAFile != "" {
		f = append(f, c.ClientCAFile)
	}
	return f
}

// New loads the files: a missing file, a malformed certificate or key, a
// key that does not match the certificate, or a CA file without
// certificates is an error naming the file.
func New(cfg Config) (*Reloader, error) {
	if cfg.CertFile == "" || cfg.KeyFile == "" {
		return nil, errors.New("tls: a certificate file and a key file are both required")
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	r := &Reloader{cfg: cfg,
		expiry: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mqim_tls_certificate_expiry_timestamp_seconds",
			Help: "When the served TLS certificate expires (unix seconds)."}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mqim_tls_reloads_total",
			Help: "Reloads of the TLS certificate files, by result (ok, error)."}, []string{"result"}),
	}
	r.watch = filewatch.Watcher{Name: "tls", Files: cfg.files(), Load: r.load, Result: filewatch.Counter(r.reloads),
		Failed: func(err error) {
			r.cfg.Log.Warn("TLS files changed but cannot be loaded; serving the previous certificate", "error", err)
		}}
	if err := r.watch.Init(); err != nil {
		return nil, err
	}
	if cfg.Registerer != nil {
		if err := errors.Join(cfg.Registerer.Register(r.expiry), cfg.Registerer.Register(r.reloads)); err != nil {
			return nil, fmt.Errorf("tls: register metrics: %w", err)
		}
	}
	return r, nil
}

// load reads the files and, if they are good, makes them current.
func (r *Reloader) load() error {
	cert, err := tls.LoadX509KeyPair(r.cfg.CertFile, r.cfg.KeyFile)
	if err != nil {
		return fmt.Errorf("tls: certificate %s, key %s: %w", r.cfg.CertFile, r.cfg.KeyFile, err)
	}
	c := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
	}
	if r.cfg.ClientCAFile != "" {
		pem, err := os.ReadFile(r.cfg.ClientCAFile)
		if err != nil {
			return fmt.Errorf("tls: client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("tls: client CA file %s holds no PEM certificate", r.cfg.ClientCAFile)
		}
		// A device without a certificate may still log in with a token;
		// one that presents a certificate must present a valid one.
		c.ClientCAs, c.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	r.cur.Store(c)
	r.expiry.Set(float64(cert.Leaf.NotAfter.Unix()))
	r.cfg.Log.Info("TLS certificate loaded", "file", r.cfg.CertFile, "subject", cert.Leaf.Subject.String(),
		"not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339), "client_ca", r.cfg.ClientCAFile)
	return nil
}

// Reload reads the files again (SIGHUP). On an error the current
// configuration stays.
func (r *Reloader) Reload() error { return r.watch.Reload() }

// Run checks the files for changes until ctx ends.
func (r *Reloader) Run(ctx context.Context) { r.watch.Run(ctx, r.cfg.Poll) }

// ClientCA reports whether client certificates are verified (mTLS).
func (r *Reloader) ClientCA() bool { return r.cfg.ClientCAFile != "" }

// TLSConfig is the configuration of one listener; protos are its ALPN
// protocols. Each handshake takes the current certificate.
func (r *Reloader) TLSConfig(protos ...string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			c := r.cur.Load()
			if len(protos) > 0 {
				c = c.Clone()
				c.NextProtos = protos
			}
			return c, nil
		},
	}
}
