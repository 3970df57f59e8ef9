// Package catchup serves the pull side of delivery [IM-7]: the sync,
// history and conversations RPCs, read straight from the store. Pull is the
// path that is always correct; push (fanout) only makes it fast.
package catchup

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// Reader is the part of the store catchup reads.
type Reader interface {
	Sync(ctx context.Context, user string, after int64, limit int) (store.SyncPage, error)
	History(ctx context.Context, user, conv string, q store.HistoryQuery) (store.HistoryPage, error)
	Conversations(ctx context.Context, user string, limit int) ([]store.Conversation, error)
	Group(ctx context.Context, user, group string, memberLimit int) (store.GroupInfo, error)
}

// Limits of the RPCs [IM-7.3], [IM-7.4], [IM-7.5].
const (
	SyncDefault          = 100
	SyncMax              = 1000
	HistoryDefault       = 50
	HistoryMax           = 200
	ConversationsDefault = 100
	ConversationsMax     = 500
)

// Handler serves the read RPCs. Safe for concurrent use.
type Handler struct {
	store Reader
}

// New returns a Handler reading from r.
func New(r Reader) *Handler { return &Handler{store: r} }

// Sync serves the sync RPC [IM-7.3] from its encoded request.
func (h *Handler) Sync(ctx context.Context, user string, f protocol.Format, payload []byte) (any, error) {
	var req protocol.SyncRequest
	req.Limit = absent // absent means the default, 0 means "latest seq only"
	if err := protocol.Decode(f, payload, &req); err != nil {
		return nil, err
	}
	return h.sync(ctx, user, req)
}

// History serves the history RPC [IM-7.4].
func (h *Handler) History(ctx context.Context, user string, f protocol.Format, payload []byte) (any, error) {
	var req protocol.HistoryRequest
	if err := protocol.Decode(f, payload, &req); err != nil {
		return nil, err
	}
	return h.history(ctx, user, req)
}

// Conversations serves the conversations RPC [IM-7.5].
func (h *Handler) Conversations(ctx context.Context, user string, f protocol.Format, payload []byte) (any, error) {
	var req protocol.ConversationsRequest
	if err := protocol.Decode(f, payload, &req); err != nil {
		return nil, err
	}
	return h.conversations(ctx, user, req)
}

// GroupInfo serves group.info [IM-11.4].
func (h *Handler) GroupInfo(ctx context.Context, user string, f protocol.Format, payload []byte) (any, error) {
	var req protocol.GroupRequest
	if err := protocol.Decode(f, payload, &req); err != nil {
		return nil, err
	}
	return h.groupInfo(ctx, user, req)
}

// absent marks a limit the request did not carry.
const absent = math.MinInt

// limit applies a request's limit [IM-7.3-1]: absent means def, and
// values outside 0..max are refused. zeroIsDefault is for the methods where
// 0 also means the default.
func limit(n, def, max int, zeroIsDefault bool) (int, error) {
	switch {
	case n == absent, n == 0 && zeroIsDefault:
		return def, nil
	case n < 0 || n > max:
		return 0, protocol.Errorf(protocol.CodeBadRequest, "limit must be 0 to %d", max)
	}
	return n, nil
}

func (h *Handler) sync(ctx context.Context, user string, req protocol.SyncRequest) (*protocol.SyncResult, error) {
	if req.After < 0 {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "after must be >= 0")
	}
	n, err := limit(req.Limit, SyncDefault, SyncMax, false)
	if err != nil {
		return nil, err
	}
	page, err := h.store.Sync(ctx, user, req.After, n)
	if err != nil {
		return nil, storeError("sync", err)
	}
	if err := h.fillSettings(ctx, user, page.Events); err != nil { // ext.go
		return nil, err
	}
	res := &protocol.SyncResult{Events: make([]protocol.Event, 0, len(page.Events)), HasMore: page.HasMore, Latest: page.Latest}
	for i := range page.Events {
		ev, err := page.Events[i].Wire()
		if err != nil {
			return nil, err
		}
		res.Events = append(res.Events, ev)
	}
	return res, nil
}

func (h *Handler) history(ctx context.Context, user string, req protocol.HistoryRequest) (*protocol.HistoryResult, error) {
	conv := req.Conv
	switch {
	case (conv == "") == (req.With == ""):
		return nil, protocol.Errorf(protocol.CodeBadRequest, "history needs exactly one of conv and with")
	case conv == "" && (!protocol.ValidID(req.With) || req.With == user):
		return nil, protocol.Errorf(protocol.CodeBadRequest, "with must be another user's id")
	case conv == "":
		conv = protocol.DirectConv(user, req.With)
	}
	a, b, direct := protocol.DirectPeers(conv)
	group := protocol.IsGroupConv(conv)
	if !direct && !group {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "malformed conversation id %q", conv)
	}
	if direct && a != user && b != user {
		return nil, protocol.Errorf(protocol.CodeNotMember, "not a member of %q", conv)
	}
	if req.Before < 0 || req.After < 0 {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "before and after must be >= 0")
	}
	n, err := limit(req.Limit, HistoryDefault, HistoryMax, true)
	if err != nil {
		return nil, err
	}
	page, err := h.store.History(ctx, user, conv, store.HistoryQuery{Before: req.Before, After: req.After, Limit: n, ReadBy: req.ReadBy})
	if errors.Is(err, store.ErrNotMember) && !group {
		// A direct conversation of the requester with no message yet [IM-7.4-3].
		return &protocol.HistoryResult{Conv: conv, Messages: []protocol.Message{}}, nil
	}
	if err != nil {
		// Of a group: never a member, or no longer; removed members read
		// nothing more [IM-11.4-4].
		return nil, storeError("history", err)
	}
	res := &protocol.HistoryResult{Conv: conv, Messages: make([]protocol.Message, 0, len(page.Messages)), HasMore: page.HasMore}
	for i := range page.Messages {
		m, err := page.Messages[i].Wire()
		if err != nil {
			return nil, err
		}
		res.Messages = append(res.Messages, m)
	}
	return res, nil
}

func (h *Handler) conversations(ctx context.Context, user string, req protocol.ConversationsRequest) (*protocol.ConversationsResult, error) {
	n, err := limit(req.Limit, ConversationsDefault, ConversationsMax, true)
	if err != nil {
		return nil, err
	}
	convs, err := h.store.Conversations(ctx, user, n)
	if err != nil {
		return nil, storeError("conversations", err)
	}
	res := &protocol.ConversationsResult{Conversations: make([]protocol.Conversation, 0, len(convs))}
	for _, c := range convs {
		wc := protocol.Conversation{Conv: c.Conv, Kind: c.Kind, Peer: c.Peer, Name: c.Name, LastSeq: c.LastSeq,
			ReadSeq: c.ReadSeq, PeerReadSeq: c.PeerReadSeq, Unread: c.Unread}
		if c.Last != nil {
			m, err := c.Last.Wire()
			if err != nil {
				return nil, err
			}
			wc.Last = &m
		}
		res.TotalUnread += c.Unread
		res.Conversations = append(res.Conversations, wc)
	}
	if err := h.addSettings(ctx, user, res); err != nil { // ext.go
		return nil, err
	}
	return res, nil
}

// GroupInfoMembers is the most members group.info lists [IM-11.4-3].
const GroupInfoMembers = 500

func (h *Handler) groupInfo(ctx context.Context, user string, req protocol.GroupRequest) (*protocol.GroupInfo, error) {
	if !protocol.IsGroupConv(req.Group) {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "group must be a group id (g:…)")
	}
	info, err := h.store.Group(ctx, user, req.Group, GroupInfoMembers)
	if err != nil {
		return nil, storeError("group.info", err)
	}
	res := &protocol.GroupInfo{Group: info.ID, Name: info.Name, Avatar: info.Avatar, Notice: info.Notice,
		Fanout: info.Fanout, ReadFrom: info.ReadFrom, LastSeq: info.LastSeq, MemberCount: info.MemberCount,
		Members: make([]protocol.GroupMember, 0, len(info.Members))}
	for _, m := range info.Members {
		res.Members = append(res.Members, protocol.GroupMember{User: m.User, Role: m.Role, Muted: m.Muted, ReadSeq: m.ReadSeq})
	}
	return res, nil
}

// storeError answers a store error: a refusal by a store rule with its
// protocol error (store.ProtocolError); a failure is hidden from clients
// as unavailable but kept for the log.
func storeError(what string, err error) error {
	if pe := store.ProtocolError(err); pe != nil {
		return pe
	}
	return fmt.Errorf("%s: %w", what, errors.Join(protocol.Errorf(protocol.CodeUnavailable, "store unavailable, retry"), err))
}
