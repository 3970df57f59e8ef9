package mqtt

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	gosync "sync"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mqim/mqim/internal/ratelimit"
	"github.com/mqim/mqim/protocol"
)

// ConnLimitsConfig configures the limits of CONNECT [IM-3.1-9]. Zero
// values limit nothing.
type ConnLimitsConfig struct {
	// Connects is the CONNECT rate per source address (after the PROXY
	// protocol; an IPv6 address counts as its /64).
	Connects ratelimit.Limit
	// Failures delays the answer to failed authentications, counted per
	// source address and per user id.
	Failures ratelimit.BackoffConfig
	// MaxPerUser bounds the connections of one user in the cluster.
	MaxPerUser int
	// Devices returns the client ids of user's devices in the cluster's
	// routing table; nil: only this node's are counted.
	Devices    func(user string) []string
	Log        *slog.Logger
	Registerer prometheus.Registerer
}

// ConnLimits enforces the CONNECT limits: the auth hook asks it at
// CONNECT (Admit, Failed, Full), and as a hook of its own it counts each
// user's connections on this node, from session start to disconnect.
type ConnLimits struct {
	mochi.HookBase
	cfg      ConnLimitsConfig
	connects *ratelimit.Keyed
	byAddr   *ratelimit.Backoff
	byUser   *ratelimit.Backoff

	mu    gosync.Mutex
	local map[string]map[*mochi.Client]string // user → connections here → client id

	stop     chan struct{} // closed by Stop: delays end at once
	stopOnce gosync.Once

	limited *prometheus.CounterVec
	delays  prometheus.Histogram
}

var _ mochi.Hook = (*ConnLimits)(nil)

// Labels of mqim_connect_limited_total.
const (
	limitAddrConnects = "addr_rate"
	limitUserConns    = "user_connections"
)

// NewConnLimits returns the limits of a valid cfg.
func NewConnLimits(cfg ConnLimitsConfig) *ConnLimits {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	l := &ConnLimits{
		cfg:      cfg,
		connects: ratelimit.NewKeyed(cfg.Connects, 0),
		byAddr:   ratelimit.NewBackoff(cfg.Failures),
		byUser:   ratelimit.NewBackoff(cfg.Failures),
		local:    map[string]map[*mochi.Client]string{},
		stop:     make(chan struct{}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mqim_connect_limited_total",
			Help: "CONNECTs refused by a limit: addr_rate (0x9F, connects per address), user_connections (0x97, connections per user).",
		}, []string{"limit"}),
		delays: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mqim_auth_failure_delay_seconds",
			Help:    "How long the answer (0x86 / 4) to a failed authentication was held; 0 for the first failures of an address and user.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 9),
		}),
	}
	l.limited.WithLabelValues(limitAddrConnects)
	l.limited.WithLabelValues(limitUserConns)
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(l.limited, l.delays)
	}
	return l
}

// ID names the hook.
func (l *ConnLimits) ID() string { return "mqim-conn-limits" }

// Provides lists the events handled.
func (l *ConnLimits) Provides(b byte) bool {
	return bytes.Contains([]byte{mochi.OnSessionEstablished, mochi.OnDisconnect}, []byte{b})
}

// Stop ends the delays in progress, and makes later ones none, so that a
// draining node does not wait for them. Idempotent.
func (l *ConnLimits) Stop() error {
	l.stopOnce.Do(func() { close(l.stop) })
	return nil
}

// addrKey is what the per-address limits count cl under: its IPv4
// address, or its IPv6 /64 (one subscriber's usual allocation).
func addrKey(cl *mochi.Client) (string, bool) {
	host, _, err := net.SplitHostPort(cl.Net.Remote)
	if err != nil {
		host = cl.Net.Remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return "", false
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String(), true
	}
	return a.String(), true
}

// Admit takes a token of cl's address's CONNECT bucket; without one, it
// returns the refusal: 0x9F Connection rate exceeded (3.1.1: 3).
func (l *ConnLimits) Admit(cl *mochi.Client) (packets.Code, bool) {
	if l == nil {
		return packets.Code{}, true
	}
	key, ok := addrKey(cl)
	if !ok {
		return packets.Code{}, true
	}
	if ok, wait := l.connects.Take(key, time.Now()); !ok {
		l.limited.WithLabelValues(limitAddrConnects).Inc()
		l.cfg.Log.Debug("connect refused: connect rate of the address", "remote", cl.Net.Remote, "retry_after", wait)
		return packets.ErrConnectionRateExceeded, false
	}
	return packets.Code{}, true
}

// Failed counts a failed authentication of user from cl's address and
// holds the caller, the connection's own goroutine, for the delay the
// failures of the two call for (the larger). Nothing else waits.
func (l *ConnLimits) Failed(cl *mochi.Client, user string) {
	if l == nil || l.byAddr == nil {
		return
	}
	now := time.Now()
	var d time.Duration
	if key, ok := addrKey(cl); ok {
		d = l.byAddr.Fail(key, now)
	}
	if protocol.ValidID(user) {
		d = max(d, l.byUser.Fail(user, now))
	}
	l.delays.Observe(d.Seconds())
	if d == 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-l.stop:
	}
}

// Full reports whether user has the most connections allowed, cluster-wide,
// not counting cl's client id: a connection that takes over its own device
// is never refused. The count is that of this node's connections and the
// routing table's, which learns other nodes' within milliseconds; connects
// of one user at the same moment may all pass.
func (l *ConnLimits) Full(cl *mochi.Client, user string) bool {
	if l == nil || l.cfg.MaxPerUser <= 0 {
		return false
	}
	ids := map[string]bool{}
	l.mu.Lock()
	for _, id := range l.local[user] {
		ids[id] = true
	}
	l.mu.Unlock()
	if l.cfg.Devices != nil {
		for _, id := range l.cfg.Devices(user) {
			ids[id] = true
		}
	}
	delete(ids, cl.ID)
	if len(ids) < l.cfg.MaxPerUser {
		return false
	}
	l.limited.WithLabelValues(limitUserConns).Inc()
	l.cfg.Log.Info("connect refused: the user has the most connections allowed", "client", cl.ID, "user", user, "connections", len(ids), "max", l.cfg.MaxPerUser)
	return true
}

// OnSessionEstablished counts the connection. mochi calls OnDisconnect
// for every connection it called this for, and for some it did not (a
// CONNACK that failed): OnDisconnect's removal is idempotent.
func (l *ConnLimits) OnSessionEstablished(cl *mochi.Client, _ packets.Packet) {
	user := string(cl.Properties.Username)
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.local[user]
	if m == nil {
		m = map[*mochi.Client]string{}
		l.local[user] = m
	}
	m[cl] = cl.ID
}

// OnDisconnect stops counting the connection.
func (l *ConnLimits) OnDisconnect(cl *mochi.Client, _ error, _ bool) {
	user := string(cl.Properties.Username)
	l.mu.Lock()
	defer l.mu.Unlock()
	if m := l.local[user]; m != nil {
		delete(m, cl)
		if len(m) == 0 {
			delete(l.local, user)
		}
	}
}
