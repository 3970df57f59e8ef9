package store

import (
	"context"

	"github.com/mqim/mqim/protocol"
)

// KindSettings is the inbox event of a change of a user's conversation
// settings [IM-16]. It goes to that user's inbox only; ConvSeq is 0.
// Settings is filled by UpdateSettings, and by readers of Sync (Settings).
const KindSettings = "settings"

// Settings are a user's own settings of a conversation [IM-16].
type Settings struct {
	Conv     string
	Pinned   bool
	Muted    bool
	Archived bool
	Draft    string
	TS       int64 // unix ms of the last change; 0: never set
}

// SettingsChange changes some settings; nil fields stay.
type SettingsChange struct {
	Pinned, Muted, Archived *bool
	Draft                   *string
}

// SettingsStore keeps conversation settings [IM-16].
type SettingsStore interface {
	// UpdateSettings applies ch to user's settings of conv at ts and
	// returns them. If they changed, a KindSettings event is added to the
	// user's inbox and returned.
	UpdateSettings(ctx context.Context, user, conv string, ch SettingsChange, ts int64) (Settings, []InboxEvent, error)
	// Settings returns user's settings of each conv, in order (the zero
	// Settings with Conv set for one never set).
	Settings(ctx context.Context, user string, convs []string) ([]Settings, error)
}

// Apply applies ch to s at ts and reports whether anything changed; only
// a change moves s.TS (and makes an event).
func (s *Settings) Apply(ch SettingsChange, ts int64) bool {
	old := *s
	if ch.Pinned != nil {
		s.Pinned = *ch.Pinned
	}
	if ch.Muted != nil {
		s.Muted = *ch.Muted
	}
	if ch.Archived != nil {
		s.Archived = *ch.Archived
	}
	if ch.Draft != nil {
		s.Draft = *ch.Draft
	}
	if *s == old {
		return false
	}
	s.TS = ts
	return true
}

// Wire returns the settings as devices see them [IM-16.1].
func (s *Settings) Wire() *protocol.ConvSettings {
	return &protocol.ConvSettings{Pinned: s.Pinned, Muted: s.Muted, Archived: s.Archived, Draft: s.Draft, TS: s.TS}
}
