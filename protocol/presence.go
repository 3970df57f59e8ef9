package protocol

import "strings"

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
