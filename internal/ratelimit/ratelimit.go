// Package ratelimit holds the counters of mqim's limits (spec §1.3): token
// buckets (golang.org/x/time/rate), one or one per key, and a growing
// delay for repeated failures by key. The sets by key bound their memory:
// they forget keys whose state is back to what a new key would have.
package ratelimit

import (
	"errors"
	"fmt"
	"math"
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

// Keyed is a token bucket of one Limit per key (a user, an address), safe
// for concurrent use. A nil *Keyed allows everything. It keeps a bounded
// number of keys (set): a bucket that has refilled is forgotten (a new one
// is the same), and should more keys be in use at once, arbitrary ones
// are forgotten, which gives those keys a full bucket again.
type Keyed struct {
	limit Limit
	keys  *set[*rate.Limiter]
}

// NewKeyed returns the buckets of l, at most keys of them (≤ 0:
// DefaultKeys), or nil if l is off.
func NewKeyed(l Limit, keys int) *Keyed {
	if !l.On() {
		return nil
	}
	burst := float64(l.Burst)
	full := func(lim *rate.Limiter, now time.Time) bool { return lim.TokensAt(now) >= burst }
	return &Keyed{limit: l, keys: newSet(keys, full)}
}

// Take takes a token of key's bucket at now, or says how long until there
// is one.
func (k *Keyed) Take(key string, now time.Time) (ok bool, wait time.Duration) {
	if k == nil {
		return true, 0
	}
	k.keys.with(key, now, k.limit.limiter, func(lim *rate.Limiter) { ok, wait = take(lim, now) })
	return ok, wait
}

// Len is the number of keys kept.
func (k *Keyed) Len() int {
	if k == nil {
		return 0
	}
	return k.keys.Len()
}
