package store

import "context"

// PresenceStore is what presence reads from the store [IM-15.2].
type PresenceStore interface {
	// LastSeen returns, for each user, the latest time (unix ms) one of
	// its devices was seen (EnsureUser with that device), or 0.
	LastSeen(ctx context.Context, users []string) ([]int64, error)
}
