package im

import (
	"context"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// Limits of group change requests [IM-11.4-1].
const (
	maxGroupUsers  = 1000 // users per create or add request
	maxGroupName   = 128
	maxGroupAvatar = 1024
	maxGroupNotice = 4096
)

// groupChange serves the group methods that change a group [IM-11.4] on
// the committer, so that their events are delivered in commit order with
// the messages around them.
func (s *Service) groupChange(c call) {
	ch, err := s.parseGroupChange(c.sess.User, c.method, c.f, c.payload)
	if err != nil {
		c.reply(nil, err)
		return
	}
	ch.Operator = c.sess.Operator
	s.ordered(c.sess, c.reply, func(ctx context.Context) (any, committed, error) {
		ch.ID = s.cfg.IDs.Next()
		ch.TS = time.Now().UnixMilli()
		ch.Threshold = s.cfg.GroupReadFanout
		res, err := s.cfg.Store.ChangeGroup(ctx, ch)
		if err != nil {
			pe := store.ProtocolError(err)
			if pe == nil {
				s.cfg.Log.Warn("group change failed", "group", ch.Group, "op", ch.Op, "error", err)
				pe = protocol.Errorf(protocol.CodeUnavailable, "group not changed, retry")
			}
			return nil, committed{}, pe
		}
		var added []string
		if ch.Op == store.OpCreate || ch.Op == store.OpAdd {
			added = ch.Users
		}
		done := committed{events: res.Events, members: &membersChange{conv: ch.Group, added: added, removed: res.Removed}}
		if res.Broadcast {
			done.broadcast = &res.Msg
		}
		return &protocol.GroupChangeResult{Group: ch.Group, ConvSeq: res.Msg.Seq, Fanout: res.Fanout, ReadFrom: res.ReadFrom}, done, nil
	})
}

// parseGroupChange decodes and validates a group change request
// [IM-11.4-1]; permissions are checked by the store, in the transaction.
func (s *Service) parseGroupChange(user, method string, f protocol.Format, payload []byte) (store.GroupChange, error) {
	var req protocol.GroupRequest
	if err := protocol.Decode(f, payload, &req); err != nil {
		return store.GroupChange{}, err
	}
	badf := func(format string, args ...any) (store.GroupChange, error) {
		return store.GroupChange{}, protocol.Errorf(protocol.CodeBadRequest, format, args...)
	}
	c := store.GroupChange{Group: req.Group, Actor: user, Name: req.Name, Avatar: req.Avatar, Notice: req.Notice}
	if method == protocol.MethodGroupCreate {
		if req.Group != "" {
			return badf("group.create chooses the group id itself")
		}
		c.Group = protocol.GroupConv(strconv.FormatInt(s.cfg.IDs.Next(), 10))
	} else if !protocol.IsGroupConv(req.Group) {
		return badf("group must be a group id (g:…)")
	}
	for _, f := range []struct {
		v   *string
		max int
	}{{req.Name, maxGroupName}, {req.Avatar, maxGroupAvatar}, {req.Notice, maxGroupNotice}} {
		if f.v != nil && (len(*f.v) > f.max || !utf8.ValidString(*f.v)) {
			return badf("name, avatar and notice must be UTF-8 of at most %d, %d and %d bytes", maxGroupName, maxGroupAvatar, maxGroupNotice)
		}
	}
	users := func(us []string) ([]string, error) {
		if len(us) > maxGroupUsers {
			return nil, protocol.Errorf(protocol.CodeBadRequest, "at most %d users per request", maxGroupUsers)
		}
		for _, u := range us {
			if !protocol.ValidID(u) {
				return nil, protocol.Errorf(protocol.CodeBadRequest, "%q is not a user id", u)
			}
		}
		return us, nil
	}
	one := func() ([]string, error) {
		if !protocol.ValidID(req.User) {
			return nil, protocol.Errorf(protocol.CodeBadRequest, "%s needs user, a user id", method)
		}
		return []string{req.User}, nil
	}
	var err error
	switch method {
	case protocol.MethodGroupCreate:
		c.Op = store.OpCreate
		c.Users, err = users(req.Members)
	case protocol.MethodGroupAdd:
		c.Op = store.OpAdd
		if len(req.Users) == 0 {
			return badf("group.add needs users")
		}
		c.Users, err = users(req.Users)
	case protocol.MethodGroupRemove:
		c.Op = store.OpRemove
		c.Users, err = one()
	case protocol.MethodGroupLeave:
		c.Op = store.OpLeave
	case protocol.MethodGroupRole:
		c.Op, c.Role = store.OpRole, req.Role
		if req.Role != store.RoleAdmin && req.Role != store.RoleMember {
			return badf("role must be admin or member")
		}
		c.Users, err = one()
	case protocol.MethodGroupTransfer:
		c.Op = store.OpTransfer
		c.Users, err = one()
	case protocol.MethodGroupMute:
		c.Op, c.Muted = store.OpMute, req.Muted == nil || *req.Muted
		c.Users, err = one()
	case protocol.MethodGroupUpdate:
		c.Op = store.OpUpdate
		if req.Name == nil && req.Avatar == nil && req.Notice == nil {
			return badf("group.update needs name, avatar or notice")
		}
	}
	if err != nil {
		return store.GroupChange{}, err
	}
	return c, nil
}
