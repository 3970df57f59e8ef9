package protocol

import "strings"

// Topic layout [IM-2]. Every topic is built and parsed here only.
const (
	TopicRoot   = "im/v1/"
	userPrefix  = "im/v1/u/"
	sendLeaf    = "send"
	inboxLeaf   = "inbox"
	rpcLeaf     = "rpc"
	replyLeaf   = "reply"
	maxIDLength = 64
)

// SendTopic is where user uid's devices publish messages [IM-2.1-1].
func SendTopic(uid string) string { return userPrefix + uid + "/" + sendLeaf }

// InboxTopic is where the server publishes user uid's events [IM-2.1-2].
func InboxTopic(uid string) string { return userPrefix + uid + "/" + inboxLeaf }

// RPCTopic is where user uid's devices publish requests for method [IM-2.1-3].
func RPCTopic(uid, method string) string { return userPrefix + uid + "/" + rpcLeaf + "/" + method }

// ReplyTopic is the default response topic of a device [IM-2.1-4].
func ReplyTopic(uid, device string) string { return userPrefix + uid + "/" + replyLeaf + "/" + device }

// ReplyPrefix is the prefix every response topic of user uid must have [IM-2.1-4].
func ReplyPrefix(uid string) string { return userPrefix + uid + "/" + replyLeaf + "/" }

// TopicKind says what a topic under im/v1/u/{uid}/ is.
type TopicKind int

// Topic kinds.
const (
	TopicUnknown TopicKind = iota
	TopicSend
	TopicInbox
	TopicRPC
	TopicReply
)

// ParsedTopic is a topic name split into its parts.
type ParsedTopic struct {
	Kind   TopicKind
	User   string
	Method string // TopicRPC: the method; TopicReply: the rest after reply/
}

// ParseTopic splits a topic name (not a filter) under im/v1/u/. Anything it does
// not recognise has Kind TopicUnknown.
func ParseTopic(topic string) ParsedTopic {
	rest, ok := strings.CutPrefix(topic, userPrefix)
	if !ok {
		return ParsedTopic{}
	}
	uid, leaf, ok := strings.Cut(rest, "/")
	if !ok || !ValidID(uid) {
		return ParsedTopic{}
	}
	switch {
	case leaf == sendLeaf:
		return ParsedTopic{Kind: TopicSend, User: uid}
	case leaf == inboxLeaf:
		return ParsedTopic{Kind: TopicInbox, User: uid}
	case strings.HasPrefix(leaf, rpcLeaf+"/"):
		m := leaf[len(rpcLeaf)+1:]
		if m == "" || strings.Contains(m, "/") {
			return ParsedTopic{}
		}
		return ParsedTopic{Kind: TopicRPC, User: uid, Method: m}
	case strings.HasPrefix(leaf, replyLeaf+"/") && len(leaf) > len(replyLeaf)+1:
		return ParsedTopic{Kind: TopicReply, User: uid, Method: leaf[len(replyLeaf)+1:]}
	}
	return ParsedTopic{}
}

// SubscribeAllowed reports whether user uid may subscribe to filter [IM-2.2-2]:
// its own inbox, or filters under its own reply/ prefix.
func SubscribeAllowed(uid, filter string) bool {
	if filter == InboxTopic(uid) {
		return true
	}
	rest, ok := strings.CutPrefix(filter, ReplyPrefix(uid))
	return ok && rest != ""
}

// ValidID reports whether s is a valid user id (and device-safe topic level)
// [IM-3.1-1]: 1 to 64 characters from A-Z a-z 0-9 _ . - @.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > maxIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_', c == '.', c == '-', c == '@':
		default:
			return false
		}
	}
	return true
}

// DirectConv is the id of the direct conversation between two users
// [IM-3.2-1]: "d:" and the two ids in byte order, joined by ":".
func DirectConv(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return "d:" + a + ":" + b
}

// DirectPeers returns the two users of a direct conversation id.
func DirectPeers(conv string) (a, b string, ok bool) {
	rest, ok := strings.CutPrefix(conv, "d:")
	if !ok {
		return "", "", false
	}
	a, b, ok = strings.Cut(rest, ":")
	if !ok || !ValidID(a) || !ValidID(b) || DirectConv(a, b) != conv {
		return "", "", false
	}
	return a, b, true
}

// groupPrefix is the prefix of the group topics [IM-2.1-5].
const groupPrefix = "im/v1/g/"

// GroupConv is the conversation id of the group with topic-safe id gid
// [IM-3.2-3]: "g:" and gid.
func GroupConv(gid string) string { return "g:" + gid }

// GroupID returns the gid of a group conversation id, if conv is one.
func GroupID(conv string) (string, bool) {
	gid, ok := strings.CutPrefix(conv, "g:")
	if !ok || !ValidID(gid) {
		return "", false
	}
	return gid, true
}

// IsGroupConv reports whether conv is a well-formed group conversation id.
func IsGroupConv(conv string) bool {
	_, ok := GroupID(conv)
	return ok
}

// GroupTopic is where the server publishes the events of a group that fans
// out on read [IM-2.1-5]; conv is the group's conversation id.
func GroupTopic(conv string) string {
	gid, _ := strings.CutPrefix(conv, "g:")
	return groupPrefix + gid
}

// GroupOfFilter returns the group conversation whose topic filter is
// exactly filter (no wildcards), if it is one [IM-2.2-4].
func GroupOfFilter(filter string) (string, bool) {
	gid, ok := strings.CutPrefix(filter, groupPrefix)
	if !ok || !ValidID(gid) {
		return "", false
	}
	return GroupConv(gid), true
}
