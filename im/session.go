package im

import (
	"sync"

	"github.com/mqim/mqim/internal/ratelimit"
	"github.com/mqim/mqim/protocol"
)

// Session is an authenticated caller: one MQTT connection, or one HTTP
// request. The transport creates it once it knows who is calling and keeps
// it for as long as the connection lives.
type Session struct {
	User   string
	Client string          // the MQTT client id; "" for a request over HTTP
	Role   string          // the token's role claim (authtoken.Role…)
	Format protocol.Format // what the session reads [IM-1.2-3]
	// IssuedAt is the token's iat (unix seconds): revoking the user's
	// tokens ends the session if it is earlier [IM-3.1-8].
	IssuedAt int64
	// Operator says the session is the server's operator acting on groups
	// (the admin API [IM-8.3-9]): only the group methods, as neither a
	// member nor the owner. Only the admin API sets it.
	Operator bool
	// Abort ends the session's connection after a panic while serving it;
	// nil: there is nothing to end.
	Abort func(error)

	mu      sync.Mutex
	arrival arrival // arrival.go
	// The session's rate-limit buckets: sends and RPC requests
	// (ratelimit.go), typing signals (typing.go); nil until first used.
	sends, rpcs, typing *ratelimit.Bucket
}

// bucket returns the session's rate-limit bucket *p, made with limit on
// first use.
func (s *Session) bucket(p **ratelimit.Bucket, limit ratelimit.Limit) *ratelimit.Bucket {
	s.mu.Lock()
	defer s.mu.Unlock()
	if *p == nil {
		*p = ratelimit.NewBucket(limit)
	}
	return *p
}
