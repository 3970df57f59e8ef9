package im

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mqim/mqim/internal/ratelimit"
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/protocol/authtoken"
	"github.com/mqim/mqim/store"
)

// Limits are the rate limits of sends and RPC requests [IM-1.3-6]: token
// buckets per user (all the user's devices on this node together) and per
// session (one connection). A zero Limit is no limit; the zero Limits
// limit nothing (the server's configuration fills in its defaults).
// Bridge and admin sessions are not limited: they are the operator's
// services, and a bridge sends notifications in bulk.
type Limits struct {
	UserSends, ConnSends ratelimit.Limit
	// Every RPC request counts, whatever its method: sync and history
	// pages as much as a group change. The bursts are what lets a device
	// that reconnects page through its backlog at once.
	UserRPCs, ConnRPCs ratelimit.Limit
	Users              int // users whose buckets are kept at most; zero: ratelimit.DefaultKeys
}

// Validate explains what is wrong with l, if anything.
func (l Limits) Validate() error {
	for name, v := range map[string]ratelimit.Limit{"user send": l.UserSends, "connection send": l.ConnSends, "user RPC": l.UserRPCs, "connection RPC": l.ConnRPCs} {
		if err := v.Validate(); err != nil {
			return fmt.Errorf("%s limit: %w", name, err)
		}
	}
	return nil
}

// Labels of mqim_rate_limited_total.
const (
	limitUserSends = "user_send"
	limitConnSends = "conn_send"
	limitUserRPCs  = "user_rpc"
	limitConnRPCs  = "conn_rpc"
)

// limiter holds the per-user buckets; the per-session ones are on the
// Session.
type limiter struct {
	sends, rpcs rated
	limited     *prometheus.CounterVec
	log         *slog.Logger
}

// rated is one thing limited: sends, or RPC requests.
type rated struct {
	what                 string
	conn, user           ratelimit.Limit
	connLabel, userLabel string
	users                *ratelimit.Keyed
	bucket               func(*Session) **ratelimit.Bucket // the session's, made on first use
}

func newLimiter(cfg Limits, log *slog.Logger, reg prometheus.Registerer) *limiter {
	l := &limiter{
		sends: rated{what: "sends", conn: cfg.ConnSends, user: cfg.UserSends, connLabel: limitConnSends, userLabel: limitUserSends,
			users: ratelimit.NewKeyed(cfg.UserSends, cfg.Users), bucket: func(s *Session) **ratelimit.Bucket { return &s.sends }},
		rpcs: rated{what: "RPC requests", conn: cfg.ConnRPCs, user: cfg.UserRPCs, connLabel: limitConnRPCs, userLabel: limitUserRPCs,
			users: ratelimit.NewKeyed(cfg.UserRPCs, cfg.Users), bucket: func(s *Session) **ratelimit.Bucket { return &s.rpcs }},
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mqim_rate_limited_total",
			Help: "Sends and RPC requests over a rate limit, by the limit (user_send, conn_send, user_rpc, conn_rpc); refused rate_limited unless a retry of a stored send.",
		}, []string{"limit"}),
		log: log,
	}
	for _, name := range []string{limitUserSends, limitConnSends, limitUserRPCs, limitConnRPCs} {
		l.limited.WithLabelValues(name) // exported at zero
	}
	if reg != nil {
		reg.MustRegister(l.limited,
			keysGauge("send", l.sends.users.Len),
			keysGauge("rpc", l.rpcs.users.Len))
	}
	return l
}

func keysGauge(what string, n func() int) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "mqim_rate_limit_users",
		Help:        "Users whose rate-limit bucket is kept in memory (those that used part of it recently), by what it limits.",
		ConstLabels: prometheus.Labels{"limit": what},
	}, func() float64 { return float64(n()) })
}

// exempt reports whether sess is one of the operator's services, which
// are not rate limited.
func exempt(sess *Session) bool {
	return sess.Role == authtoken.RoleBridge || sess.Role == authtoken.RoleAdmin
}

// sendLimit is the policy's rate-limit check [IM-1.3-6]. A refused send
// of a stored message still goes through (policy.go).
func (s *Service) sendLimit(_ context.Context, sess *Session, _ *store.SendRequest) *protocol.Error {
	return s.limits.take(sess, &s.limits.sends)
}

// rpcLimit refuses an RPC request over the rate limit [IM-1.3-6].
func (s *Service) rpcLimit(sess *Session) *protocol.Error {
	return s.limits.take(sess, &s.limits.rpcs)
}

// take takes a token of the session's bucket, then of its user's: a
// device over its own limit does not use up its user's.
func (l *limiter) take(sess *Session, r *rated) *protocol.Error {
	if exempt(sess) {
		return nil
	}
	now := time.Now()
	if r.conn.On() {
		if ok, wait := sess.bucket(r.bucket(sess), r.conn).Take(now); !ok {
			return l.refuse(sess, r.connLabel, r.conn, r.what+" of this connection", wait)
		}
	}
	if ok, wait := r.users.Take(sess.User, now); !ok {
		return l.refuse(sess, r.userLabel, r.user, r.what+" of user "+sess.User, wait)
	}
	return nil
}

func (l *limiter) refuse(sess *Session, label string, lim ratelimit.Limit, what string, wait time.Duration) *protocol.Error {
	l.limited.WithLabelValues(label).Inc()
	l.log.Debug("rate limited", "limit", label, "user", sess.User, "client", sess.Client, "retry_after", wait)
	return protocol.RateLimited(fmt.Sprintf("%s: more than %g a second (burst %d); retry later", what, lim.Rate, lim.Burst), wait)
}
