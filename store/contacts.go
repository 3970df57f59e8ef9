package store

import (
	"context"
	"fmt"
)

// ContactChange is one change of a user's relation to another user
// [IM-13.1].
type ContactChange int

// Contact changes.
const (
	ContactAdd ContactChange = iota + 1
	ContactRemove
	ContactBlock
	ContactUnblock
)

// Contact is owner's relation to User: User is in owner's contact list,
// and/or blocked by owner. Since is when it last changed (unix ms); zero
// for no relation.
type Contact struct {
	User    string
	Contact bool
	Blocked bool
	Since   int64
}

// Pair names owner's relation to peer.
type Pair struct{ Owner, Peer string }

// ContactStore keeps contact lists and blocks [IM-13].
type ContactStore interface {
	// UpdateContact applies change to owner's relation to peer at ts (unix
	// ms) and returns the relation after it. Adding and blocking are
	// independent: a blocked user may stay a contact. A change that changes
	// nothing succeeds. It fails with ErrUnknownUser if peer does not exist.
	UpdateContact(ctx context.Context, owner, peer string, change ContactChange, ts int64) (Contact, error)
	// Contacts returns owner's relations (contacts and blocked users),
	// ordered by user id.
	Contacts(ctx context.Context, owner string) ([]Contact, error)
	// Relations returns, for each pair, Owner's relation to Peer (the zero
	// Contact, with User = Peer, if there is none), in the order of pairs.
	Relations(ctx context.Context, pairs []Pair) ([]Contact, error)
	// CoMembers reports, for each pair, whether Owner and Peer are both
	// members of some group, in the order of pairs.
	CoMembers(ctx context.Context, pairs []Pair) ([]bool, error)
}

// ContactFlags are the new (contact, blocked) flags of a change; nil keeps
// the flag as it is [IM-13.1].
func ContactFlags(c ContactChange) (contact, blocked *bool, err error) {
	yes, no := true, false
	switch c {
	case ContactAdd:
		return &yes, nil, nil
	case ContactRemove:
		return &no, nil, nil
	case ContactBlock:
		return nil, &yes, nil
	case ContactUnblock:
		return nil, &no, nil
	}
	return nil, nil, fmt.Errorf("unknown contact change %d", c)
}

// Relation returns owner's relation to peer as stored (flags, when they
// last changed); a row with neither flag is no relation, with no time.
func Relation(peer string, contact, blocked bool, since int64) Contact {
	if !contact && !blocked {
		return Contact{User: peer}
	}
	return Contact{User: peer, Contact: contact, Blocked: blocked, Since: since}
}
