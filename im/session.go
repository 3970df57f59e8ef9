package im

import (
	"sync"
	"time"

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
	typing  bucket  // typing.go
	arrival arrival // arrival.go
	// The session's send and RPC rate-limit buckets (ratelimit.go); nil
	// until first used.
	sends, rpcs *ratelimit.Bucket
}

// bucket is a token bucket; its zero value is full.
type bucket struct {
	used   bool
	tokens float64
	last   time.Time
}

// take takes one token of a bucket of burst, refilled at one per every,
// if there is one.
func (b *bucket) take(now time.Time, burst float64, every time.Duration) bool {
	if !b.used {
		b.used, b.tokens, b.last = true, burst, now
	}
	b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()/every.Seconds())
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
