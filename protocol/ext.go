package protocol

import "strings"

// RPC methods of spec §13–§16.
const (
	MethodContactAdd     = "contact.add"
	MethodContactRemove  = "contact.remove"
	MethodContactBlock   = "contact.block"
	MethodContactUnblock = "contact.unblock"
	MethodContactList    = "contact.list"
)

// ContactRequest names the other user of a contact change [IM-13.1].
type ContactRequest struct {
	User string `json:"user" msgpack:"user"`
}

// Contact is the requester's relation to User [IM-13.1].
type Contact struct {
	User    string `json:"user" msgpack:"user"`
	Contact bool   `json:"contact" msgpack:"contact"`
	Blocked bool   `json:"blocked" msgpack:"blocked"`
	Since   int64  `json:"since,omitempty" msgpack:"since,omitempty"`
}

// ContactsResult answers contact.list [IM-13.1-3].
type ContactsResult struct {
	Contacts []Contact `json:"contacts" msgpack:"contacts"`
}

// RPC methods of spec §14.
const (
	MethodRecall = "recall"
	MethodEdit   = "edit"
	MethodDelete = "delete"
)

// Event kinds of spec §14 [IM-14.4].
const (
	KindRecall = "recall"
	KindEdit   = "edit"
	KindDelete = "delete"
)

// TypeRecalled is the type of a recalled message [IM-14.1-2].
const TypeRecalled = "recalled"

// Message types of the timeline events that record a recall or an edit in
// a group that fans out on read [IM-14.4-3]: written by the server only,
// with a body {msg_id (a decimal string), conv_seq, body (edit)}.
const (
	TypeRecall = "recall"
	TypeEdit   = "edit"
)

// KindMention is the inbox event of a member named in the mentions of a
// message of a group that fans out on read [IM-11.6-2].
const KindMention = "mention"

// MessageRequest names a message by id for recall, edit and delete
// [IM-14]. Body is the new body of an edit.
type MessageRequest struct {
	MsgID int64          `json:"msg_id,string" msgpack:"msg_id"`
	Body  map[string]any `json:"body,omitempty" msgpack:"body,omitempty"`
}

// MessageResult answers recall, edit and delete: the message after the
// change [IM-14].
type MessageResult struct {
	Msg *Message `json:"msg" msgpack:"msg"`
}

// Typing signals [IM-15.1].
const (
	KindTyping   = "typing"
	StateTyping  = "typing"
	StatePaused  = "paused"
	typingLeaf   = "typing"
	presenceLeaf = "presence"
)

// TypingTopic is where user uid's devices publish typing signals [IM-15.1-1].
func TypingTopic(uid string) string { return userPrefix + uid + "/" + typingLeaf }

// ParseTypingTopic returns the user of a topic im/v1/u/{uid}/typing.
func ParseTypingTopic(topic string) (string, bool) {
	rest, ok := strings.CutPrefix(topic, userPrefix)
	if !ok {
		return "", false
	}
	uid, leaf, ok := strings.Cut(rest, "/")
	if !ok || leaf != typingLeaf || !ValidID(uid) {
		return "", false
	}
	return uid, true
}

// Typing is the payload of a typing signal [IM-15.1-1].
type Typing struct {
	To    string `json:"to" msgpack:"to"`
	State string `json:"state,omitempty" msgpack:"state,omitempty"`
}

// Presence [IM-15.2].
const (
	MethodPresence  = "presence"
	MaxPresenceUser = 100
)

// PresenceRequest asks for the presence of users [IM-15.2-1].
type PresenceRequest struct {
	Users []string `json:"users" msgpack:"users"`
}

// Presence is one user's presence, or the error that hides it [IM-15.2-2].
type Presence struct {
	User     string `json:"user" msgpack:"user"`
	Online   bool   `json:"online" msgpack:"online"`
	LastSeen int64  `json:"last_seen,omitempty" msgpack:"last_seen,omitempty"`
	Error    *Error `json:"error,omitempty" msgpack:"error,omitempty"`
}

// PresenceResult answers PresenceRequest, in the order of the request.
type PresenceResult struct {
	Presence []Presence `json:"presence" msgpack:"presence"`
}

// Conversation settings [IM-16].
const (
	MethodSettings = "settings"
	KindSettings   = "settings"
	MaxDraft       = 4096
)

// ConvSettings are a user's own settings of a conversation [IM-16.1].
type ConvSettings struct {
	Pinned   bool   `json:"pinned" msgpack:"pinned"`
	Muted    bool   `json:"muted" msgpack:"muted"`
	Archived bool   `json:"archived" msgpack:"archived"`
	Draft    string `json:"draft" msgpack:"draft"`
	TS       int64  `json:"ts,omitempty" msgpack:"ts,omitempty"`
}

// SettingsRequest changes the settings given; absent ones stay [IM-16.2].
type SettingsRequest struct {
	Conv     string  `json:"conv" msgpack:"conv"`
	Pinned   *bool   `json:"pinned,omitempty" msgpack:"pinned,omitempty"`
	Muted    *bool   `json:"muted,omitempty" msgpack:"muted,omitempty"`
	Archived *bool   `json:"archived,omitempty" msgpack:"archived,omitempty"`
	Draft    *string `json:"draft,omitempty" msgpack:"draft,omitempty"`
}

// SettingsResult answers SettingsRequest.
type SettingsResult struct {
	Conv     string        `json:"conv" msgpack:"conv"`
	Settings *ConvSettings `json:"settings" msgpack:"settings"`
}

// PresenceTopic is the retained topic of user uid's live presence
// [IM-15.3-1].
func PresenceTopic(uid string) string { return userPrefix + uid + "/" + presenceLeaf }

// ParsePresenceTopic returns the user of a topic (or filter without
// wildcards) im/v1/u/{uid}/presence.
func ParsePresenceTopic(topic string) (string, bool) {
	rest, ok := strings.CutPrefix(topic, userPrefix)
	if !ok {
		return "", false
	}
	uid, leaf, ok := strings.Cut(rest, "/")
	if !ok || leaf != presenceLeaf || !ValidID(uid) {
		return "", false
	}
	return uid, true
}
