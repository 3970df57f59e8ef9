package store

// Group errors (ErrNoGroup, ErrForbidden, ErrMuted, ErrBadChange,
// ErrBadMention) are in errors.go, the rules of changes in groupchange.go.

// ConvGroup is the kind of a group conversation [IM-11].
const ConvGroup = "group"

// TypeGroup is the message type of the events the server writes into a
// group's timeline for every change of membership, roles or settings.
const TypeGroup = "group"

// Member roles, highest first.
const (
	RoleOwner  = "owner"
	RoleAdmin  = "admin"
	RoleMember = "member"
)

// KindMention is the inbox event of a member named in the mentions of a
// message of a group that fans out on read [IM-11.6-2]: Msg is the
// message at (Conv, ConvSeq), Actor its sender.
const KindMention = "mention"

// Fan-out models of a group [IM-11.3].
const (
	FanoutWrite = "write" // one inbox row per member per event
	FanoutRead  = "read"  // one timeline row, published on the group topic
)

// DefaultReadFanout is the member count above which a group fans out on
// read when GroupChange.Threshold is zero.
const DefaultReadFanout = 500

// Group change operations [IM-11.4].
const (
	OpCreate   = "create"
	OpAdd      = "add"
	OpRemove   = "remove"
	OpLeave    = "leave"
	OpRole     = "role"
	OpTransfer = "transfer"
	OpMute     = "mute"
	OpUpdate   = "update"
)

// GroupChange is one change of a group, made by Actor. It becomes one
// message of type TypeGroup in the group's timeline.
type GroupChange struct {
	Group string // the group's conversation id ("g:…"); for OpCreate, the id to create
	Actor string
	Op    string
	// Users: OpCreate the members besides Actor, OpAdd the users to add;
	// OpRemove, OpRole, OpTransfer, OpMute exactly one target.
	Users []string
	Role  string // OpRole: RoleAdmin or RoleMember
	Muted bool   // OpMute: mute (true) or unmute
	// OpCreate and OpUpdate: nil leaves a setting as it is.
	Name, Avatar, Notice *string
	ID                   int64 // message id of the event (a snowflake)
	TS                   int64 // unix milliseconds
	// Threshold is the member count above which the group fans out on
	// read; zero means DefaultReadFanout. A group that switched to read
	// fan-out stays there.
	Threshold int
	// Operator says Actor is the server's operator (the admin API,
	// [IM-8.3-9]), not a member: it ranks above the owner and may do what
	// the owner may, but create, leave, or remove or demote the owner
	// (ownership is transferred instead).
	Operator bool
}

// GroupResult is a committed change.
type GroupResult struct {
	Msg Message // the event in the group timeline, Type TypeGroup
	// Events are the inbox rows written for it: every member (and every
	// removed user) while the group fanned out on write before the change,
	// else only the added and removed users.
	Events    []InboxEvent
	Broadcast bool     // Msg must also be published on the group topic
	Removed   []string // users who are no longer members
	Fanout    string   // the group's model after the change
	ReadFrom  int64    // conv seq of the event that switched it to read fan-out
}

// Member is one member of a group.
type Member struct {
	User    string
	Role    string
	Muted   bool
	ReadSeq int64
}

// GroupInfo describes a group.
type GroupInfo struct {
	ID, Name, Avatar, Notice string
	Fanout                   string
	ReadFrom                 int64 // see GroupResult.ReadFrom; 0 while it fans out on write
	LastSeq                  int64
	MemberCount              int
	Members                  []Member // ordered by user id, at most the limit asked for
}
