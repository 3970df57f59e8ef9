package mqtt

import (
	"context"
	gosync "sync"
	"time"
)

// MemberChecker answers whether a user is a member of a conversation.
type MemberChecker interface {
	IsMember(ctx context.Context, conv, user string) (bool, error)
}

// Members caches group membership for the group topic ACL [IM-2.2-4].
// mochi checks the ACL on every delivery as well as on SUBSCRIBE, so the
// answer must usually come from memory: a known member stays cached for
// PositiveTTL, a refusal for NegativeTTL. Changes made on this node call
// Forget at once; changes made on another node are seen here when the entry
// expires.
type Members struct {
	Store       MemberChecker
	PositiveTTL time.Duration // zero: 60 s
	NegativeTTL time.Duration // zero: 2 s
	Timeout     time.Duration // per store call; zero: 5 s

	mu        gosync.RWMutex
	entries   map[string]map[string]memberEntry // conv → user → entry
	n         int                               // entries in all
	negatives int                               // of which refusals
	gen       uint64                            // bumped by Forget
}

// maxMemberEntries bounds the cache: when full it starts over, which costs
// one store query per (group, user) on the next deliveries. Refusals have a
// smaller bound of their own.
const (
	maxMemberEntries   = 200_000
	maxNegativeEntries = 10_000
)

// dropNegatives removes every cached refusal; m.mu held.
func (m *Members) dropNegatives() {
	for conv, users := range m.entries {
		for u, e := range users {
			if !e.member {
				delete(users, u)
				m.n--
			}
		}
		if len(users) == 0 {
			delete(m.entries, conv)
		}
	}
	m.negatives = 0
}

type memberEntry struct {
	member  bool
	expires time.Time
}

// Member reports whether user is a member of conv. A store failure
// answers false: refusing is the safe side, and the device retries.
func (m *Members) Member(conv, user string) bool {
	now := time.Now()
	m.mu.RLock()
	e, ok := m.entries[conv][user]
	gen := m.gen
	m.mu.RUnlock()
	if ok && now.Before(e.expires) {
		return e.member
	}
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	member, err := m.Store.IsMember(ctx, conv, user)
	if err != nil {
		return false
	}
	ttl := m.NegativeTTL
	if ttl <= 0 {
		ttl = 2 * time.Second
	}
	if member {
		if ttl = m.PositiveTTL; ttl <= 0 {
			ttl = time.Minute
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gen != gen {
		// A change was committed while the store was asked: the answer may
		// predate it, so it is used once and not cached.
		return member
	}
	if m.entries == nil || m.n >= maxMemberEntries {
		m.entries, m.n, m.negatives = make(map[string]map[string]memberEntry), 0, 0
	}
	if !member && m.negatives >= maxNegativeEntries {
		// Refusals are cheap to earn (SUBSCRIBE to made-up groups): they
		// are dropped on their own, so that they never push members out.
		m.dropNegatives()
	}
	if m.entries[conv] == nil {
		m.entries[conv] = make(map[string]memberEntry)
	}
	if old, ok := m.entries[conv][user]; !ok {
		m.n++
	} else if !old.member {
		m.negatives--
	}
	if !member {
		m.negatives++
	}
	m.entries[conv][user] = memberEntry{member: member, expires: now.Add(ttl)}
	return member
}

// Forget drops what is cached about users in conv (all of conv's entries
// when users is empty), after a membership change committed here.
func (m *Members) Forget(conv string, users ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gen++
	if len(users) == 0 {
		for u := range m.entries[conv] {
			users = append(users, u)
		}
	}
	for _, u := range users {
		if e, ok := m.entries[conv][u]; ok {
			m.n--
			if !e.member {
				m.negatives--
			}
			delete(m.entries[conv], u)
		}
	}
	if len(m.entries[conv]) == 0 {
		delete(m.entries, conv)
	}
}
