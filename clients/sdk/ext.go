package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/eclipse/paho.golang/paho"

	"github.com/mqim/mqim/protocol"
)

// Wire types of spec §13–§16.
type Contact = protocol.Contact

// Errors of spec §12–§14, to compare with errors.Is.
var (
	ErrBlocked    = &Error{Code: protocol.CodeBlocked}
	ErrNotFound   = &Error{Code: protocol.CodeNotFound}
	ErrNotAllowed = &Error{Code: protocol.CodeNotAllowed}
)

// AddContact adds user to the contact list [IM-13.1].
func (c *Client) AddContact(ctx context.Context, user string) (Contact, error) {
	return call[Contact](ctx, c, protocol.MethodContactAdd, protocol.ContactRequest{User: user})
}

// RemoveContact removes user from the contact list [IM-13.1].
func (c *Client) RemoveContact(ctx context.Context, user string) (Contact, error) {
	return call[Contact](ctx, c, protocol.MethodContactRemove, protocol.ContactRequest{User: user})
}

// Block refuses user's messages from now on [IM-13.2].
func (c *Client) Block(ctx context.Context, user string) (Contact, error) {
	return call[Contact](ctx, c, protocol.MethodContactBlock, protocol.ContactRequest{User: user})
}

// Unblock accepts user's messages again [IM-13.2].
func (c *Client) Unblock(ctx context.Context, user string) (Contact, error) {
	return call[Contact](ctx, c, protocol.MethodContactUnblock, protocol.ContactRequest{User: user})
}

// Contacts lists the contacts and blocked users [IM-13.1-3].
func (c *Client) Contacts(ctx context.Context) ([]Contact, error) {
	res, err := call[protocol.ContactsResult](ctx, c, protocol.MethodContactList, struct{}{})
	return res.Contacts, err
}

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

// Presence is one user's presence [IM-15.2].
type Presence = protocol.Presence

// Presence returns the presence of up to 100 users, in order; a user who
// has not shared it with this user has Error set (not_allowed) [IM-15.2].
func (c *Client) Presence(ctx context.Context, users ...string) ([]Presence, error) {
	res, err := call[protocol.PresenceResult](ctx, c, protocol.MethodPresence, protocol.PresenceRequest{Users: users})
	return res.Presence, err
}

// Typing tells peer that the user is typing (state "typing") or stopped
// ("paused") [IM-15.1]. It is fire and forget (QoS 0).
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

// Upload is the result of an attachment upload [IM-12.2-1].
type Upload struct {
	ID     string `json:"id"`
	URL    string `json:"url"`
	Mime   string `json:"mime"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Name   string `json:"name,omitempty"`
}

// Upload sends an attachment to the server's HTTP API at base (e.g.
// http://localhost:8080) with the client's token [IM-12.2]. An empty mime
// lets the server sniff the type. A refusal is an *Error (too_large,
// unsupported_media, …).
func (c *Client) Upload(ctx context.Context, base, name, mime string, body io.Reader) (Upload, error) {
	u := strings.TrimSuffix(base, "/") + "/v1/media"
	if name != "" {
		u += "?name=" + url.QueryEscape(name)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, body)
	if err != nil {
		return Upload{}, fmt.Errorf("mqim: upload: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	if mime != "" {
		req.Header.Set("Content-Type", mime)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Upload{}, fmt.Errorf("mqim: upload: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		Upload
		Error *protocol.Error `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return Upload{}, fmt.Errorf("mqim: upload: HTTP %d: %w", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusCreated {
		if out.Error == nil {
			return Upload{}, fmt.Errorf("mqim: upload: HTTP %d", resp.StatusCode)
		}
		return Upload{}, &Error{Code: out.Error.Code, Message: out.Error.Message}
	}
	return out.Upload, nil
}

// ConvSettings are the user's own settings of a conversation [IM-16].
type ConvSettings = protocol.ConvSettings

// UpdateSettings changes the user's settings of a conversation; nil fields
// stay. Every device of the user gets a settings event [IM-16.2].
func (c *Client) UpdateSettings(ctx context.Context, req protocol.SettingsRequest) (ConvSettings, error) {
	res, err := call[protocol.SettingsResult](ctx, c, protocol.MethodSettings, req)
	if err != nil || res.Settings == nil {
		return ConvSettings{}, err
	}
	return *res.Settings, nil
}

// Event kinds of spec §14–§16.
const (
	KindRecall   = protocol.KindRecall   // stored: a message was recalled; Msg is it now
	KindEdit     = protocol.KindEdit     // stored: a message was edited; Msg is it now
	KindDelete   = protocol.KindDelete   // stored: the user deleted a message for itself
	KindSettings = protocol.KindSettings // stored: the user's conversation settings changed
	KindTyping   = protocol.KindTyping   // ephemeral (Seq 0): User is typing in Conv
	KindMention  = protocol.KindMention  // stored: User mentioned the user in Msg, of a read-fan-out group [IM-11.6-2]
)
