package protocol

import "strings"

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
