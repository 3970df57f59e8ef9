package server

import (
	"context"
	gosync "sync"
	"time"

	"github.com/mqim/mqim/store"
)

// presenceTTL is how long a presence ACL decision is reused: mochi checks
// the ACL at SUBSCRIBE and again for every delivery. A contact removed or
// a block takes effect for live presence within it [IM-15.3-2].
const presenceTTL = 5 * time.Second

// presenceACL caches who may see whose presence.
type presenceACL struct {
	mu    gosync.Mutex
	store store.ContactStore
	cache map[store.Pair]aclEntry
}

type aclEntry struct {
	allowed bool
	until   time.Time
}

// allowed reports whether viewer may see user's presence: user has viewer
// as a contact or shares a group with it, and has not blocked it
// [IM-15.2-2]. A store failure denies.
func (a *presenceACL) allowed(viewer, user string) bool {
	k := store.Pair{Owner: user, Peer: viewer}
	now := time.Now()
	a.mu.Lock()
	e, ok := a.cache[k]
	a.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.allowed
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rels, err := a.store.Relations(ctx, []store.Pair{k})
	if err != nil || len(rels) != 1 {
		return false
	}
	allowed := rels[0].Contact && !rels[0].Blocked
	if !allowed && !rels[0].Blocked {
		co, err := a.store.CoMembers(ctx, []store.Pair{k})
		if err != nil || len(co) != 1 {
			return false
		}
		allowed = co[0]
	}
	e = aclEntry{allowed: allowed, until: now.Add(presenceTTL)}
	a.mu.Lock()
	if a.cache == nil || len(a.cache) > 100_000 {
		a.cache = make(map[store.Pair]aclEntry) // bounded: start over
	}
	a.cache[k] = e
	a.mu.Unlock()
	return e.allowed
}

// userOnline reports whether a device of user is connected [IM-15.2-2]: to
// any node by the routing table, or, on a node without NATS, to this one.
func (n *Node) userOnline(user string) bool {
	if n.table != nil {
		return n.table.UserOnline(user)
	}
	return n.broker.UserOnline(user)
}
