package cli

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mqim/mqim/clients/sdk"
	"github.com/mqim/mqim/protocol"
)

// eventLine is the human form of an inbox or group-topic event.
func eventLine(ev sdk.Event) string {
	seq := "[" + strconv.FormatInt(ev.Seq, 10) + "]"
	if ev.Seq == 0 {
		seq = "[group]" // from a group topic: no inbox seq [IM-11.3-4]
	}
	switch ev.Kind {
	case sdk.KindMessage:
		return fmt.Sprintf("%s %s #%d %s", seq, ev.Conv, ev.ConvSeq, formatMessage(ev.Msg))
	case sdk.KindRead:
		return fmt.Sprintf("%s %s %s read up to #%d", seq, ev.Conv, ev.User, ev.ConvSeq)
	case sdk.KindRecall:
		return fmt.Sprintf("%s %s %s recalled #%d%s", seq, ev.Conv, ev.User, ev.ConvSeq, msgID(ev.Msg))
	case sdk.KindEdit:
		return fmt.Sprintf("%s %s %s edited #%d%s: %s", seq, ev.Conv, ev.User, ev.ConvSeq, msgID(ev.Msg), bodyText(ev.Msg))
	case sdk.KindDelete:
		return fmt.Sprintf("%s %s #%d deleted for you%s", seq, ev.Conv, ev.ConvSeq, msgID(ev.Msg))
	case sdk.KindMention:
		return fmt.Sprintf("%s %s #%d %s mentioned you: %s", seq, ev.Conv, ev.ConvSeq, ev.User, formatMessage(ev.Msg))
	case sdk.KindSettings:
		return fmt.Sprintf("%s %s settings: %s", seq, ev.Conv, settingsText(ev.Settings))
	case sdk.KindTyping:
		if ev.State == "paused" {
			return fmt.Sprintf("%s %s stopped typing", ev.Conv, ev.User)
		}
		return fmt.Sprintf("%s %s is typing", ev.Conv, ev.User)
	case sdk.KindError:
		return fmt.Sprintf("error %v (cmid %s)", ev.Error, ev.Cmid)
	case sdk.KindReset:
		return fmt.Sprintf("%s the server no longer has older events: rebuild from 'mqim conversations' and 'mqim history'", seq)
	}
	return fmt.Sprintf("%s %s event", seq, ev.Kind)
}

// formatMessage is the human form of a message: time, sender, and what it
// says, by type [IM-4.3], [IM-11.2-1], [IM-12.1], [IM-14].
func formatMessage(m *sdk.Message) string {
	if m == nil {
		return ""
	}
	ts := time.UnixMilli(m.TS).UTC().Format("2006-01-02 15:04:05")
	return fmt.Sprintf("%s %s%s", ts, m.From, messageText(m))
}

// messageText is what the message says, after its sender: ": text" for
// what the sender wrote, " did something" for what the sender did.
func messageText(m *sdk.Message) string {
	b := m.Body
	switch m.Type {
	case protocol.TypeText:
		if text, ok := b["text"].(string); ok {
			return ": " + text
		}
	case protocol.TypeSystem:
		return ": [system] " + str(b, "text", "")
	case protocol.TypeImage, protocol.TypeVideo, protocol.TypeVoice, protocol.TypeFile:
		return ": " + attachmentText(m.Type, b)
	case protocol.TypeLocation:
		s := fmt.Sprintf(": [location %v,%v]", b["lat"], b["lon"])
		if name := str(b, "name", ""); name != "" {
			s += " " + name
		}
		return s
	case protocol.TypeRecalled:
		return " recalled this message"
	case protocol.TypeGroup:
		return " " + groupChangeText(b)
	case sdk.TypeRecall, sdk.TypeEdit:
		if ch, ok := sdk.ChangeOf(m); ok {
			if ch.Recall {
				return fmt.Sprintf(" recalled #%d (id %d)", ch.ConvSeq, ch.MsgID)
			}
			return fmt.Sprintf(" edited #%d (id %d): %s", ch.ConvSeq, ch.MsgID, bodyText(&sdk.Message{Type: protocol.TypeText, Body: ch.Body}))
		}
	}
	j, _ := json.Marshal(b)
	return fmt.Sprintf(": [%s] %s", m.Type, j)
}

// attachmentText: "[image cat.png, image/png, 1.2 KiB] caption <url>".
func attachmentText(typ string, b map[string]any) string {
	meta := []string{typ}
	if name := str(b, "name", ""); name != "" {
		meta = append(meta, name)
	}
	if mt := str(b, "mime", ""); mt != "" {
		meta = append(meta, mt)
	}
	if size, ok := b["size"]; ok {
		meta = append(meta, byteSize(number(size)))
	}
	s := "[" + strings.Join(meta, " ") + "]"
	if c := str(b, "caption", ""); c != "" {
		s += " " + c
	}
	return s + " <" + str(b, "url", "") + ">"
}

// groupChangeText says what a group event did [IM-11.2-1].
func groupChangeText(b map[string]any) string {
	var users []string
	if us, ok := b["users"].([]any); ok {
		for _, u := range us {
			users = append(users, fmt.Sprint(u))
		}
	}
	who := strings.Join(users, ", ")
	var s string
	switch op := str(b, "op", ""); op {
	case "create":
		s = fmt.Sprintf("created the group %q", str(b, "name", ""))
		if who != "" {
			s += " with " + who
		}
	case "add":
		s = "added " + who
	case "remove":
		s = "removed " + who
	case "leave":
		s = "left the group"
	case "role":
		s = fmt.Sprintf("made %s %s", who, str(b, "role", "member"))
	case "transfer":
		s = "handed the group over to " + who
	case "mute":
		if muted, _ := b["muted"].(bool); muted {
			s = "muted " + who
		} else {
			s = "unmuted " + who
		}
	case "update":
		var set []string
		for _, k := range []string{"name", "avatar", "notice"} {
			if v, ok := b[k]; ok {
				set = append(set, fmt.Sprintf("%s %q", k, fmt.Sprint(v)))
			}
		}
		s = "set the group's " + strings.Join(set, ", ")
	default:
		s = "changed the group (" + op + ")"
	}
	if str(b, "fanout", "") == "read" && b["read_from"] != nil {
		s += fmt.Sprintf(" (the group fans out on read from #%v)", b["read_from"])
	}
	return "[group] " + s
}

func settingsText(s *sdk.ConvSettings) string {
	if s == nil {
		return "changed"
	}
	var on []string
	for _, f := range []struct {
		name string
		on   bool
	}{{"pinned", s.Pinned}, {"muted", s.Muted}, {"archived", s.Archived}} {
		if f.on {
			on = append(on, f.name)
		}
	}
	if s.Draft != "" {
		on = append(on, fmt.Sprintf("draft %q", s.Draft))
	}
	if len(on) == 0 {
		return "none"
	}
	return strings.Join(on, ", ")
}

// bodyText is a message's text, or its body as JSON.
func bodyText(m *sdk.Message) string {
	if m == nil {
		return ""
	}
	if text, ok := m.Body["text"].(string); ok {
		return text
	}
	j, _ := json.Marshal(m.Body)
	return string(j)
}

func msgID(m *sdk.Message) string {
	if m == nil || m.ID == 0 {
		return ""
	}
	return fmt.Sprintf(" (id %d)", m.ID)
}

func str(b map[string]any, key, def string) string {
	if s, ok := b[key].(string); ok {
		return s
	}
	return def
}

// number reads a decoded number of either encoding (JSON: float64;
// MessagePack: an integer type).
func number(v any) float64 {
	f, _ := strconv.ParseFloat(fmt.Sprint(v), 64)
	return f
}

func byteSize(n float64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", n/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", n/(1<<10))
	}
	return fmt.Sprintf("%d B", int64(n))
}
