package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// Ext is the part of the store the features of spec §13–§16 use.
type Ext interface {
	store.ContactStore
	store.ExtStore
	store.SettingsStore
	EnsureUser(ctx context.Context, user, device string) error
	IsMember(ctx context.Context, conv, user string) (bool, error)
}

// extOp is a request run by the committer, so that its effect is ordered
// with the sends around it: a block answered to the blocker holds for every
// send committed after it [IM-13.2-1].
type extOp struct {
	run   func(ctx context.Context) (any, []store.InboxEvent, error)
	reply func(result any, err error)
	// broadcast, set by run, is a committed timeline event to publish on
	// its group's topic [IM-14.4-3].
	broadcast *store.Message
}

func (h *Hook) runExt(cl *mqtt.Client, o *extOp) {
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.Timeout)
	res, events, err := o.run(ctx)
	cancel()
	// Off the committer, as in commitRead.
	h.spawn(cl, func() { o.reply(res, err) })
	if err == nil && len(events) > 0 {
		h.cfg.Deliver.Deliver(events)
	}
	if err == nil && o.broadcast != nil {
		h.cfg.Groups.Broadcast(o.broadcast)
	}
}

// async runs a read-only request on the RPC goroutines.
func (h *Hook) async(r *reply, f func(ctx context.Context) (any, error)) {
	select {
	case h.rpcSem <- struct{}{}:
	default:
		r.send(nil, protocol.Errorf(protocol.CodeOverloaded, "too many requests in flight, retry later"))
		return
	}
	h.spawn(r.cl, func() {
		defer func() { <-h.rpcSem }()
		ctx, cancel := context.WithTimeout(context.Background(), h.cfg.Timeout)
		defer cancel()
		r.send(f(ctx))
	})
}

// storeFailed answers a store error: a refusal by a store rule with its
// protocol error (store.ProtocolError), a failure as unavailable, kept for
// the log; client-visible errors pass through.
func storeFailed(what string, err error) error {
	if pe := store.ProtocolError(err); pe != nil {
		return pe
	}
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe
	}
	return fmt.Errorf("%s: %w", what, errors.Join(protocol.Errorf(protocol.CodeUnavailable, "store unavailable, retry"), err))
}

// contactChange serves contact.add|remove|block|unblock [IM-13.1] on the
// committer, so that a block holds for every send committed after it.
func (h *Hook) contactChange(c call) {
	var req protocol.ContactRequest
	if err := protocol.Decode(c.f, c.payload, &req); err != nil {
		c.r.send(nil, err)
		return
	}
	if !protocol.ValidID(req.User) || req.User == c.dev.User {
		c.r.send(nil, protocol.Errorf(protocol.CodeBadRequest, "user must be another user's id"))
		return
	}
	change := map[string]store.ContactChange{
		protocol.MethodContactAdd: store.ContactAdd, protocol.MethodContactRemove: store.ContactRemove,
		protocol.MethodContactBlock: store.ContactBlock, protocol.MethodContactUnblock: store.ContactUnblock,
	}[c.method]
	h.enqueue(&op{cl: c.cl, ext: &extOp{reply: c.r.send, run: func(ctx context.Context) (any, []store.InboxEvent, error) {
		ct, err := h.cfg.Ext.UpdateContact(ctx, c.dev.User, req.User, change, time.Now().UnixMilli())
		if err != nil {
			return nil, nil, storeFailed(c.method, err)
		}
		return wireContact(ct), nil, nil
	}}})
}

// contactList serves contact.list [IM-13.1-3].
func (h *Hook) contactList(c call) {
	h.async(c.r, func(ctx context.Context) (any, error) {
		list, err := h.cfg.Ext.Contacts(ctx, c.dev.User)
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

// markBlocked marks the sends whose recipient blocks the sender
// [IM-13.2-1]; the store refuses them unless they retry a stored message
// ([IM-4.5-2]: a retry is answered with what was stored, block or not). If
// the blocks cannot be read, the batch fails as unavailable.
func (h *Hook) markBlocked(ops []*op) []*op {
	if h.cfg.Ext == nil {
		return ops
	}
	pairs := make([]store.Pair, len(ops))
	for i, o := range ops {
		pairs[i] = store.Pair{Owner: o.send.To, Peer: o.send.From}
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.Timeout)
	rels, err := h.cfg.Ext.Relations(ctx, pairs)
	cancel()
	if err == nil && len(rels) != len(ops) {
		err = errors.New("store returned a relation count unlike the batch")
	}
	if err != nil {
		h.cfg.Log.Warn("reading blocks failed", "sends", len(ops), "error", err)
		pe := protocol.Errorf(protocol.CodeUnavailable, "message not stored, retry with the same cmid")
		for _, o := range ops {
			h.m.sends.WithLabelValues(pe.Code).Inc()
			h.refuse(o, pe)
		}
		return nil
	}
	for i, o := range ops {
		o.send.Blocked = rels[i].Blocked
	}
	return ops
}

// messageRPC serves recall, edit and delete [IM-14] on the committer, so
// that their events follow the message's own in every inbox.
func (h *Hook) messageRPC(c call) {
	cl, dev, r, f, payload, method := c.cl, c.dev, c.r, c.f, c.payload, c.method
	var req protocol.MessageRequest
	if err := protocol.Decode(f, payload, &req); err != nil {
		// A JSON msg_id is a decimal string: a string that is not one is
		// an invalid value (bad_request), not a wrong type [IM-14.5-1].
		var raw struct {
			MsgID json.RawMessage `json:"msg_id"`
		}
		if f == protocol.JSON && json.Unmarshal(payload, &raw) == nil && len(raw.MsgID) > 0 && raw.MsgID[0] == '"' {
			err = protocol.Errorf(protocol.CodeBadRequest, "msg_id must be a message id (a decimal string)")
		}
		r.send(nil, err)
		return
	}
	if req.MsgID <= 0 {
		r.send(nil, protocol.Errorf(protocol.CodeBadRequest, "msg_id must be a message id"))
		return
	}
	if method == protocol.MethodEdit && req.Body == nil {
		r.send(nil, protocol.Errorf(protocol.CodeBadRequest, "edit needs a body object"))
		return
	}
	o := &extOp{reply: r.send}
	o.run = func(ctx context.Context) (any, []store.InboxEvent, error) {
		// The id of the change's event in a read-fan-out group's timeline.
		at := store.Stamp{TS: time.Now().UnixMilli(), EventID: h.cfg.IDs.Next()}
		var (
			res store.ChangeResult
			err error
		)
		switch method {
		case protocol.MethodRecall:
			res, err = h.cfg.Ext.Recall(ctx, dev.User, req.MsgID, at, h.cfg.RecallWindow)
		case protocol.MethodEdit:
			res, err = h.cfg.Ext.Edit(ctx, dev.User, req.MsgID, at, func(typ string) ([]byte, error) {
				return h.editBody(typ, req.Body)
			})
		default:
			res, err = h.cfg.Ext.DeleteForMe(ctx, dev.User, req.MsgID, at.TS)
		}
		if err != nil {
			return nil, nil, storeFailed(method, err)
		}
		w, err := res.Msg.Wire()
		if err != nil {
			return nil, nil, err
		}
		o.broadcast = res.Timeline
		return &protocol.MessageResult{Msg: &w}, res.Events, nil
	}
	h.enqueue(&op{cl: cl, ext: o})
}

// editBody validates and encodes the new body of a message of type typ as
// a send's body is [IM-14.2-1].
func (h *Hook) editBody(typ string, body map[string]any) ([]byte, error) {
	if err := protocol.CheckBody(typ, body); err != nil {
		return nil, err
	}
	if err := checkBody(body, maxDepth); err != nil {
		return nil, err
	}
	b, err := protocol.Encode(protocol.MsgPack, body)
	if err != nil {
		return nil, protocol.Errorf(protocol.CodeBadPayload, "body cannot be encoded: %v", err)
	}
	if len(b) > h.cfg.MaxBody {
		return nil, protocol.Errorf(protocol.CodeTooLarge, "body is %d bytes, the limit is %d", len(b), h.cfg.MaxBody)
	}
	return b, nil
}

// settings serves the settings RPC [IM-16.2] on the committer, so that a
// device's settings events are in the order of its requests.
func (h *Hook) settings(c call) {
	cl, dev, r, f, payload := c.cl, c.dev, c.r, c.f, c.payload
	var req protocol.SettingsRequest
	if err := protocol.Decode(f, payload, &req); err != nil {
		r.send(nil, err)
		return
	}
	a, b, direct := protocol.DirectPeers(req.Conv)
	group := protocol.IsGroupConv(req.Conv)
	switch {
	case !direct && !group:
		r.send(nil, protocol.Errorf(protocol.CodeBadRequest, "conv must be a conversation id"))
		return
	case direct && a != dev.User && b != dev.User:
		r.send(nil, protocol.Errorf(protocol.CodeNotMember, "not a member of %q", req.Conv))
		return
	case req.Pinned == nil && req.Muted == nil && req.Archived == nil && req.Draft == nil:
		r.send(nil, protocol.Errorf(protocol.CodeBadRequest, "give at least one of pinned, muted, archived, draft"))
		return
	case req.Draft != nil && (len(*req.Draft) > protocol.MaxDraft || !utf8.ValidString(*req.Draft)):
		r.send(nil, protocol.Errorf(protocol.CodeBadRequest, "draft must be UTF-8 of at most %d bytes", protocol.MaxDraft))
		return
	}
	ch := store.SettingsChange{Pinned: req.Pinned, Muted: req.Muted, Archived: req.Archived, Draft: req.Draft}
	h.enqueue(&op{cl: cl, ext: &extOp{reply: r.send, run: func(ctx context.Context) (any, []store.InboxEvent, error) {
		if group { // on the committer: ordered with membership changes
			if ok, err := h.cfg.Ext.IsMember(ctx, req.Conv, dev.User); err != nil {
				return nil, nil, storeFailed("settings", err)
			} else if !ok {
				return nil, nil, protocol.Errorf(protocol.CodeNotMember, "not a member of %q", req.Conv)
			}
		}
		st, events, err := h.cfg.Ext.UpdateSettings(ctx, dev.User, req.Conv, ch, time.Now().UnixMilli())
		if err != nil {
			return nil, nil, storeFailed("settings", err)
		}
		return &protocol.SettingsResult{Conv: req.Conv, Settings: st.Wire()}, events, nil
	}}})
}
