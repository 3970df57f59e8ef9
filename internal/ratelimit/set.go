package ratelimit

import (
	gosync "sync"
	"time"
)

// DefaultKeys bounds the keys a Keyed or Backoff keeps when the caller
// says nothing: about 100 bytes each.
const DefaultKeys = 1 << 17

// minSweep is the size below which a set is never swept.
const minSweep = 1024

// set is the state of a limit by key, at most bound keys, safe for
// concurrent use. A key whose state is idle (what a new key would have)
// is forgotten when the set is swept: when it has doubled since the last
// sweep (amortised O(1) per key), or at the bound, past which arbitrary
// keys are forgotten (map order) down to 7/8 of it.
type set[V any] struct {
	bound int
	idle  func(v V, now time.Time) bool

	mu      gosync.Mutex
	m       map[string]V
	sweepAt int
}

func newSet[V any](bound int, idle func(V, time.Time) bool) *set[V] {
	if bound <= 0 {
		bound = DefaultKeys
	}
	return &set[V]{bound: bound, idle: idle, m: map[string]V{}, sweepAt: min(minSweep, bound)}
}

// with runs f with key's state, made by mk if the key is new, under the
// set's lock.
func (s *set[V]) with(key string, now time.Time, mk func() V, f func(V)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	if !ok {
		if len(s.m) >= s.sweepAt {
			s.sweep(now)
		}
		v = mk()
		s.m[key] = v
	}
	f(v)
}

// Len is the number of keys kept.
func (s *set[V]) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

func (s *set[V]) sweep(now time.Time) {
	for key, v := range s.m {
		if s.idle(v, now) {
			delete(s.m, key)
		}
	}
	for key := range s.m {
		if len(s.m) <= s.bound-s.bound/8-1 {
			break
		}
		delete(s.m, key)
	}
	s.sweepAt = min(s.bound, max(minSweep, 2*len(s.m)))
}
