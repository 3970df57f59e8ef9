package im

import (
	"context"
	"sync"
	"time"

	"github.com/mqim/mqim/store"
)

// presenceShared is who sees whose presence [IM-15.2-2]: user shows it to
// viewer when user has viewer as a contact or shares a group with it, and
// has not blocked it. rel is user's relation to viewer. The presence RPC
// and the live presence topic's ACL both decide by it.
func presenceShared(rel store.Contact, coMember bool) bool {
	return (rel.Contact || coMember) && !rel.Blocked
}

// presenceTTL is how long a PresenceACL decision is reused: the transport
// checks the ACL at SUBSCRIBE and again for every delivery. A contact
// removed or a block takes effect for live presence within it
// [IM-15.3-2].
const presenceTTL = 5 * time.Second

// PresenceACL answers, from a cache, who may read whose live presence topic
// [IM-15.3-2]. Safe for concurrent use.
type PresenceACL struct {
	store store.ContactStore
	mu    sync.Mutex
	cache map[store.Pair]aclEntry
}

type aclEntry struct {
	allowed bool
	until   time.Time
}

// NewPresenceACL returns an ACL reading st.
func NewPresenceACL(st store.ContactStore) *PresenceACL { return &PresenceACL{store: st} }

// Allowed reports whether viewer may see user's presence (presenceShared).
// A store failure denies.
func (a *PresenceACL) Allowed(viewer, user string) bool {
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
	allowed := presenceShared(rels[0], false)
	if !allowed && !rels[0].Blocked { // not a contact: a shared group?
		co, err := a.store.CoMembers(ctx, []store.Pair{k})
		if err != nil || len(co) != 1 {
			return false
		}
		allowed = presenceShared(rels[0], co[0])
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
