package sdk

import (
	"context"

	"github.com/eclipse/paho.golang/paho"

	"github.com/mqim/mqim/protocol"
)

// Wire types of spec §12–§15.
type Contact = protocol.Contact

// Errors of spec §11–§13, to compare with errors.Is.
var (
	ErrBlocked    = &Error{Code: protocol.CodeBlocked}
	ErrNotFound   = &Error{Code: protocol.CodeNotFound}
	ErrNotAllowed = &Error{Code: protocol.CodeNotAllowed}
)

// AddContact adds user to the contact list [IM-12.1].
func (c *Client) AddContact(ctx context.Context, user string) (Contact, error) {
	return call[Contact](ctx, c, protocol.MethodContactAdd, protocol.ContactRequest{User: user})
}

// RemoveContact removes user from the contact list [IM-12.1].
func (c *Client) RemoveContact(ctx context.Context, user string) (Contact, error) {
	return call[Contact](ctx, c, protocol.MethodContactRemove, protocol.ContactRequest{User: user})
}

// Block refuses user's messages from now on [IM-12.2].
func (c *Client) Block(ctx context.Context, user string) (Contact, error) {
	return call[Contact](ctx, c, protocol.MethodContactBlock, protocol.ContactRequest{User: user})
}

// Unblock accepts user's messages again [IM-12.2].
func (c *Client) Unblock(ctx context.Context, user string) (Contact, error) {
	return call[Contact](ctx, c, protocol.MethodContactUnblock, protocol.ContactRequest{User: user})
}

// Contacts lists the contacts and blocked users [IM-12.1-3].
func (c *Client) Contacts(ctx context.Context) ([]Contact, error) {
	res, err := call[protocol.ContactsResult](ctx, c, protocol.MethodContactList, struct{}{})
	return res.Contacts, err
}

// Recall recalls a message the user sent, within the server's recall window
// [IM-13.1]. It returns the message as recalled.
func (c *Client) Recall(ctx context.Context, id int64) (Message, error) {
	res, err := call[protocol.MessageResult](ctx, c, protocol.MethodRecall, protocol.MessageRequest{MsgID: id})
	return derefMsg(res.Msg), err
}

// Edit replaces the body of a message the user sent [IM-13.2].
func (c *Client) Edit(ctx context.Context, id int64, body map[string]any) (Message, error) {
	res, err := call[protocol.MessageResult](ctx, c, protocol.MethodEdit, protocol.MessageRequest{MsgID: id, Body: body})
	return derefMsg(res.Msg), err
}

// DeleteForMe hides a message from the user's own history [IM-13.3].
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

// Presence is one user's presence [IM-14.2].
type Presence = protocol.Presence

// Presence returns the presence of up to 100 users, in order; a user who
// has not shared it with this user has Error set (not_allowed) [IM-14.2].
func (c *Client) Presence(ctx context.Context, users ...string) ([]Presence, error) {
	res, err := call[protocol.PresenceResult](ctx, c, protocol.MethodPresence, protocol.PresenceRequest{Users: users})
	return res.Presence, err
}

// Typing tells peer that the user is typing (state "typing") or stopped
// ("paused") [IM-14.1]. It is fire and forget (QoS 0).
func (c *Client) Typing(ctx context.Context, peer, state string) error {
	payload, err := protocol.Encode(protocol.MsgPack, protocol.Typing{To: peer, State: state})
	if err != nil {
		return err
	}
	if _, err := c.awaitConn(ctx); err != nil {
		return err
	}
	_, err = c.cm.Publish(ctx, &paho.Publish{Topic: protocol.TypingTopic(c.cfg.User), QoS: 0, Payload: payload,
		Properties: &paho.PublishProperties{ContentType: protocol.ContentTypeMsgPack}})
	return err
}
