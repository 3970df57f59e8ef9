package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/mqim/mqim/protocol"
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

// Stamp is when a change of a message is made, and the id its event gets
// in the timeline of a group that fans out on read (a snowflake, like a
// message id; unused elsewhere) [IM-14.4-3].
type Stamp struct {
	TS      int64 // unix milliseconds
	EventID int64
}

// ChangeResult is a committed change of a message.
type ChangeResult struct {
	Msg    Message      // the message after the change
	Events []InboxEvent // the inbox rows written for it
	// Timeline is the change's event in the timeline of a group that fans
	// out on read, to publish on the group topic [IM-14.4-3]; nil
	// otherwise.
	Timeline *Message
}

// ExtStore holds the operations of spec §14: recall, edit, delete for me.
// Each finds the message by id; a message that does not exist or whose
// conversation user is not a member of is ErrNotFound.
type ExtStore interface {
	PresenceStore // presence.go

	// Recall replaces the message by a recalled marker (type
	// TypeRecalled, empty body) and adds a KindRecall event to the inbox
	// of every member; in a group that fans out on read, to the actor's
	// inbox only, and it stores a TypeRecall event in the group's
	// timeline (ChangeResult.Timeline). Only the sender may, and only
	// until window after the message's time, or an owner or admin of the
	// message's group at any time: otherwise ErrNotAllowed. Recalling a
	// recalled message changes nothing and returns no event.
	Recall(ctx context.Context, user string, id int64, at Stamp, window time.Duration) (ChangeResult, error)
	// Edit replaces the body of the message by body(type) and adds a
	// KindEdit event to the inbox of every member; in a group that fans
	// out on read, as Recall does, to the actor's inbox and a TypeEdit
	// event in the timeline. Only the sender may, and not once recalled:
	// otherwise ErrNotAllowed. An error of body is returned as is and
	// changes nothing.
	Edit(ctx context.Context, user string, id int64, at Stamp, body EditBody) (ChangeResult, error)
	// DeleteForMe hides the message from user's history and adds a
	// KindDelete event to user's inbox only. Deleting it again changes
	// nothing and returns no event.
	DeleteForMe(ctx context.Context, user string, id int64, ts int64) (ChangeResult, error)
}

// The rules of Recall, Edit and DeleteForMe, shared by the
// implementations: they read the message, the user's role in its
// conversation and the conversation's fan-out (and last seq), let the
// MessageChange decide, store the changed message, store the change's
// timeline event (Event) and add the inbox events.

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
// (the others get the change's timeline event, Event).
func (c MessageChange) ToMembers(fanout string) bool {
	return c.Kind != KindDelete && fanout != FanoutRead
}

// Message types of the events that record a recall or an edit in the
// timeline of a group that fans out on read [IM-14.4-3]. Like TypeGroup,
// only the server writes them.
const (
	TypeRecall = "recall"
	TypeEdit   = "edit"
)

// IsChangeEvent reports whether typ is the type of a change's timeline
// event.
func IsChangeEvent(typ string) bool { return typ == TypeRecall || typ == TypeEdit }

// serverRecord reports whether a message of type typ is written by the
// server, not sent by a device: a group's change [IM-11.2-1] or a change's
// timeline event [IM-14.4-3]. Its cmid is the server's (EventCmid).
func serverRecord(typ string) bool { return typ == TypeGroup || IsChangeEvent(typ) }

// ChangeEvent is the event a change stores in its group's timeline.
type ChangeEvent struct {
	// Msg is the event: a message of type TypeRecall or TypeEdit from the
	// actor at the conversation's next seq.
	Msg Message
	// Row is Msg as stored, its RefSeq the changed message's seq.
	Row MessageRow
	// Scrub is, for a recall, the body that the recalled message's
	// earlier edit events (type TypeEdit, the same RefSeq) get, without
	// the text they carried; nil for an edit.
	Scrub []byte
}

// Event returns the timeline event of the change of m (as changed) by
// user at at, in m's conversation whose fan-out is fanout and last seq
// lastSeq, or nil when the change stores none: only a recall or an edit
// in a group that fans out on read does, so that the members, who get no
// inbox row of it, see it on the group topic and in history after their
// cursor [IM-14.4-3]. Its body names the message (msg_id, a decimal
// string, and conv_seq) and, for an edit, holds the new body.
func (c MessageChange) Event(fanout string, m *Message, user string, at Stamp, lastSeq int64) (*ChangeEvent, error) {
	if c.Kind == KindDelete || fanout != FanoutRead {
		return nil, nil
	}
	ref := map[string]any{"msg_id": strconv.FormatInt(m.ID, 10), "conv_seq": m.Seq}
	scrub, err := protocol.Encode(protocol.MsgPack, ref)
	if err != nil {
		return nil, fmt.Errorf("encode %s event: %w", c.Kind, err)
	}
	ev := &ChangeEvent{Msg: Message{ID: at.EventID, Conv: m.Conv, Seq: lastSeq + 1, From: user, Cmid: EventCmid(at.EventID),
		Type: TypeRecall, Body: scrub, TS: at.TS}}
	if c.Kind == KindRecall {
		ev.Scrub = scrub
	} else {
		ref["body"] = msgpack.RawMessage(m.Body)
		if ev.Msg.Body, err = protocol.Encode(protocol.MsgPack, ref); err != nil {
			return nil, fmt.Errorf("encode %s event: %w", c.Kind, err)
		}
		ev.Msg.Type = TypeEdit
	}
	ev.Row = NewMessageRow(&ev.Msg, nil)
	ev.Row.RefSeq = m.Seq
	return ev, nil
}

// RecallChange is user's recall at ts [IM-14.1]: the sender may within
// window of the message's time, an owner or admin of the message's group
// at any time, and nobody may recall a record the server wrote: a group's
// change [IM-11.2-1] or a change's timeline event [IM-14.4-3]. The
// message becomes the recalled marker; recalling it again changes
// nothing.
func RecallChange(user string, ts int64, window time.Duration) MessageChange {
	return MessageChange{Kind: KindRecall, Apply: func(m *Message, role string) (bool, error) {
		if serverRecord(m.Type) {
			return false, Refuse(ErrNotAllowed, "cannot recall message %d: it is the server's record of a change", m.ID)
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

// EditChange is user's edit [IM-14.2]: only the sender may, not once
// recalled, and not a change's timeline event [IM-14.4-3]. The message
// gets the body from body, whose error is returned as is.
func EditChange(user string, body EditBody) MessageChange {
	return MessageChange{Kind: KindEdit, Apply: func(m *Message, _ string) (bool, error) {
		if m.From != user || m.Type == TypeRecalled || IsChangeEvent(m.Type) {
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

// ChangeFunc stores one change of message id by user at at, as c decides:
// what an implementation provides to MessageChanges.
type ChangeFunc func(ctx context.Context, user string, id int64, at Stamp, c MessageChange) (ChangeResult, error)

// MessageChanges implements ExtStore's Recall, Edit and DeleteForMe with
// their rules on an implementation's ChangeFunc; implementations embed it.
type MessageChanges struct{ change ChangeFunc }

// NewMessageChanges returns the operations of spec §14 on change.
func NewMessageChanges(change ChangeFunc) MessageChanges { return MessageChanges{change} }

// Recall replaces a message by a recalled marker, for every member.
func (x MessageChanges) Recall(ctx context.Context, user string, id int64, at Stamp, window time.Duration) (ChangeResult, error) {
	return x.change(ctx, user, id, at, RecallChange(user, at.TS, window))
}

// Edit replaces a message's body, for every member.
func (x MessageChanges) Edit(ctx context.Context, user string, id int64, at Stamp, body EditBody) (ChangeResult, error) {
	return x.change(ctx, user, id, at, EditChange(user, body))
}

// DeleteForMe hides a message from user's history.
func (x MessageChanges) DeleteForMe(ctx context.Context, user string, id int64, ts int64) (ChangeResult, error) {
	return x.change(ctx, user, id, Stamp{TS: ts}, DeleteChange())
}
