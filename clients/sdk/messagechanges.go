package sdk

import (
	"context"

	"github.com/mqim/mqim/protocol"
)

// Recall recalls a message the user sent, within the server's recall window
// [IM-14.1]. It returns the message as recalled.
func (c *Client) Recall(ctx context.Context, id int64) (Message, error) {
	res, err := call[protocol.MessageResult](ctx, c, protocol.MethodRecall, protocol.MessageRequest{MsgID: id})
	return derefMsg(res.Msg), err
}

// Edit replaces the body of a message the user sent [IM-14.2].
func (c *Client) Edit(ctx context.Context, id int64, body map[string]any) (Message, error) {
	res, err := call[protocol.MessageResult](ctx, c, protocol.MethodEdit, protocol.MessageRequest{MsgID: id, Body: body})
	return derefMsg(res.Msg), err
}

// DeleteForMe hides a message from the user's own history [IM-14.3].
func (c *Client) DeleteForMe(ctx context.Context, id int64) (Message, error) {
	res, err := call[protocol.MessageResult](ctx, c, protocol.MethodDelete, protocol.MessageRequest{MsgID: id})
	return derefMsg(res.Msg), err
}

func derefMsg(m *Message) Message {
	if m == nil {
		return Message{}
	}
	return *m
}
