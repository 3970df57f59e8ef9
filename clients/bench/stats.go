package bench

import (
	"math"
	"slices"
	gosync "sync"
	"sync/atomic"
	"time"
)

// counters are the run-wide totals, read by the progress line.
type counters struct {
	acked       atomic.Int64 // successful PUBACKs
	delivered   atomic.Int64 // first deliveries of a message
	duplicates  atomic.Int64 // deliveries after the first
	outstanding atomic.Int64 // acknowledged and not (yet) delivered
	errors      atomic.Int64
	foreign     atomic.Int64 // publishes received that are not this run's messages
}

// pair is what one sender→receiver pair has seen, by sequence number. The
// sender's publishing goroutines and the receiver's handler share it.
type pair struct {
	mu    gosync.Mutex
	acked []bool
	seen  []uint8         // deliveries of each seq, saturating
	lat   []time.Duration // latency of each first delivery
}

// ack records a successful PUBACK for seq.
func (p *pair) ack(seq int, c *counters) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.acked = grow(p.acked, seq)
	if p.acked[seq] {
		return
	}
	p.acked[seq] = true
	c.acked.Add(1)
	if p.seen = grow(p.seen, seq); p.seen[seq] == 0 {
		c.outstanding.Add(1)
	}
}

// deliver records a delivery of seq with latency lat.
func (p *pair) deliver(seq int, lat time.Duration, c *counters) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen = grow(p.seen, seq)
	n := p.seen[seq]
	if n < math.MaxUint8 {
		p.seen[seq] = n + 1
	}
	if n > 0 {
		c.duplicates.Add(1)
		return
	}
	c.delivered.Add(1)
	p.lat = append(p.lat, lat)
	if p.acked = grow(p.acked, seq); p.acked[seq] {
		c.outstanding.Add(-1)
	}
}

// grow makes s long enough to index i, doubling its capacity as needed.
func grow[T any](s []T, i int) []T {
	if i < len(s) {
		return s
	}
	if i < cap(s) {
		return s[:i+1]
	}
	return append(s[:cap(s)], make([]T, max(i+1, 2*cap(s), 1024)-cap(s))...)[:i+1]
}

// latencies returns every pair's first-delivery latencies, sorted.
func latencies(pairs []*pair) []time.Duration {
	var all []time.Duration
	for _, p := range pairs {
		p.mu.Lock()
		all = append(all, p.lat...)
		p.mu.Unlock()
	}
	slices.Sort(all)
	return all
}

// quantile returns the q-quantile (nearest rank) of sorted, 0 if empty.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
