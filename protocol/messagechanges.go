package protocol

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
