package im

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
// the session's user and MQTT client id (push refuses an empty one),
// served off the committer.
func (s *Service) pushRPC(c call) {
	if s.cfg.Push == nil {
		c.reply(nil, protocol.Errorf(protocol.CodeUnknownMethod, "push is not enabled on this server"))
		return
	}
	user, client := c.sess.User, c.sess.Client
	switch c.method {
	case protocol.MethodPushRegister:
		var req protocol.PushRegisterRequest
		if err := protocol.Decode(c.f, c.payload, &req); err != nil {
			c.reply(nil, err)
			return
		}
		s.async(c.sess, c.reply, func(ctx context.Context) (any, error) {
			d, err := s.cfg.Push.Register(ctx, user, client, req)
			if err != nil {
				return nil, storeFailed(c.method, err)
			}
			return d, nil
		})
	case protocol.MethodPushUnregister:
		s.async(c.sess, c.reply, func(ctx context.Context) (any, error) {
			ok, err := s.cfg.Push.Unregister(ctx, user, client)
			if err != nil {
				return nil, storeFailed(c.method, err)
			}
			return &protocol.PushUnregisterResult{Removed: ok}, nil
		})
	default:
		s.async(c.sess, c.reply, func(ctx context.Context) (any, error) {
			ds, err := s.cfg.Push.List(ctx, user)
			if err != nil {
				return nil, storeFailed(c.method, err)
			}
			return &protocol.PushListResult{Devices: ds}, nil
		})
	}
}
