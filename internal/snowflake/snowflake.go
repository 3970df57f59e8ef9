// Package snowflake makes message ids [IM-3.3-3]: 41 bits of milliseconds
// since 2026-01-01T00:00:00Z, 10 bits of node id, 12 bits of counter.
package snowflake

import (
	"fmt"
	"sync"
	"time"
)

// Epoch is the zero time of ids.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const (
	nodeBits = 10
	seqBits  = 12
	MaxNode  = 1<<nodeBits - 1
	maxSeq   = 1<<seqBits - 1
)

// Generator makes unique, roughly time-ordered ids. Safe for concurrent use.
type Generator struct {
	mu   sync.Mutex
	node int64
	last int64 // ms since Epoch of the last id
	seq  int64
	now  func() time.Time
}

// New returns a generator for node (0..MaxNode).
func New(node int) (*Generator, error) {
	if node < 0 || node > MaxNode {
		return nil, fmt.Errorf("snowflake: node id %d not in 0..%d", node, MaxNode)
	}
	return &Generator{node: int64(node), now: time.Now}, nil
}

// Next returns a new id. If the clock goes backwards it keeps using the last
// millisecond, borrowing from the future rather than repeating an id.
func (g *Generator) Next() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	ms := g.now().Sub(Epoch).Milliseconds()
	if ms <= g.last {
		g.seq++
		if g.seq > maxSeq {
			g.last++
			g.seq = 0
		}
	} else {
		g.last, g.seq = ms, 0
	}
	return g.last<<(nodeBits+seqBits) | g.node<<seqBits | g.seq
}
