// Package account carries out account control [IM-8.3]: disable and enable
// a user, kick devices, revoke tokens or one device, delete a user. Each
// action is written to the store (what CONNECT checks), recorded in the
// audit log, applied to the live sessions of this node, and announced to
// the other nodes over core NATS, which apply it to theirs [IM-8.3-7].
package account

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	gosync "sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/mqim/mqim/store"
)

// Subject carries account actions between nodes.
const Subject = "mqim.v1.account"

// Reason is why live sessions are ended; the MQTT layer maps it to a
// DISCONNECT reason code [IM-6.2-2].
type Reason int

const (
	// Revoked: the session's token (or its device) was revoked (0x87).
	Revoked Reason = iota + 1
	// Administrative: an admin kicked, disabled or deleted the user (0x98).
	Administrative
)

// Match selects live sessions of one user: Client "" matches every client
// id; IssuedBefore > 0 matches only sessions whose token was issued
// before it (unix seconds).
type Match struct {
	User         string
	Client       string
	IssuedBefore int64
}

// Sessions ends the live sessions on this node that m selects and
// returns how many.
type Sessions interface {
	End(m Match, why Reason) int
}

// MediaEraser deletes the files a user uploaded [IM-8.3-5].
type MediaEraser interface {
	DeleteOwner(ctx context.Context, owner string) (int, error)
}

// Actor is who asks for an action, from where.
type Actor struct {
	Subject string // the token's sub
	Role    string // the token's role
	Remote  string // the request's remote address
}

// Config configures a Service.
type Config struct {
	Store    store.AccountStore // required
	Sessions Sessions           // required
	Media    MediaEraser        // nil: no media to erase
	// NATS is nil (or Standalone) on a node alone: actions apply here only.
	NATS       *nats.Conn
	NodeName   string
	Log        *slog.Logger // zero: slog.Default()
	Registerer prometheus.Registerer
	Now        func() time.Time // zero: time.Now
}

// Service carries out account actions. It is safe for concurrent use.
type Service struct {
	cfg     Config
	actions *prometheus.CounterVec
	ended   prometheus.Counter

	mu  gosync.Mutex
	sub *nats.Subscription
}

// New returns a Service; Start subscribes to the other nodes' actions.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Sessions == nil {
		return nil, errors.New("account: a store and sessions are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Service{cfg: cfg,
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mqim_account_actions_total",
			Help: "Account actions carried out by this node's admin API, by action."}, []string{"action"}),
		ended: prometheus.NewCounter(prometheus.CounterOpts{Name: "mqim_account_sessions_ended_total",
			Help: "Live sessions on this node ended by an account action (kick, disable, delete, revocation)."}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{s.actions, s.ended} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("account: register metrics: %w", err)
			}
		}
	}
	return s, nil
}

// wire is an action announced to the other nodes: the sessions to end.
type wire struct {
	Origin       string `msgpack:"o"`
	User         string `msgpack:"u"`
	Client       string `msgpack:"c"`
	IssuedBefore int64  `msgpack:"b"`
	Reason       Reason `msgpack:"r"`
}

// Start subscribes to the actions of the other nodes.
func (s *Service) Start(context.Context) error {
	if s.cfg.NATS == nil {
		return nil
	}
	sub, err := s.cfg.NATS.Subscribe(Subject, func(m *nats.Msg) {
		var w wire
		if err := msgpack.Unmarshal(m.Data, &w); err != nil || w.Origin == s.cfg.NodeName || w.User == "" {
			return
		}
		s.end(Match{User: w.User, Client: w.Client, IssuedBefore: w.IssuedBefore}, w.Reason)
	})
	if err != nil {
		return fmt.Errorf("account: subscribe %s: %w", Subject, err)
	}
	s.mu.Lock()
	s.sub = sub
	s.mu.Unlock()
	return nil
}

// Shutdown unsubscribes; an action being handled (NATS's callback) ends
// on its own.
func (s *Service) Shutdown(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sub != nil {
		_ = s.sub.Unsubscribe() // fails only on a closed connection: nothing arrives then
		s.sub = nil
	}
	return nil
}

func (s *Service) end(m Match, why Reason) int {
	n := s.cfg.Sessions.End(m, why)
	s.ended.Add(float64(n))
	return n
}

// endEverywhere ends the sessions m selects here and on the other nodes.
func (s *Service) endEverywhere(m Match, why Reason) {
	s.end(m, why)
	if s.cfg.NATS == nil {
		return
	}
	b, err := msgpack.Marshal(&wire{Origin: s.cfg.NodeName, User: m.User, Client: m.Client, IssuedBefore: m.IssuedBefore, Reason: why})
	if err == nil {
		err = s.cfg.NATS.Publish(Subject, b)
	}
	if err != nil {
		// The store holds the action: reconnects are refused anyway.
		s.cfg.Log.Warn("account action not announced to the other nodes", "user", m.User, "error", err)
	}
}

// Record appends an audit entry [IM-8.3-6]; detail must hold no message
// body and no token.
func (s *Service) Record(ctx context.Context, a Actor, action, target, detail string) error {
	_, err := s.cfg.Store.AppendAudit(ctx, store.AuditEntry{TS: s.cfg.Now().UnixMilli(), Actor: a.Subject, Role: a.Role,
		Action: action, Target: target, Detail: detail, Remote: a.Remote})
	if err != nil {
		s.cfg.Log.Error("audit entry not stored", "action", action, "target", target, "actor", a.Subject, "error", err)
		return fmt.Errorf("record %s: %w", action, err)
	}
	s.actions.WithLabelValues(action).Inc()
	return nil
}

// Disable disables user: CONNECT is refused (0x8A) and its live sessions
// end (0x98) [IM-8.3-2].
func (s *Service) Disable(ctx context.Context, a Actor, user string) error {
	if err := s.cfg.Store.SetDisabled(ctx, user, true); err != nil {
		return err
	}
	s.endEverywhere(Match{User: user}, Administrative)
	return s.Record(ctx, a, store.AuditUserDisabled, user, "")
}

// Enable enables a disabled user.
func (s *Service) Enable(ctx context.Context, a Actor, user string) error {
	if err := s.cfg.Store.SetDisabled(ctx, user, false); err != nil {
		return err
	}
	return s.Record(ctx, a, store.AuditUserEnabled, user, "")
}

// Kick ends user's live sessions, or one device's (client not empty), with
// 0x98; they may reconnect [IM-8.3-3].
func (s *Service) Kick(ctx context.Context, a Actor, user, client string) error {
	acc, err := s.cfg.Store.Account(ctx, user, "")
	if err != nil {
		return err
	}
	if !acc.Exists {
		return store.UnknownUserError(user)
	}
	s.endEverywhere(Match{User: user, Client: client}, Administrative)
	return s.Record(ctx, a, store.AuditKick, user, detail("client", client))
}

// RevokeTokens refuses user's tokens issued before now ("log out
// everywhere"): live sessions with such a token end (0x87), and so do
// their reconnects [IM-3.1-8]. It returns the not-before (unix seconds).
func (s *Service) RevokeTokens(ctx context.Context, a Actor, user string) (int64, error) {
	// iat has one-second resolution: a token minted earlier in this very
	// second must go too, so the not-before is the end of this second
	// [IM-3.1-8].
	nb := s.cfg.Now().Unix() + 1
	if err := s.cfg.Store.RevokeTokens(ctx, user, nb); err != nil {
		return 0, err
	}
	s.endEverywhere(Match{User: user, IssuedBefore: nb}, Revoked)
	return nb, s.Record(ctx, a, store.AuditTokensRevoked, user, fmt.Sprintf("not_before=%d", nb))
}

// RevokeDevice refuses one client id of user ("this device was stolen"):
// its live session ends (0x87) and CONNECT with it is refused; revoked
// false restores it [IM-3.1-8].
func (s *Service) RevokeDevice(ctx context.Context, a Actor, user, client string, revoked bool) error {
	if err := s.cfg.Store.RevokeDevice(ctx, user, client, revoked); err != nil {
		return err
	}
	action := store.AuditDeviceRestored
	if revoked {
		action = store.AuditDeviceRevoked
		s.endEverywhere(Match{User: user, Client: client}, Revoked)
	}
	return s.Record(ctx, a, action, user, detail("client", client))
}

// Delete deletes user [IM-8.3-5]: the store erases its data and tombstones
// the id, its live sessions end (0x98), the media it uploaded is deleted.
func (s *Service) Delete(ctx context.Context, a Actor, user string) error {
	if err := s.cfg.Store.DeleteUser(ctx, user, s.cfg.Now().UnixMilli()); err != nil {
		return err
	}
	s.endEverywhere(Match{User: user}, Administrative)
	var parts []string
	if s.cfg.Media != nil {
		n, err := s.cfg.Media.DeleteOwner(ctx, user)
		parts = append(parts, fmt.Sprintf("media_deleted=%d", n))
		if err != nil {
			// Audited as incomplete; deleting again retries.
			s.cfg.Log.Warn("deleted user's media not all deleted", "user", user, "error", err)
			parts = append(parts, "media_error=true")
			if rerr := s.Record(ctx, a, store.AuditUserDeleted, user, strings.Join(parts, " ")); rerr != nil {
				return rerr
			}
			return fmt.Errorf("delete media of %q: %w", user, err)
		}
	}
	return s.Record(ctx, a, store.AuditUserDeleted, user, strings.Join(parts, " "))
}

func detail(k, v string) string {
	if v == "" {
		return ""
	}
	return k + "=" + v
}
