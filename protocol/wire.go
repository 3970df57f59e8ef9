package protocol

// Message types known in version 1 [IM-4.2].
const (
	TypeText   = "text"
	TypeCustom = "custom"
	// TypeGroup is written by the server only: a change of a group
	// (membership, roles, settings) in its timeline [IM-11.4].
	TypeGroup = "group"
)

// Event kinds [IM-5.1].
const (
	KindMessage = "message"
	KindRead    = "read"
	KindError   = "error"
)

// Send is the payload a device publishes on its send topic [IM-4.1].
type Send struct {
	Cmid  string         `json:"cmid" msgpack:"cmid"`
	To    string         `json:"to,omitempty" msgpack:"to,omitempty"`
	Group string         `json:"group,omitempty" msgpack:"group,omitempty"` // [IM-11.5]
	Type  string         `json:"type" msgpack:"type"`
	Body  map[string]any `json:"body" msgpack:"body"`
	// Mentions: members of the group, or "*" for everyone [IM-11.6].
	Mentions []string `json:"mentions,omitempty" msgpack:"mentions,omitempty"`
}

// Message is a stored message as devices see it [IM-4.3].
type Message struct {
	ID   int64          `json:"id,string" msgpack:"id"`
	Conv string         `json:"conv" msgpack:"conv"`
	Seq  int64          `json:"seq" msgpack:"seq"`
	From string         `json:"from" msgpack:"from"`
	Cmid string         `json:"cmid" msgpack:"cmid"`
	Type string         `json:"type" msgpack:"type"`
	Body map[string]any `json:"body" msgpack:"body"`
	TS   int64          `json:"ts" msgpack:"ts"`
	// Mentions of a group message [IM-11.6].
	Mentions []string `json:"mentions,omitempty" msgpack:"mentions,omitempty"`
	// ReadBy: in group history, members other than the sender who have
	// read it [IM-11.7].
	ReadBy int64 `json:"read_by,omitempty" msgpack:"read_by,omitempty"`
}

// Event is what the server publishes on an inbox topic [IM-5.1]. Seq is the
// user's inbox seq; it is 0 for ephemeral events (errors), which are never
// stored and never returned by sync.
type Event struct {
	Kind    string   `json:"kind" msgpack:"kind"`
	Seq     int64    `json:"seq,omitempty" msgpack:"seq,omitempty"`
	Conv    string   `json:"conv,omitempty" msgpack:"conv,omitempty"`
	ConvSeq int64    `json:"conv_seq,omitempty" msgpack:"conv_seq,omitempty"`
	Msg     *Message `json:"msg,omitempty" msgpack:"msg,omitempty"`
	User    string   `json:"user,omitempty" msgpack:"user,omitempty"`
	Cmid    string   `json:"cmid,omitempty" msgpack:"cmid,omitempty"`
	Error   *Error   `json:"error,omitempty" msgpack:"error,omitempty"`
	TS      int64    `json:"ts,omitempty" msgpack:"ts,omitempty"`
	State   string   `json:"state,omitempty" msgpack:"state,omitempty"` // typing [IM-15.1-2]
	// Settings of a settings event [IM-16.2].
	Settings *ConvSettings `json:"settings,omitempty" msgpack:"settings,omitempty"`
}

// RPC methods [IM-7].
const (
	MethodSync          = "sync"
	MethodHistory       = "history"
	MethodConversations = "conversations"
	MethodRead          = "read"
)

// RequestEnvelope holds the fields every RPC request payload may carry
// besides its parameters [IM-7.1-3]: needed by MQTT 3.1.1 clients, which have
// no Response Topic or Correlation Data.
type RequestEnvelope struct {
	ID      string `json:"id,omitempty" msgpack:"id,omitempty"`
	ReplyTo string `json:"reply_to,omitempty" msgpack:"reply_to,omitempty"`
}

// Response is the payload of every RPC response [IM-7.2].
type Response struct {
	ID     string `json:"id,omitempty" msgpack:"id,omitempty"`
	OK     bool   `json:"ok" msgpack:"ok"`
	Result any    `json:"result,omitempty" msgpack:"result,omitempty"`
	Error  *Error `json:"error,omitempty" msgpack:"error,omitempty"`
}

// SyncRequest asks for inbox events after a seq [IM-7.3].
type SyncRequest struct {
	After int64 `json:"after" msgpack:"after"`
	Limit int   `json:"limit" msgpack:"limit"`
}

// SyncResult answers SyncRequest.
type SyncResult struct {
	Events  []Event `json:"events" msgpack:"events"`
	HasMore bool    `json:"has_more" msgpack:"has_more"`
	Latest  int64   `json:"latest_seq" msgpack:"latest_seq"`
	Reset   bool    `json:"reset,omitempty" msgpack:"reset,omitempty"`
}

// HistoryRequest asks for a page of a conversation's messages [IM-7.4].
type HistoryRequest struct {
	Conv   string `json:"conv,omitempty" msgpack:"conv,omitempty"`
	With   string `json:"with,omitempty" msgpack:"with,omitempty"`
	Before int64  `json:"before,omitempty" msgpack:"before,omitempty"`
	After  int64  `json:"after,omitempty" msgpack:"after,omitempty"`
	Limit  int    `json:"limit,omitempty" msgpack:"limit,omitempty"`
	// ReadBy asks for read_by counts in a group [IM-11.7-2].
	ReadBy bool `json:"read_by,omitempty" msgpack:"read_by,omitempty"`
}

// HistoryResult answers HistoryRequest; Messages ascend by seq.
type HistoryResult struct {
	Conv     string    `json:"conv" msgpack:"conv"`
	Messages []Message `json:"messages" msgpack:"messages"`
	HasMore  bool      `json:"has_more" msgpack:"has_more"`
}

// ConversationsRequest asks for the user's conversations [IM-7.5].
type ConversationsRequest struct {
	Limit int `json:"limit,omitempty" msgpack:"limit,omitempty"`
}

// Conversation is one entry of ConversationsResult.
type Conversation struct {
	Conv        string   `json:"conv" msgpack:"conv"`
	Kind        string   `json:"kind" msgpack:"kind"`
	Peer        string   `json:"peer,omitempty" msgpack:"peer,omitempty"`
	Name        string   `json:"name,omitempty" msgpack:"name,omitempty"`
	LastSeq     int64    `json:"last_seq" msgpack:"last_seq"`
	ReadSeq     int64    `json:"read_seq" msgpack:"read_seq"`
	PeerReadSeq int64    `json:"peer_read_seq" msgpack:"peer_read_seq"`
	Unread      int64    `json:"unread" msgpack:"unread"`
	Last        *Message `json:"last,omitempty" msgpack:"last,omitempty"`
	// Settings are the requester's own settings, absent if never set [IM-16.3].
	Settings *ConvSettings `json:"settings,omitempty" msgpack:"settings,omitempty"`
}

// ConversationsResult answers ConversationsRequest, most recent first.
type ConversationsResult struct {
	Conversations []Conversation `json:"conversations" msgpack:"conversations"`
	TotalUnread   int64          `json:"total_unread" msgpack:"total_unread"`
}

// ReadRequest marks a conversation read up to a seq [IM-7.6], or, with
// Reads, several at once [IM-7.6-4].
type ReadRequest struct {
	Conv  string     `json:"conv,omitempty" msgpack:"conv,omitempty"`
	Seq   int64      `json:"seq" msgpack:"seq"`
	Reads []ReadItem `json:"reads,omitempty" msgpack:"reads,omitempty"`
}

// ReadItem is one entry of a batched read.
type ReadItem struct {
	Conv string `json:"conv" msgpack:"conv"`
	Seq  int64  `json:"seq" msgpack:"seq"`
}

// ReadBatchResult answers a ReadRequest with Reads: one result per
// conversation, in the order of their first appearance.
type ReadBatchResult struct {
	Reads []ReadResult `json:"reads" msgpack:"reads"`
}

// ReadResult answers ReadRequest.
type ReadResult struct {
	Conv    string `json:"conv" msgpack:"conv"`
	ReadSeq int64  `json:"read_seq" msgpack:"read_seq"`
	Unread  int64  `json:"unread" msgpack:"unread"`
}

// Group RPC methods [IM-11.4].
const (
	MethodGroupCreate   = "group.create"
	MethodGroupAdd      = "group.add"
	MethodGroupRemove   = "group.remove"
	MethodGroupLeave    = "group.leave"
	MethodGroupRole     = "group.role"
	MethodGroupTransfer = "group.transfer"
	MethodGroupMute     = "group.mute"
	MethodGroupUpdate   = "group.update"
	MethodGroupInfo     = "group.info"
)

// GroupRequest holds the parameters of every group method; which fields a
// method reads is in [IM-11.4].
type GroupRequest struct {
	Group   string   `json:"group,omitempty" msgpack:"group,omitempty"`
	Users   []string `json:"users,omitempty" msgpack:"users,omitempty"`
	User    string   `json:"user,omitempty" msgpack:"user,omitempty"`
	Role    string   `json:"role,omitempty" msgpack:"role,omitempty"`
	Muted   *bool    `json:"muted,omitempty" msgpack:"muted,omitempty"`
	Name    *string  `json:"name,omitempty" msgpack:"name,omitempty"`
	Avatar  *string  `json:"avatar,omitempty" msgpack:"avatar,omitempty"`
	Notice  *string  `json:"notice,omitempty" msgpack:"notice,omitempty"`
	Members []string `json:"members,omitempty" msgpack:"members,omitempty"` // group.create
}

// GroupChangeResult answers every group method that changes the group.
type GroupChangeResult struct {
	Group    string `json:"group" msgpack:"group"`
	ConvSeq  int64  `json:"conv_seq" msgpack:"conv_seq"`
	Fanout   string `json:"fanout" msgpack:"fanout"`
	ReadFrom int64  `json:"read_from,omitempty" msgpack:"read_from,omitempty"`
}

// GroupMember is one member in GroupInfo.
type GroupMember struct {
	User    string `json:"user" msgpack:"user"`
	Role    string `json:"role" msgpack:"role"`
	Muted   bool   `json:"muted,omitempty" msgpack:"muted,omitempty"`
	ReadSeq int64  `json:"read_seq" msgpack:"read_seq"`
}

// GroupInfo answers group.info.
type GroupInfo struct {
	Group       string        `json:"group" msgpack:"group"`
	Name        string        `json:"name,omitempty" msgpack:"name,omitempty"`
	Avatar      string        `json:"avatar,omitempty" msgpack:"avatar,omitempty"`
	Notice      string        `json:"notice,omitempty" msgpack:"notice,omitempty"`
	Fanout      string        `json:"fanout" msgpack:"fanout"`
	ReadFrom    int64         `json:"read_from,omitempty" msgpack:"read_from,omitempty"`
	LastSeq     int64         `json:"last_seq" msgpack:"last_seq"`
	MemberCount int           `json:"member_count" msgpack:"member_count"`
	Members     []GroupMember `json:"members" msgpack:"members"`
}
