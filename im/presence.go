package im

import (
	"context"
	"errors"
	"time"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// lastSeenWriters bounds the last-seen writes in flight.
const lastSeenWriters = 8

// Disconnected records the time a session's device went away
// [IM-15.2-3], off the caller's goroutine. A crash (no DISCONNECT, Last
// Will) ends up here too, when the transport notices the connection is
// gone.
func (s *Service) Disconnected(sess *Session) {
	if !protocol.ValidID(sess.User) {
		return
	}
	// A node that is shutting down disconnects every device; the store may
	// close before such a write ends, and the devices reconnect elsewhere.
	// Their last seen stays that of their connect.
	if s.Stopping() {
		return
	}
	// Bounded: a network blip that drops thousands of devices at once must
	// not queue thousands of store writes ahead of the committer's. Beyond
	// the bound a device keeps the last seen of its connect.
	select {
	case s.seenSem <- struct{}{}:
	default:
		s.m.lastSeenDropped.Inc()
		return
	}
	s.Spawn(nil, func() { // the session is gone: it disconnected
		defer func() { <-s.seenSem }()
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
		defer cancel()
		// A deleted user has no last seen to keep [IM-8.3].
		if err := s.cfg.Store.EnsureUser(ctx, sess.User, sess.Client); err != nil && !errors.Is(err, store.ErrUserDeleted) {
			s.cfg.Log.Warn("record last seen", "user", sess.User, "client", sess.Client, "error", err)
		}
	})
}

// presence serves the presence RPC [IM-15.2]: a user's presence is shown
// to itself and to the users it has as contacts or shares a group with,
// and has not blocked.
func (s *Service) presence(c call) {
	var req protocol.PresenceRequest
	if !c.decode(&req) {
		return
	}
	if len(req.Users) == 0 || len(req.Users) > protocol.MaxPresenceUser {
		c.refuse(protocol.CodeBadRequest, "users must list 1 to %d user ids", protocol.MaxPresenceUser)
		return
	}
	for _, u := range req.Users {
		if !protocol.ValidID(u) {
			c.refuse(protocol.CodeBadRequest, "invalid user id %q", u)
			return
		}
	}
	me := c.sess.User
	s.async(c.sess, c.reply, func(ctx context.Context) (any, error) {
		pairs := make([]store.Pair, len(req.Users))
		for i, u := range req.Users {
			pairs[i] = store.Pair{Owner: u, Peer: me}
		}
		rels, err := s.cfg.Store.Relations(ctx, pairs)
		if err != nil {
			return nil, storeFailed("presence", err)
		}
		seen, err := s.cfg.Store.LastSeen(ctx, req.Users)
		if err != nil {
			return nil, storeFailed("presence", err)
		}
		co, err := s.cfg.Store.CoMembers(ctx, pairs)
		if err != nil {
			return nil, storeFailed("presence", err)
		}
		if len(rels) != len(req.Users) || len(seen) != len(req.Users) || len(co) != len(req.Users) {
			return nil, errors.New("presence: store returned a count unlike the request")
		}
		now := time.Now().UnixMilli()
		res := &protocol.PresenceResult{Presence: make([]protocol.Presence, len(req.Users))}
		for i, u := range req.Users {
			p := &res.Presence[i]
			p.User = u
			if u != me && !presenceShared(rels[i], co[i]) {
				p.Error = protocol.Errorf(protocol.CodeNotAllowed, "%s has not shared presence with you", u)
				continue
			}
			p.Online = s.cfg.Online != nil && s.cfg.Online(u)
			p.LastSeen = seen[i]
			if p.Online {
				p.LastSeen = now
			}
		}
		return res, nil
	})
}
