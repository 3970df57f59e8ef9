package im

import (
	"context"
	"time"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

var contactChanges = map[string]store.ContactChange{
	protocol.MethodContactAdd: store.ContactAdd, protocol.MethodContactRemove: store.ContactRemove,
	protocol.MethodContactBlock: store.ContactBlock, protocol.MethodContactUnblock: store.ContactUnblock,
}

// contactChange serves contact.add|remove|block|unblock [IM-13.1] on the
// committer, so that a block answered to the blocker holds for every send
// committed after it [IM-13.2-1].
func (s *Service) contactChange(c call) {
	var req protocol.ContactRequest
	if !c.decode(&req) {
		return
	}
	if !protocol.ValidID(req.User) || req.User == c.sess.User {
		c.refuse(protocol.CodeBadRequest, "user must be another user's id")
		return
	}
	change := contactChanges[c.method]
	s.ordered(c.sess, c.reply, func(ctx context.Context) (any, committed, error) {
		ct, err := s.cfg.Store.UpdateContact(ctx, c.sess.User, req.User, change, time.Now().UnixMilli())
		if err != nil {
			return nil, committed{}, storeFailed(c.method, err)
		}
		return wireContact(ct), committed{}, nil
	})
}

// contactList serves contact.list [IM-13.1-3].
func (s *Service) contactList(c call) {
	s.async(c.sess, c.reply, func(ctx context.Context) (any, error) {
		list, err := s.cfg.Store.Contacts(ctx, c.sess.User)
		if err != nil {
			return nil, storeFailed(c.method, err)
		}
		res := &protocol.ContactsResult{Contacts: make([]protocol.Contact, 0, len(list))}
		for _, ct := range list {
			res.Contacts = append(res.Contacts, *wireContact(ct))
		}
		return res, nil
	})
}

func wireContact(c store.Contact) *protocol.Contact {
	return &protocol.Contact{User: c.User, Contact: c.Contact, Blocked: c.Blocked, Since: c.Since}
}
