package ingest

import (
	"context"

	"github.com/mqim/mqim/protocol"
)

// Pusher is offline push's registration API (push.Service) [IM-17.1].
type Pusher interface {
	Register(ctx context.Context, user, client string, r protocol.PushRegisterRequest) (*protocol.PushDevice, error)
	Unregister(ctx context.Context, user, client string) (bool, error)
	List(ctx context.Context, user string) ([]protocol.PushDevice, error)
}

// pushRPC serves push.register, push.unregister and push.list: bound to
// the requester's user and MQTT client id, served off the committer.
func (h *Hook) pushRPC(c call) {
	if h.cfg.Push == nil {
		c.r.send(nil, protocol.Errorf(protocol.CodeUnknownMethod, "push is not enabled on this server"))
		return
	}
	user, client := c.dev.User, c.cl.ID
	switch c.method {
	case protocol.MethodPushRegister:
		var req protocol.PushRegisterRequest
		if err := protocol.Decode(c.f, c.payload, &req); err != nil {
			c.r.send(nil, err)
			return
		}
		h.async(c.r, func(ctx context.Context) (any, error) {
			d, err := h.cfg.Push.Register(ctx, user, client, req)
			if err != nil {
				return nil, storeFailed("register push", err)
			}
			return d, nil
		})
	case protocol.MethodPushUnregister:
		h.async(c.r, func(ctx context.Context) (any, error) {
			ok, err := h.cfg.Push.Unregister(ctx, user, client)
			if err != nil {
				return nil, storeFailed("unregister push", err)
			}
			return &protocol.PushUnregisterResult{Removed: ok}, nil
		})
	default:
		h.async(c.r, func(ctx context.Context) (any, error) {
			ds, err := h.cfg.Push.List(ctx, user)
			if err != nil {
				return nil, storeFailed("list push", err)
			}
			return &protocol.PushListResult{Devices: ds}, nil
		})
	}
}
