package store

import (
	"context"
	"github.com/mqim/mqim/protocol"
	"time"
)

// Inbox event kinds of spec §14. Their events carry the message as it is
// after the change (InboxEvent.Msg); Actor is the user who made it.
const (
	KindRecall = "recall"
	KindEdit   = "edit"
	KindDelete = "delete"
)

// TypeRecalled is the type a recalled message gets; its body is emptied.
const TypeRecalled = "recalled"

// RecalledBody is the body of a recalled message: the canonical
// MessagePack of {}.
var RecalledBody = []byte{0x80}

// EditBody returns the canonical body that replaces a message of type typ,
// or an error to refuse the edit with.
type EditBody func(typ string) ([]byte, error)

// ExtStore holds the operations of spec §14: recall, edit, delete for me.
// Each finds the message by id; a message that does not exist or whose
// conversation user is not a member of is ErrNotFound.
type ExtStore interface {
	PresenceStore // presence.go

	// Recall replaces the message by a recalled marker (type
	// TypeRecalled, empty body) and adds a KindRecall event to the inbox
	// of every member. Only the sender may, and only until window after
	// the message's time, or an owner or admin of the message's group at
	// any time: otherwise ErrNotAllowed. Recalling a recalled message
	// changes nothing and returns no event.
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
}

// The rules of Recall, Edit and DeleteForMe, shared by the
// implementations: they read the message, the user's role in its
// conversation and the conversation's fan-out, let the MessageChange
// decide, store the changed message and add the events.

// MessageChange is a recall, an edit or a delete for me of a message.
type MessageChange struct {
	Kind string // KindRecall, KindEdit or KindDelete
	// Apply decides the change of m by the user, whose role in m's
	// conversation is role: it changes m (a delete changes nothing in m),
	// or says that nothing changes (no row, no event), or refuses.
	Apply func(m *Message, role string) (changed bool, err error)
}

// ToMembers reports whether the change's event goes to every member of a
// conversation with fan-out fanout ("" for a direct conversation), rather
// than to the actor only: a delete is the actor's own [IM-14.3], and a
// group that fans out on read writes no inbox row per member [IM-11.3-3]
// (the others see the change in history).
func (c MessageChange) ToMembers(fanout string) bool {
	return c.Kind != KindDelete && fanout != FanoutRead
}

// RecallChange is user's recall at ts [IM-14.1]: the sender may within
// window of the message's time, an owner or admin of the message's group
// at any time, and nobody may recall a group's own record of a change
// [IM-11.2-1]. The message becomes the recalled marker; recalling it again
// changes nothing.
func RecallChange(user string, ts int64, window time.Duration) MessageChange {
	return MessageChange{Kind: KindRecall, Apply: func(m *Message, role string) (bool, error) {
		if m.Type == TypeGroup {
			return false, Refuse(ErrNotAllowed, "cannot recall message %d: it is the group's record of a change", m.ID)
		}
		groupAdmin := protocol.IsGroupConv(m.Conv) && (role == RoleOwner || role == RoleAdmin)
		if (m.From != user || ts-m.TS > window.Milliseconds()) && !groupAdmin {
			return false, Refuse(ErrNotAllowed,
				"cannot recall message %d: only its sender may, within the recall window (or a group admin)", m.ID)
		}
		if m.Type == TypeRecalled {
			return false, nil
		}
		m.Type, m.Body = TypeRecalled, RecalledBody
		return true, nil
	}}
}

// EditChange is user's edit [IM-14.2]: only the sender may, and not once
// recalled. The message gets the body from body, whose error is returned
// as is.
func EditChange(user string, body EditBody) MessageChange {
	return MessageChange{Kind: KindEdit, Apply: func(m *Message, _ string) (bool, error) {
		if m.From != user || m.Type == TypeRecalled {
			return false, Refuse(ErrNotAllowed, "cannot edit message %d: only its sender may, and not once recalled", m.ID)
		}
		b, err := body(m.Type)
		if err != nil {
			return false, err
		}
		m.Body = b
		return true, nil
	}}
}

// DeleteChange is a delete for me [IM-14.3]: any member may; whether it
// changes anything (it was not hidden yet) only the store knows.
func DeleteChange() MessageChange {
	return MessageChange{Kind: KindDelete, Apply: func(*Message, string) (bool, error) { return true, nil }}
}

// ChangeFunc stores one change of message id by user at ts, as c decides:
// what an implementation provides to MessageChanges.
type ChangeFunc func(ctx context.Context, user string, id int64, ts int64, c MessageChange) (Message, []InboxEvent, error)

// MessageChanges implements ExtStore's Recall, Edit and DeleteForMe with
// their rules on an implementation's ChangeFunc; implementations embed it.
type MessageChanges struct{ change ChangeFunc }

// NewMessageChanges returns the operations of spec §14 on change.
func NewMessageChanges(change ChangeFunc) MessageChanges { return MessageChanges{change} }

// Recall replaces a message by a recalled marker, for every member.
func (x MessageChanges) Recall(ctx context.Context, user string, id int64, ts int64, window time.Duration) (Message, []InboxEvent, error) {
	return x.change(ctx, user, id, ts, RecallChange(user, ts, window))
}

// Edit replaces a message's body, for every member.
func (x MessageChanges) Edit(ctx context.Context, user string, id int64, ts int64, body EditBody) (Message, []InboxEvent, error) {
	return x.change(ctx, user, id, ts, EditChange(user, body))
}

// DeleteForMe hides a message from user's history.
func (x MessageChanges) DeleteForMe(ctx context.Context, user string, id int64, ts int64) (Message, []InboxEvent, error) {
	return x.change(ctx, user, id, ts, DeleteChange())
}
