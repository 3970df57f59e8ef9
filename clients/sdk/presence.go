package sdk

import (
	"context"

	"github.com/mqim/mqim/protocol"
)

// Presence is one user's presence [IM-15.2].
type Presence = protocol.Presence

// Presence returns the presence of up to 100 users, in order; a user who
// has not shared it with this user has Error set (not_allowed) [IM-15.2].
func (c *Client) Presence(ctx context.Context, users ...string) ([]Presence, error) {
	res, err := call[protocol.PresenceResult](ctx, c, protocol.MethodPresence, protocol.PresenceRequest{Users: users})
	return res.Presence, err
}
