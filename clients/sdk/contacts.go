package sdk

import (
	"context"

	"github.com/mqim/mqim/protocol"
)

// Contact is one entry of the contact list [IM-13.1].
type Contact = protocol.Contact

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
