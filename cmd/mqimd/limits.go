package main

import (
	"flag"
	"fmt"
	"time"

	"github.com/mqim/mqim/internal/ratelimit"
	"github.com/mqim/mqim/server"
)

// limitOptions are the flags of the rate and connection limits
// [IM-1.3-6], [IM-3.1-9]; every rate 0 turns its limit off.
type limitOptions struct {
	on                                                 bool
	userSends, connSends, userRPCs, connRPCs, connects rateFlags
	authFree                                           int
	authMaxDelay                                       time.Duration
	userConns                                          int
}

// rateFlags are the two flags of one token bucket.
type rateFlags struct {
	name string // the flags' stem: --limit-<name>-rate, --limit-<name>-burst
	ratelimit.Limit
}

func (r *rateFlags) register(fs *flag.FlagSet, name, what string, rate float64, burst int) {
	r.name = name
	fs.Float64Var(&r.Rate, "limit-"+name+"-rate", rate, what+" a second, sustained (a token bucket); 0: no limit")
	fs.IntVar(&r.Burst, "limit-"+name+"-burst", burst, "with --limit-"+name+"-rate: how many may come at once before the rate applies")
}

func (r *rateFlags) check() error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("--limit-%s-rate, --limit-%s-burst: %w", r.name, r.name, err)
	}
	return nil
}

func (l *limitOptions) register(fs *flag.FlagSet) {
	fs.BoolVar(&l.on, "limits", true, "false: none of the --limit-* limits (for load tests and benchmarks; never on a public node)")
	l.userSends.register(fs, "user-send", "sends of one user (all its connections; bridges and admins are not limited)", server.DefaultUserSendRate, server.DefaultUserSendBurst)
	l.connSends.register(fs, "conn-send", "sends of one connection", server.DefaultConnSendRate, server.DefaultConnSendBurst)
	l.userRPCs.register(fs, "user-rpc", "RPC requests of one user (every method counts)", server.DefaultUserRPCRate, server.DefaultUserRPCBurst)
	l.connRPCs.register(fs, "conn-rpc", "RPC requests of one connection", server.DefaultConnRPCRate, server.DefaultConnRPCBurst)
	l.connects.register(fs, "connect", "CONNECTs from one source address (IPv6: one /64; behind a load balancer, see --proxy-protocol-from)", server.DefaultAddrConnectRate, server.DefaultAddrConnectBurst)
	fs.IntVar(&l.authFree, "limit-auth-free-failures", server.DefaultAuthFreeFailures, "failed authentications of one address or user answered at once; later ones wait 100ms, doubling")
	fs.DurationVar(&l.authMaxDelay, "limit-auth-max-delay", server.DefaultAuthMaxDelay, "the longest wait before answering a failed authentication; 0: never wait")
	fs.IntVar(&l.userConns, "limit-user-connections", server.DefaultMaxUserConnections, "connections of one user in the cluster (a takeover of the same client id does not count); 0: no limit")
}

// config checks the flags and returns the node's limits.
func (l *limitOptions) config() (*server.Limits, error) {
	if !l.on {
		return &server.Limits{}, nil
	}
	for _, r := range []*rateFlags{&l.userSends, &l.connSends, &l.userRPCs, &l.connRPCs, &l.connects} {
		if err := r.check(); err != nil {
			return nil, err
		}
	}
	lim := &server.Limits{
		UserSends: l.userSends.Limit, ConnSends: l.connSends.Limit, UserRPCs: l.userRPCs.Limit, ConnRPCs: l.connRPCs.Limit,
		AddrConnects: l.connects.Limit, AuthFreeFailures: l.authFree, AuthMaxDelay: l.authMaxDelay, MaxUserConnections: l.userConns,
	}
	if l.authFree < 0 {
		return nil, fmt.Errorf("--limit-auth-free-failures %d: must not be negative", l.authFree)
	}
	if l.userConns < 0 {
		return nil, fmt.Errorf("--limit-user-connections %d: must not be negative (0: no limit)", l.userConns)
	}
	if err := lim.Validate(); err != nil {
		return nil, fmt.Errorf("--limit-auth-max-delay: %w", err)
	}
	return lim, nil
}
