package catchup

import (
	"context"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// SettingsReader reads conversation settings [IM-16]; a Reader that also
// implements it gets settings into sync and conversations results.
type SettingsReader interface {
	Settings(ctx context.Context, user string, convs []string) ([]store.Settings, error)
}

// fillSettings gives settings events of a sync page the conversation's
// current settings [IM-16.2-2].
func (h *Handler) fillSettings(ctx context.Context, user string, events []store.InboxEvent) error {
	sr, ok := h.store.(SettingsReader)
	if !ok {
		return nil
	}
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
	list, err := sr.Settings(ctx, user, convs)
	if err != nil || len(list) != len(idx) {
		return storeError("settings", err)
	}
	for j, i := range idx {
		events[i].Settings = &list[j]
	}
	return nil
}

// addSettings adds the requester's settings to conversations [IM-16.3].
func (h *Handler) addSettings(ctx context.Context, user string, res *protocol.ConversationsResult) error {
	sr, ok := h.store.(SettingsReader)
	if !ok || len(res.Conversations) == 0 {
		return nil
	}
	convs := make([]string, len(res.Conversations))
	for i, c := range res.Conversations {
		convs[i] = c.Conv
	}
	list, err := sr.Settings(ctx, user, convs)
	if err != nil || len(list) != len(convs) {
		return storeError("settings", err)
	}
	for i := range list {
		if list[i].TS != 0 {
			res.Conversations[i].Settings = list[i].Wire()
		}
	}
	return nil
}
