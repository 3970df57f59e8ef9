package im

import (
	"context"
	"errors"
	"math"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// The pull side of delivery [IM-7]: sync, history, conversations and
// group.info, read straight from the store on the RPC goroutines. Pull is
// the path that is always correct; push only makes it fast.

// Limits of the RPCs [IM-7.3], [IM-7.4], [IM-7.5], [IM-11.4-3].
const (
	SyncDefault          = 100
	SyncMax              = 1000
	HistoryDefault       = 50
	HistoryMax           = 200
	ConversationsDefault = 100
	ConversationsMax     = 500
	GroupInfoMembers     = 500
)

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

// syncRPC serves sync [IM-7.3].
func (s *Service) syncRPC(c call) {
	var req protocol.SyncRequest
	req.Limit = absent // absent means the default, 0 means "latest seq only"
	if !c.decode(&req) {
		return
	}
	s.async(c.sess, c.reply, func(ctx context.Context) (any, error) { return s.sync(ctx, c.sess.User, req) })
}

func (s *Service) sync(ctx context.Context, user string, req protocol.SyncRequest) (*protocol.SyncResult, error) {
	if req.After < 0 {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "after must be >= 0")
	}
	n, err := limit(req.Limit, SyncDefault, SyncMax, false)
	if err != nil {
		return nil, err
	}
	page, err := s.cfg.Store.Sync(ctx, user, req.After, n)
	if err != nil {
		return nil, storeFailed("sync", err)
	}
	if err := s.fillSettings(ctx, user, page.Events); err != nil { // settings.go
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

// historyRPC serves history [IM-7.4].
func (s *Service) historyRPC(c call) {
	var req protocol.HistoryRequest
	if !c.decode(&req) {
		return
	}
	s.async(c.sess, c.reply, func(ctx context.Context) (any, error) { return s.history(ctx, c.sess.User, req) })
}

func (s *Service) history(ctx context.Context, user string, req protocol.HistoryRequest) (*protocol.HistoryResult, error) {
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
	page, err := s.cfg.Store.History(ctx, user, conv, store.HistoryQuery{Before: req.Before, After: req.After, Limit: n, ReadBy: req.ReadBy})
	if errors.Is(err, store.ErrNotMember) && !group {
		// A direct conversation of the requester with no message yet [IM-7.4-3].
		return &protocol.HistoryResult{Conv: conv, Messages: []protocol.Message{}}, nil
	}
	if err != nil {
		// Of a group: never a member, or no longer; removed members read
		// nothing more [IM-11.4-4].
		return nil, storeFailed("history", err)
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

// conversationsRPC serves conversations [IM-7.5].
func (s *Service) conversationsRPC(c call) {
	var req protocol.ConversationsRequest
	if !c.decode(&req) {
		return
	}
	s.async(c.sess, c.reply, func(ctx context.Context) (any, error) { return s.conversations(ctx, c.sess.User, req) })
}

func (s *Service) conversations(ctx context.Context, user string, req protocol.ConversationsRequest) (*protocol.ConversationsResult, error) {
	n, err := limit(req.Limit, ConversationsDefault, ConversationsMax, true)
	if err != nil {
		return nil, err
	}
	convs, err := s.cfg.Store.Conversations(ctx, user, n)
	if err != nil {
		return nil, storeFailed("conversations", err)
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
	if err := s.addSettings(ctx, user, res); err != nil { // settings.go
		return nil, err
	}
	return res, nil
}

// groupInfoRPC serves group.info [IM-11.4].
func (s *Service) groupInfoRPC(c call) {
	var req protocol.GroupRequest
	if !c.decode(&req) {
		return
	}
	user := c.sess.User
	if c.sess.Operator {
		user = "" // any group, as no member [IM-8.3-9]
	}
	s.async(c.sess, c.reply, func(ctx context.Context) (any, error) { return s.groupInfo(ctx, user, req) })
}

func (s *Service) groupInfo(ctx context.Context, user string, req protocol.GroupRequest) (*protocol.GroupInfo, error) {
	if !protocol.IsGroupConv(req.Group) {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "group must be a group id (g:…)")
	}
	info, err := s.cfg.Store.Group(ctx, user, req.Group, GroupInfoMembers)
	if err != nil {
		return nil, storeFailed("group.info", err)
	}
	res := &protocol.GroupInfo{Group: info.ID, Name: info.Name, Avatar: info.Avatar, Notice: info.Notice,
		Fanout: info.Fanout, ReadFrom: info.ReadFrom, LastSeq: info.LastSeq, MemberCount: info.MemberCount,
		Members: make([]protocol.GroupMember, 0, len(info.Members))}
	for _, m := range info.Members {
		res.Members = append(res.Members, protocol.GroupMember{User: m.User, Role: m.Role, Muted: m.Muted, ReadSeq: m.ReadSeq})
	}
	return res, nil
}
