package ingest

import (
	"context"
	"errors"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// lastSeen records the time a device went away [IM-15.2-3], off the
// disconnecting goroutine. A crash (no DISCONNECT, Last Will) ends up here
// too, when mochi notices the connection is gone.
func (h *Hook) lastSeen(cl *mqtt.Client) {
	user := string(cl.Properties.Username)
	if h.cfg.Ext == nil || cl.Net.Inline || !protocol.ValidID(user) {
		return
	}
	// A node that is shutting down disconnects every device; the store may
	// close before such a write ends, and the devices reconnect elsewhere.
	// Their last seen stays that of their connect.
	h.intake.RLock()
	stopped := h.stopped
	h.intake.RUnlock()
	if stopped {
		return
	}
	// Bounded: a network blip that drops thousands of devices at once must
	// not queue thousands of store writes ahead of the committer's. Beyond
	// the bound a device keeps the last seen of its connect.
	select {
	case h.seenSem <- struct{}{}:
	default:
		h.m.lastSeenDropped.Inc()
		return
	}
	h.spawn(nil, func() { // cl is gone: it disconnected
		defer func() { <-h.seenSem }()
		ctx, cancel := context.WithTimeout(context.Background(), h.cfg.Timeout)
		defer cancel()
		if err := h.cfg.Ext.EnsureUser(ctx, user, cl.ID); err != nil {
			h.cfg.Log.Warn("record last seen", "user", user, "client", cl.ID, "error", err)
		}
	})
}

// lastSeenWriters bounds the last-seen writes in flight.
const lastSeenWriters = 8

// presence serves the presence RPC [IM-15.2]: a user's presence is shown
// to itself and to the users it has as contacts and has not blocked.
func (h *Hook) presence(c call) {
	dev, r, f, payload := c.dev, c.r, c.f, c.payload
	var req protocol.PresenceRequest
	if err := protocol.Decode(f, payload, &req); err != nil {
		r.send(nil, err)
		return
	}
	if len(req.Users) == 0 || len(req.Users) > protocol.MaxPresenceUser {
		r.send(nil, protocol.Errorf(protocol.CodeBadRequest, "users must list 1 to %d user ids", protocol.MaxPresenceUser))
		return
	}
	for _, u := range req.Users {
		if !protocol.ValidID(u) {
			r.send(nil, protocol.Errorf(protocol.CodeBadRequest, "invalid user id %q", u))
			return
		}
	}
	h.async(r, func(ctx context.Context) (any, error) {
		pairs := make([]store.Pair, len(req.Users))
		for i, u := range req.Users {
			pairs[i] = store.Pair{Owner: u, Peer: dev.User}
		}
		rels, err := h.cfg.Ext.Relations(ctx, pairs)
		if err != nil {
			return nil, storeFailed("presence", err)
		}
		seen, err := h.cfg.Ext.LastSeen(ctx, req.Users)
		if err != nil {
			return nil, storeFailed("presence", err)
		}
		co, err := h.cfg.Ext.CoMembers(ctx, pairs)
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
			if u != dev.User && (!rels[i].Contact && !co[i] || rels[i].Blocked) {
				p.Error = protocol.Errorf(protocol.CodeNotAllowed, "%s has not shared presence with you", u)
				continue
			}
			p.Online = h.cfg.Online != nil && h.cfg.Online(u)
			p.LastSeen = seen[i]
			if p.Online {
				p.LastSeen = now
			}
		}
		return res, nil
	})
}
