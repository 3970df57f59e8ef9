// Package store defines what mqim keeps and the contract every store
// implementation meets: the Store interface, its types and its errors.
// pgstore implements it on PostgreSQL, sqlitestore on an embedded SQLite
// file; storetest is the conformance suite any implementation must pass.
//
// Sequences [IM-3.3]: every conversation has a continuous seq (1, 2, 3, …) and
// every user a continuous inbox seq. Both are assigned inside the transaction
// that stores the event, so a failed transaction assigns nothing, and a seq is
// never handed out twice or skipped.
//
// The rules are the same in every implementation, so they are here, as pure
// functions the implementations call between their reads and their writes:
// sends.go (DecideSends, RefuseDirect, RefuseGroup, numbering),
// groupchange.go (PlanGroupChange), edits.go (RecallChange, EditChange,
// MessageChange.Event),
// reads.go (MoveRead, pages), kinds.go (the stored inbox kind codes). A
// rule's refusal is an *Error naming a sentinel of errors.go;
// ProtocolError maps it to the protocol error a client gets.
//
// Implementations are safe for concurrent use.
package store

import "context"

// Event kinds stored in the inbox.
const (
	KindMessage = "message"
	KindRead    = "read"
)

// Conversation kinds.
const (
	ConvDirect = "direct"
)

// SendRequest is one message to store. Body is the canonical MessagePack
// encoding of the message body; Digest identifies (To, Type, Body) so that a
// cmid reused for a different message is told apart from a retry.
type SendRequest struct {
	ID    int64 // message id to use if the message is new (a snowflake)
	From  string
	Cmid  string
	To    string // recipient user of a direct message; empty for a group
	Group string // the group conversation of a group message (AppendGroup)
	// Mentions are the mentioned members of a group message; "*" means
	// everyone [IM-11.6].
	Mentions []string
	Type     string
	Body     []byte
	Digest   []byte
	TS       int64 // unix milliseconds, used if the message is new
	// Blocked says the recipient blocks the sender [IM-13.2]: a new message
	// fails with ErrBlocked, while a retry of a stored one is still
	// answered as a Duplicate.
	Blocked bool
	// System marks a bridge's system notification [IM-4.6]: to a group
	// (AppendGroup), From need not be a member, and mute does not apply.
	System bool
}

// Message is a stored message.
type Message struct {
	ID   int64
	Conv string
	Seq  int64
	From string
	Cmid string
	Type string
	Body []byte
	TS   int64 // unix milliseconds
	// Mentions of a group message ("*" = everyone); nil otherwise.
	Mentions []string
	// ReadBy is, for group messages returned by History, how many members
	// other than the sender have read up to it.
	ReadBy int64
}

// InboxEvent is one row of a user's inbox timeline. For KindMessage, Msg is
// the message at (Conv, ConvSeq). For KindRead, Actor has read Conv up to
// ConvSeq.
type InboxEvent struct {
	User     string
	Seq      int64
	Kind     string
	Conv     string
	ConvSeq  int64
	Actor    string
	TS       int64
	Msg      *Message
	Settings *Settings // KindSettings (settings.go)
}

// SendResult is the outcome of one SendRequest. If Err is nil, Msg is the
// stored message; Duplicate says it was stored by an earlier request with the
// same (From, Cmid), in which case Events is empty. Otherwise Events are the
// inbox events this request created: one per recipient and one for the
// sender, in no particular order (in a group that fans out on read: see
// Broadcast).
type SendResult struct {
	Msg       Message
	Duplicate bool
	Events    []InboxEvent
	// Broadcast says Msg must be published on its group's topic: the
	// group fans out on read, and Events holds only the KindMention
	// events of the members it names [IM-11.3], [IM-11.6-2].
	Broadcast bool
	Err       error // a refusal (*Error: ErrUnknownUser, ErrCmidConflict, …); nothing stored
}

// ReadState is a member's read position in a conversation.
type ReadState struct {
	Conv    string
	ReadSeq int64
	Unread  int64
}

// SyncPage is a page of a user's inbox.
type SyncPage struct {
	Events  []InboxEvent // ascending by Seq, with no gap
	HasMore bool
	Latest  int64 // the user's latest inbox seq
}

// HistoryQuery selects a page of a conversation. Before and After are
// exclusive bounds; 0 means none. With neither, the newest page is returned.
// With After, the oldest messages after it are returned.
type HistoryQuery struct {
	Before int64
	After  int64
	Limit  int
	// ReadBy asks for Message.ReadBy in a group: it reads every member's
	// read position, so it is opt-in.
	ReadBy bool
}

// HistoryPage is a page of a conversation, ascending by Seq. HasMore says
// more messages exist in the direction of paging (older for Before or
// neither, newer for After).
type HistoryPage struct {
	Messages []Message
	HasMore  bool
}

// Conversation is a user's view of one conversation.
type Conversation struct {
	Conv        string
	Kind        string
	Peer        string // the other user of a direct conversation
	Name        string // a group's name
	LastSeq     int64
	ReadSeq     int64
	PeerReadSeq int64
	Unread      int64
	Last        *Message // nil if the conversation has no message
}

// Store is what the server needs from storage.
type Store interface {
	ContactStore  // contacts.go
	ExtStore      // edits.go
	SettingsStore // settings.go
	AccountStore  // account.go
	PushStore     // push.go

	// EnsureUser creates the user if missing and records the device (if not
	// empty) as seen now. It is idempotent. A deleted user is not created
	// again: ErrUserDeleted.
	EnsureUser(ctx context.Context, user, device string) error
	// UserExists reports whether the user exists (a deleted user does not).
	UserExists(ctx context.Context, user string) (bool, error)
	// Stored reports whether a message of from with cmid is stored: the
	// policy stage lets such a send through to Append, which answers it as
	// a retry or a conflict [IM-4.5], whatever the policy says now.
	Stored(ctx context.Context, from, cmid string) (bool, error)

	// Append stores a batch of messages in one transaction (group commit) and
	// returns one result per request, in order. A retry of a stored (From,
	// Cmid) with the same Digest returns the stored message as a Duplicate;
	// with another Digest it fails with ErrCmidConflict. Two requests of one
	// batch with the same (From, Cmid) are treated as a message and its retry
	// (or a conflict), as if the first were stored (DecideSends).
	// Sending to a conversation also marks it read by the sender up to the
	// new message. An error return means nothing of the batch was stored.
	Append(ctx context.Context, batch []SendRequest) ([]SendResult, error)

	// MarkRead moves user's read position in conv forward to seq (clamped to
	// the conversation's last seq). If it moved, a KindRead event is added to
	// the inbox of every member (the reader's other devices and the peers)
	// and returned. Moving backwards changes nothing and returns no event.
	// It fails with ErrNotMember if user is not a member of conv.
	MarkRead(ctx context.Context, user, conv string, seq int64) (ReadState, []InboxEvent, error)

	// Sync returns up to limit inbox events of user with Seq > after.
	Sync(ctx context.Context, user string, after int64, limit int) (SyncPage, error)
	// History returns a page of conv; ErrNotMember if user is not a member.
	History(ctx context.Context, user, conv string, q HistoryQuery) (HistoryPage, error)
	// Conversations returns up to limit conversations of user, the one with
	// the most recent message first.
	Conversations(ctx context.Context, user string, limit int) ([]Conversation, error)

	// EnsureUsers creates the users that are missing, in bulk.
	EnsureUsers(ctx context.Context, users []string) error

	// ChangeGroup creates or changes a group and stores the change as an
	// event of type TypeGroup in its timeline. It fails, storing nothing,
	// with ErrNoGroup, ErrNotMember (the actor), ErrForbidden,
	// ErrUnknownUser or ErrBadChange (wrapped).
	ChangeGroup(ctx context.Context, c GroupChange) (GroupResult, error)
	// AppendGroup stores a batch of group messages (SendRequest.Group set)
	// in one transaction, with Append's cmid semantics. Per item it fails
	// with ErrNoGroup, ErrNotMember, ErrMuted, ErrBadMention or
	// ErrCmidConflict; a System request is not refused for its sender's
	// membership or mute, and a sender who is not a member gets no inbox
	// row. MarkRead, History and Conversations serve groups too;
	// MarkRead in a group adds the read event to the reader's inbox only.
	AppendGroup(ctx context.Context, batch []SendRequest) ([]SendResult, error)
	// Group describes a group to one of its members, with at most
	// memberLimit members listed; ErrNoGroup or ErrNotMember. An empty
	// user is the operator [IM-8.3-9], to whom every group is described.
	Group(ctx context.Context, user, group string, memberLimit int) (GroupInfo, error)
	// IsMember reports whether user is a member of conv.
	IsMember(ctx context.Context, conv, user string) (bool, error)

	Close()
}
