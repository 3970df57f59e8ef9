package im

import (
	"context"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// settings serves the settings RPC [IM-16.2] on the committer, so that a
// device's settings events are in the order of its requests.
func (s *Service) settings(c call) {
	var req protocol.SettingsRequest
	if !c.decode(&req) {
		return
	}
	user := c.sess.User
	a, b, direct := protocol.DirectPeers(req.Conv)
	group := protocol.IsGroupConv(req.Conv)
	switch {
	case !direct && !group:
		c.refuse(protocol.CodeBadRequest, "conv must be a conversation id")
		return
	case direct && a != user && b != user:
		c.refuse(protocol.CodeNotMember, "not a member of %q", req.Conv)
		return
	case req.Pinned == nil && req.Muted == nil && req.Archived == nil && req.Draft == nil:
		c.refuse(protocol.CodeBadRequest, "give at least one of pinned, muted, archived, draft")
		return
	case req.Draft != nil && (len(*req.Draft) > protocol.MaxDraft || !utf8.ValidString(*req.Draft)):
		c.refuse(protocol.CodeBadRequest, "draft must be UTF-8 of at most %d bytes", protocol.MaxDraft)
		return
	}
	ch := store.SettingsChange{Pinned: req.Pinned, Muted: req.Muted, Archived: req.Archived, Draft: req.Draft}
	s.ordered(c.sess, c.reply, func(ctx context.Context) (any, committed, error) {
		if group { // on the committer: ordered with membership changes
			if ok, err := s.cfg.Store.IsMember(ctx, req.Conv, user); err != nil {
				return nil, committed{}, storeFailed("settings", err)
			} else if !ok {
				return nil, committed{}, protocol.Errorf(protocol.CodeNotMember, "not a member of %q", req.Conv)
			}
		}
		st, events, err := s.cfg.Store.UpdateSettings(ctx, user, req.Conv, ch, time.Now().UnixMilli())
		if err != nil {
			return nil, committed{}, storeFailed("settings", err)
		}
		return &protocol.SettingsResult{Conv: req.Conv, Settings: st.Wire()}, committed{events: events}, nil
	})
}

var errSettingsCount = errors.New("store returned a settings count unlike the request")

// fillSettings gives settings events of a sync page the conversation's
// current settings [IM-16.2-2].
func (s *Service) fillSettings(ctx context.Context, user string, events []store.InboxEvent) error {
	var idx []int
	var convs []string
	for i := range events {
		if events[i].Kind == store.KindSettings && events[i].Settings == nil {
			idx = append(idx, i)
			convs = append(convs, events[i].Conv)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	list, err := s.cfg.Store.Settings(ctx, user, convs)
	if err == nil && len(list) != len(idx) {
		err = errSettingsCount
	}
	if err != nil {
		return storeFailed("settings", err)
	}
	for j, i := range idx {
		events[i].Settings = &list[j]
	}
	return nil
}

// addSettings adds the requester's settings to conversations [IM-16.3].
func (s *Service) addSettings(ctx context.Context, user string, res *protocol.ConversationsResult) error {
	if len(res.Conversations) == 0 {
		return nil
	}
	convs := make([]string, len(res.Conversations))
	for i, c := range res.Conversations {
		convs[i] = c.Conv
	}
	list, err := s.cfg.Store.Settings(ctx, user, convs)
	if err == nil && len(list) != len(convs) {
		err = errSettingsCount
	}
	if err != nil {
		return storeFailed("settings", err)
	}
	for i := range list {
		if list[i].TS != 0 {
			res.Conversations[i].Settings = list[i].Wire()
		}
	}
	return nil
}
