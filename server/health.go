package server

import (
	"context"
	"errors"
	gosync "sync"
	"time"
)

// Health: /livez answers 200 while the process serves HTTP (liveness: a
// restart would not help otherwise); /healthz is readiness, what a load
// balancer routes by: 503 while the node drains, once store pings have
// failed for storeGrace, or while a cluster node's NATS connection is down
// (sends would commit but reach no other node live) [IM-8.1-1].
const (
	storeGrace  = 2 * time.Second
	pingTimeout = time.Second
)

// pinger is the store's health check (both stores have it).
type pinger interface {
	Ping(ctx context.Context) error
}

// health remembers since when store pings fail.
type health struct {
	mu          gosync.Mutex
	failingFrom time.Time // zero: the last ping succeeded
}

func (n *Node) ready(ctx context.Context) error {
	if n.draining.Load() {
		return errors.New("draining")
	}
	if n.cfg.NATS != nil && !n.cfg.Standalone && !n.cfg.NATS.IsConnected() {
		return errors.New("NATS disconnected")
	}
	p, ok := n.cfg.Store.(pinger)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	err := p.Ping(ctx)
	n.health.mu.Lock()
	defer n.health.mu.Unlock()
	if err == nil {
		n.health.failingFrom = time.Time{}
		return nil
	}
	now := time.Now()
	if n.health.failingFrom.IsZero() {
		n.health.failingFrom = now
	}
	if now.Sub(n.health.failingFrom) >= storeGrace {
		return errors.New("store unreachable")
	}
	return nil // a blip: sends retry on their own
}
