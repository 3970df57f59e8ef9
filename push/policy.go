package push

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// Policy is who is pushed for what [IM-17.2]. The zero value is the
// default: everything below on, bodies shown, mute honoured.
type Policy struct {
	NoDirect   bool // no push for direct messages
	NoGroups   bool // no push for groups that fan out on write (small groups)
	NoMentions bool // no push for mentions in groups that fan out on read
	NoEveryone bool // no push for "*" by an owner or admin in those groups
	IgnoreMute bool // push muted conversations too
	HideBodies bool // notifications say "New message", never the text
	// SystemInterval folds a bridge's system notifications: the first at
	// once, the rest of the interval into one at its end (5 min).
	SystemInterval time.Duration
}

func (p *Policy) setDefaults() {
	if p.SystemInterval <= 0 {
		p.SystemInterval = 5 * time.Minute
	}
}

// allows says whether a job of kind in conv may notify at all; the
// reason names the rule that says no.
func (p *Policy) allows(kind int, conv string) bool {
	switch kind {
	case store.PushMessage:
		if protocol.IsGroupConv(conv) {
			return !p.NoGroups
		}
		return !p.NoDirect
	case store.PushMention:
		return !p.NoMentions
	case store.PushEveryone:
		return !p.NoEveryone
	case store.PushSystem:
		return true
	}
	return false
}

func kindName(kind int) string {
	switch kind {
	case store.PushMention, store.PushEveryone:
		return "mention"
	case store.PushSystem:
		return "system"
	}
	return "message"
}

// maxAlert bounds the text of a notification (APNs takes 4 KB in all).
const maxAlert = 256

// alert returns a notification's title and body: the sender, and the
// message's text (a placeholder for other types, or when bodies are
// hidden); folded is how many notifications one stands for (0: just this).
func (p *Policy) alert(sender string, m *store.Message, unread int64, folded int) (title, body string) {
	title = sender
	switch {
	case folded > 1:
		return title, fmt.Sprintf("%d new notifications", folded)
	case p.HideBodies || m == nil:
		if unread > 1 {
			return title, fmt.Sprintf("%d new messages", unread)
		}
		return title, "New message"
	}
	var b struct {
		Text string `msgpack:"text"`
	}
	if protocol.Decode(protocol.MsgPack, m.Body, &b) != nil || b.Text == "" {
		return title, "[" + m.Type + "]"
	}
	return title, truncate(b.Text, maxAlert)
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
