package store

import (
	"context"
	"errors"
	"time"

	"github.com/mqim/mqim/protocol"
)

// ErrNotAllowed: the user may not change the message (not its sender,
// recall window passed, or already recalled).
var ErrNotAllowed = errors.New("not allowed")

// Inbox event kinds of spec §14. Their events carry the message as it is
// after the change (InboxEvent.Msg); Actor is the user who made it.
const (
	KindRecall = "recall"
	KindEdit   = "edit"
	KindDelete = "delete"
)

// TypeRecalled is the type a recalled message gets; its body is emptied.
const TypeRecalled = "recalled"

// EditBody returns the canonical body that replaces a message of type typ,
// or an error to refuse the edit with.
type EditBody func(typ string) ([]byte, error)

// ExtStore holds the operations of spec §14: recall, edit, delete for me.
// Each finds the message by id; a message that does not exist or whose
// conversation user is not a member of is ErrNotFound.
type ExtStore interface {
	// Recall replaces the message by a recalled marker (type
	// TypeRecalled, empty body) and adds a KindRecall event to the inbox
	// of every member. Only the sender may, and only until window after
	// the message's time: otherwise ErrNotAllowed. Recalling a recalled
	// message changes nothing and returns no event.
	Recall(ctx context.Context, user string, id int64, ts int64, window time.Duration) (Message, []InboxEvent, error)
	// Edit replaces the body of the message by body(type) and adds a
	// KindEdit event to the inbox of every member. Only the sender may,
	// and not once recalled: otherwise ErrNotAllowed. An error of body
	// is returned as is and changes nothing.
	Edit(ctx context.Context, user string, id int64, ts int64, body EditBody) (Message, []InboxEvent, error)
	// DeleteForMe hides the message from user's history and adds a
	// KindDelete event to user's inbox only. Deleting it again changes
	// nothing and returns no event.
	DeleteForMe(ctx context.Context, user string, id int64, ts int64) (Message, []InboxEvent, error)

	// LastSeen returns, for each user, the latest time (unix ms) one of
	// its devices was seen (EnsureUser with that device), or 0.
	LastSeen(ctx context.Context, users []string) ([]int64, error)
}

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

// Wire returns the settings as devices see them [IM-16.1].
func (s *Settings) Wire() *protocol.ConvSettings {
	return &protocol.ConvSettings{Pinned: s.Pinned, Muted: s.Muted, Archived: s.Archived, Draft: s.Draft, TS: s.TS}
}
