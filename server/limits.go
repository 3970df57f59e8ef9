package server

import (
	"errors"
	"fmt"
	"time"

	"github.com/mqim/mqim/im"
	"github.com/mqim/mqim/internal/ratelimit"
	imqtt "github.com/mqim/mqim/mqtt"
)

// The defaults of Limits [IM-1.3-6], [IM-3.1-9]: a person chatting never
// meets them (a phone that comes back online may send its outbox of a
// thousand messages at once), nor does a chatty bot; one user, or one
// address, cannot take more than a small share of a small node (SQLite on
// two cores commits some 5,000 sends a second, docs/BENCHMARKS.md).
const (
	DefaultUserSendRate       = 50   // sends a second, per user (all its connections)
	DefaultUserSendBurst      = 2000 // sends at once, per user
	DefaultConnSendRate       = 30   // sends a second, per connection
	DefaultConnSendBurst      = 1000
	DefaultUserRPCRate        = 50 // RPC requests a second, per user
	DefaultUserRPCBurst       = 1000
	DefaultConnRPCRate        = 25 // RPC requests a second, per connection
	DefaultConnRPCBurst       = 500
	DefaultAddrConnectRate    = 100  // CONNECTs a second, per source address
	DefaultAddrConnectBurst   = 2000 // a NAT's worth of devices reconnecting at once
	DefaultAuthFreeFailures   = 10   // failed authentications answered at once, per address and per user
	DefaultAuthMaxDelay       = 5 * time.Second
	DefaultMaxUserConnections = 32 // connections per user, cluster-wide
)

// The shape of the failed-authentication delay, documented in the spec
// [IM-3.1-9]: the first delay past the free failures, doubled with each
// failure up to the maximum; one failure forgotten per authDecay.
const (
	authBaseDelay = 100 * time.Millisecond
	authDecay     = 5 * time.Second
)

// Limits are a node's rate and connection limits. A zero field is no
// limit (a zero Rate, a zero AuthMaxDelay, a zero MaxUserConnections);
// Config.Limits nil is DefaultLimits.
type Limits struct {
	// Sends and RPC requests of each user, and of each connection
	// [IM-1.3-6]. Bridge and admin sessions are not limited.
	UserSends, ConnSends, UserRPCs, ConnRPCs ratelimit.Limit
	// AddrConnects is the CONNECT rate of one source address [IM-3.1-9].
	AddrConnects ratelimit.Limit
	// Failed authentications past AuthFreeFailures, of one address or one
	// user, are answered after a delay that doubles up to AuthMaxDelay.
	AuthFreeFailures int
	AuthMaxDelay     time.Duration
	// MaxUserConnections bounds one user's connections in the cluster.
	MaxUserConnections int
}

// DefaultLimits are the limits of a node whose Config sets none.
func DefaultLimits() *Limits {
	return &Limits{
		UserSends:          ratelimit.Limit{Rate: DefaultUserSendRate, Burst: DefaultUserSendBurst},
		ConnSends:          ratelimit.Limit{Rate: DefaultConnSendRate, Burst: DefaultConnSendBurst},
		UserRPCs:           ratelimit.Limit{Rate: DefaultUserRPCRate, Burst: DefaultUserRPCBurst},
		ConnRPCs:           ratelimit.Limit{Rate: DefaultConnRPCRate, Burst: DefaultConnRPCBurst},
		AddrConnects:       ratelimit.Limit{Rate: DefaultAddrConnectRate, Burst: DefaultAddrConnectBurst},
		AuthFreeFailures:   DefaultAuthFreeFailures,
		AuthMaxDelay:       DefaultAuthMaxDelay,
		MaxUserConnections: DefaultMaxUserConnections,
	}
}

// Validate explains what is wrong with l, naming the limit.
func (l *Limits) Validate() error {
	if err := l.core().Validate(); err != nil {
		return err
	}
	if err := l.AddrConnects.Validate(); err != nil {
		return fmt.Errorf("connect rate limit: %w", err)
	}
	if l.AuthMaxDelay > 0 && l.AuthMaxDelay < authBaseDelay {
		return fmt.Errorf("authentication delay %v: at least %v, or 0 for none", l.AuthMaxDelay, authBaseDelay)
	}
	if err := l.failures().Validate(); err != nil {
		return fmt.Errorf("authentication delay: %w", err)
	}
	if l.MaxUserConnections < 0 {
		return errors.New("connections per user: must not be negative (0: no limit)")
	}
	return nil
}

func (l *Limits) core() im.Limits {
	return im.Limits{UserSends: l.UserSends, ConnSends: l.ConnSends, UserRPCs: l.UserRPCs, ConnRPCs: l.ConnRPCs}
}

func (l *Limits) failures() ratelimit.BackoffConfig {
	return ratelimit.BackoffConfig{Free: l.AuthFreeFailures, Base: authBaseDelay, Max: l.AuthMaxDelay, Decay: authDecay}
}

// newConnLimits builds the CONNECT limits; a user's connections on other
// nodes come from the routing table, when there is one.
func (n *Node) newConnLimits() *imqtt.ConnLimits {
	l := n.cfg.Limits
	cfg := imqtt.ConnLimitsConfig{Connects: l.AddrConnects, Failures: l.failures(), MaxPerUser: l.MaxUserConnections,
		Log: n.log, Registerer: n.cfg.Registry}
	if n.table != nil {
		cfg.Devices = func(user string) []string {
			var ids []string
			for id := range n.table.Devices(user) {
				ids = append(ids, id)
			}
			return ids
		}
	}
	return imqtt.NewConnLimits(cfg)
}
