// Package ratelimit holds the counters of mqim's limits (spec §1.3): token
// buckets (golang.org/x/time/rate), one or one per key, and a growing
// delay for repeated failures by key. The sets by key bound their memory:
// they forget keys whose state is back to what a new key would have.
package ratelimit

import (
	"errors"
	"fmt"
	"math"
	gosync "sync"
	"time"

	"golang.org/x/time/rate"
)

// Limit is the shape of a token bucket: Burst tokens at most, refilled at
// Rate a second (the sustained rate). A Rate of zero is no limit.
type Limit struct {
	Rate  float64
	Burst int
}

// On reports whether l limits anything.
func (l Limit) On() bool { return l.Rate > 0 }

// Validate explains what is wrong with l, if anything.
func (l Limit) Validate() error {
	switch {
	case math.IsNaN(l.Rate) || math.IsInf(l.Rate, 0) || l.Rate < 0:
		return fmt.Errorf("rate %v: must be a number ≥ 0 (0: no limit)", l.Rate)
	case l.Burst < 0:
		return fmt.Errorf("burst %d: must not be negative", l.Burst)
	case l.Rate > 0 && l.Burst < 1:
		return errors.New("burst must be at least 1 when the rate is set")
	}
	return nil
}

func (l Limit) limiter() *rate.Limiter { return rate.NewLimiter(rate.Limit(l.Rate), l.Burst) }

// take takes a token of lim at now, or says how long until there is one.
func take(lim *rate.Limiter, now time.Time) (ok bool, wait time.Duration) {
	if lim.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - lim.TokensAt(now)
	wait = time.Duration(missing / float64(lim.Limit()) * float64(time.Second))
	return false, max(wait, time.Millisecond)
}

// Bucket is one token bucket, safe for concurrent use. A nil *Bucket
// allows everything.
type Bucket struct{ lim *rate.Limiter }

// NewBucket returns a full bucket of l, or nil if l is off.
func NewBucket(l Limit) *Bucket {
	if !l.On() {
		return nil
	}
	return &Bucket{lim: l.limiter()}
}

// Take takes a token at now; without one it returns false and how long
// until one is there.
func (b *Bucket) Take(now time.Time) (ok bool, wait time.Duration) {
	if b == nil {
		return true, 0
	}
	return take(b.lim, now)
}

// DefaultKeys bounds the keys a Keyed or Backoff keeps when the caller
// says nothing: about 100 bytes each.
const DefaultKeys = 1 << 17

// minSweep is the size below which a set is never swept.
const minSweep = 1024

// Keyed is a token bucket of one Limit per key (a user, an address), safe
// for concurrent use. A nil *Keyed allows everything. It keeps at most max
// keys: a bucket that has refilled is forgotten (a new one is the same),
// and should more than max keys be in use at once, arbitrary ones are
// forgotten, which gives those keys a full bucket again.
type Keyed struct {
	limit Limit
	max   int

	mu      gosync.Mutex
	m       map[string]*rate.Limiter
	sweepAt int
}

// NewKeyed returns the buckets of l, at most keys of them (≤ 0:
// DefaultKeys), or nil if l is off.
func NewKeyed(l Limit, keys int) *Keyed {
	if !l.On() {
		return nil
	}
	if keys <= 0 {
		keys = DefaultKeys
	}
	return &Keyed{limit: l, max: keys, m: map[string]*rate.Limiter{}, sweepAt: min(minSweep, keys)}
}

// Take takes a token of key's bucket at now, or says how long until there
// is one.
func (k *Keyed) Take(key string, now time.Time) (ok bool, wait time.Duration) {
	if k == nil {
		return true, 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	lim := k.m[key]
	if lim == nil {
		if len(k.m) >= k.sweepAt {
			k.sweep(now)
		}
		lim = k.limit.limiter()
		k.m[key] = lim
	}
	return take(lim, now)
}

// Len is the number of keys kept.
func (k *Keyed) Len() int {
	if k == nil {
		return 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.m)
}

// sweep forgets full buckets, then arbitrary ones while over the bound,
// and sets when to sweep next: when the map has doubled (amortised O(1)
// per key), or at the bound.
func (k *Keyed) sweep(now time.Time) {
	burst := float64(k.limit.Burst)
	for key, lim := range k.m {
		if lim.TokensAt(now) >= burst {
			delete(k.m, key)
		}
	}
	forget(k.m, k.max)
	k.sweepAt = nextSweep(len(k.m), k.max)
}

// forget deletes arbitrary keys of m (map order) until it holds at most
// 7/8 of bound, so that the next sweep is bound/8 new keys away.
func forget[V any](m map[string]V, bound int) {
	if len(m) < bound {
		return
	}
	for key := range m {
		if len(m) <= bound-bound/8-1 {
			break
		}
		delete(m, key)
	}
}

func nextSweep(n, bound int) int { return min(bound, max(minSweep, 2*n)) }
