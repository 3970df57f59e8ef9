package im

import (
	"context"
	"encoding/json"
	"time"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// messageChange serves recall, edit and delete [IM-14] on the committer,
// so that their events follow the message's own in every inbox.
func (s *Service) messageChange(c call) {
	var req protocol.MessageRequest
	if err := protocol.Decode(c.f, c.payload, &req); err != nil {
		// A JSON msg_id is a decimal string: a string that is not one is
		// an invalid value (bad_request), not a wrong type [IM-14.5-1].
		var raw struct {
			MsgID json.RawMessage `json:"msg_id"`
		}
		if c.f == protocol.JSON && json.Unmarshal(c.payload, &raw) == nil && len(raw.MsgID) > 0 && raw.MsgID[0] == '"' {
			err = protocol.Errorf(protocol.CodeBadRequest, "msg_id must be a message id (a decimal string)")
		}
		c.reply(nil, err)
		return
	}
	if req.MsgID <= 0 {
		c.refuse(protocol.CodeBadRequest, "msg_id must be a message id")
		return
	}
	if c.method == protocol.MethodEdit && req.Body == nil {
		c.refuse(protocol.CodeBadRequest, "edit needs a body object")
		return
	}
	user := c.sess.User
	run := func(ctx context.Context) (any, committed, error) {
		// The id of the change's event in a read-fan-out group's timeline.
		at := store.Stamp{TS: time.Now().UnixMilli(), EventID: s.cfg.IDs.Next()}
		var (
			res store.ChangeResult
			err error
		)
		switch c.method {
		case protocol.MethodRecall:
			res, err = s.cfg.Store.Recall(ctx, user, req.MsgID, at, s.cfg.RecallWindow)
		case protocol.MethodEdit:
			res, err = s.cfg.Store.Edit(ctx, user, req.MsgID, at, func(typ string) ([]byte, error) {
				return s.editBody(typ, req.Body)
			})
		default:
			res, err = s.cfg.Store.DeleteForMe(ctx, user, req.MsgID, at.TS)
		}
		if err != nil {
			return nil, committed{}, storeFailed(c.method, err)
		}
		w, err := res.Msg.Wire()
		if err != nil {
			return nil, committed{}, err
		}
		return &protocol.MessageResult{Msg: &w}, committed{events: res.Events, broadcast: res.Timeline}, nil
	}
	if c.method == protocol.MethodEdit {
		s.moderateEdit(c, &req, run) // [IM-18.3]
		return
	}
	s.ordered(c.sess, c.reply, run)
}

// editBody validates and encodes the new body of a message of type typ as
// a send's body is [IM-14.2-1].
func (s *Service) editBody(typ string, body map[string]any) ([]byte, error) {
	if err := protocol.CheckBody(typ, body); err != nil {
		return nil, err
	}
	b, err := s.encodeBody(body)
	if err != nil {
		return nil, err
	}
	return b, nil
}
