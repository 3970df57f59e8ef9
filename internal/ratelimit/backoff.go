package ratelimit

import (
	"fmt"
	"math"
	gosync "sync"
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

	mu      gosync.Mutex
	m       map[string]*failures
	sweepAt int
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
	if cfg.Keys <= 0 {
		cfg.Keys = DefaultKeys
	}
	steps := math.Ceil(math.Log2(float64(cfg.Max)/float64(cfg.Base))) + 1
	return &Backoff{cfg: cfg, ceil: float64(cfg.Free) + steps, m: map[string]*failures{}, sweepAt: min(minSweep, cfg.Keys)}
}

// Fail records a failure of key at now and returns how long to delay its
// answer.
func (b *Backoff) Fail(key string, now time.Time) time.Duration {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	f := b.m[key]
	if f == nil {
		if len(b.m) >= b.sweepAt {
			b.sweep(now)
		}
		f = &failures{at: now}
		b.m[key] = f
	}
	f.n = min(b.ceil, b.decayed(f, now)+1)
	f.at = now
	return b.delay(f.n)
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
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}

func (b *Backoff) sweep(now time.Time) {
	for key, f := range b.m {
		if b.decayed(f, now) == 0 {
			delete(b.m, key)
		}
	}
	forget(b.m, b.cfg.Keys)
	b.sweepAt = nextSweep(len(b.m), b.cfg.Keys)
}
