package ratelimit

import (
	"fmt"
	"math"
	"time"
)

// BackoffConfig shapes a Backoff.
type BackoffConfig struct {
	Free  int           // failures of a key answered without delay
	Base  time.Duration // the delay of the first failure past Free; doubled with each one after it
	Max   time.Duration // the longest delay; zero: no delays (the Backoff is off)
	Decay time.Duration // one failure is forgotten per Decay
	Keys  int           // keys kept at most; ≤ 0: DefaultKeys
}

// Validate explains what is wrong with c, if anything.
func (c BackoffConfig) Validate() error {
	switch {
	case c.Max < 0:
		return fmt.Errorf("maximum delay %v: must not be negative (0: no delays)", c.Max)
	case c.Max == 0:
		return nil
	case c.Free < 0:
		return fmt.Errorf("free failures %d: must not be negative", c.Free)
	case c.Base <= 0 || c.Base > c.Max:
		return fmt.Errorf("base delay %v: must be above 0 and at most the maximum %v", c.Base, c.Max)
	case c.Decay <= 0:
		return fmt.Errorf("decay %v: must be above 0", c.Decay)
	}
	return nil
}

// Backoff counts failures by key (an address, a user) and says how long
// to hold the answer to each: nothing for the first Free, then Base,
// doubling up to Max. Failures are forgotten one per Decay, and the count
// never climbs above what Max needs, so a key that stops failing is back
// to no delay within a bounded time, however long it failed before. A nil
// *Backoff never delays. Safe for concurrent use.
type Backoff struct {
	cfg  BackoffConfig
	ceil float64 // the count at which the delay reaches Max
	keys *set[*failures]
}

type failures struct {
	n  float64 // decayed count
	at time.Time
}

// NewBackoff returns the Backoff of a valid cfg, or nil if cfg.Max is zero.
func NewBackoff(cfg BackoffConfig) *Backoff {
	if cfg.Max <= 0 {
		return nil
	}
	steps := math.Ceil(math.Log2(float64(cfg.Max)/float64(cfg.Base))) + 1
	b := &Backoff{cfg: cfg, ceil: float64(cfg.Free) + steps}
	b.keys = newSet(cfg.Keys, func(f *failures, now time.Time) bool { return b.decayed(f, now) == 0 })
	return b
}

// Fail records a failure of key at now and returns how long to delay its
// answer.
func (b *Backoff) Fail(key string, now time.Time) (delay time.Duration) {
	if b == nil {
		return 0
	}
	b.keys.with(key, now, func() *failures { return &failures{at: now} }, func(f *failures) {
		f.n = min(b.ceil, b.decayed(f, now)+1)
		f.at = now
		delay = b.delay(f.n)
	})
	return delay
}

// decayed is f's count at now.
func (b *Backoff) decayed(f *failures, now time.Time) float64 {
	return max(0, f.n-float64(now.Sub(f.at))/float64(b.cfg.Decay))
}

// delay is the delay of the failure that made the count n.
func (b *Backoff) delay(n float64) time.Duration {
	over := math.Ceil(n - float64(b.cfg.Free)) // 1 for the first failure past Free
	if over < 1 {
		return 0
	}
	d := float64(b.cfg.Base) * math.Exp2(over-1)
	return time.Duration(min(d, float64(b.cfg.Max)))
}

// Len is the number of keys kept.
func (b *Backoff) Len() int {
	if b == nil {
		return 0
	}
	return b.keys.Len()
}
