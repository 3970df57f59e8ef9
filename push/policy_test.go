package push

import (
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/mqim/mqim/store"
)

// TestPolicyAllows: each rule of [IM-17.2] can be switched off alone.
func TestPolicyAllows(t *testing.T) {
	cases := []struct {
		p    Policy
		kind int
		conv string
		want bool
	}{
		{Policy{}, store.PushMessage, "d:alice:bob", true},
		{Policy{NoDirect: true}, store.PushMessage, "d:alice:bob", false},
		{Policy{NoDirect: true}, store.PushMessage, "g:1", true},
		{Policy{}, store.PushMessage, "g:1", true},
		{Policy{NoGroups: true}, store.PushMessage, "g:1", false},
		{Policy{}, store.PushMention, "g:1", true},
		{Policy{NoMentions: true}, store.PushMention, "g:1", false},
		{Policy{}, store.PushEveryone, "g:1", true},
		{Policy{NoEveryone: true}, store.PushEveryone, "g:1", false},
		{Policy{NoDirect: true, NoGroups: true}, store.PushSystem, "d:alice:ci", true},
		{Policy{}, 99, "d:alice:bob", false},
	}
	for i, c := range cases {
		if got := c.p.allows(c.kind, c.conv); got != c.want {
			t.Errorf("case %d (%+v kind %d %s): %v", i, c.p, c.kind, c.conv, got)
		}
	}
}

// TestPolicyAlert: the text of a notification [IM-17.3-1].
func TestPolicyAlert(t *testing.T) {
	body, _ := msgpack.Marshal(map[string]any{"text": "hi " + strings.Repeat("é", 200)})
	m := &store.Message{Type: "text", Body: body}
	p := Policy{}
	if title, b := p.alert("alice", m, 1, 0); title != "alice" || !strings.HasPrefix(b, "hi é") || len(b) > maxAlert+len("…") || !strings.HasSuffix(b, "…") {
		t.Fatalf("alert %q %q", title, b)
	}
	img, _ := msgpack.Marshal(map[string]any{"url": "x"})
	if _, b := p.alert("alice", &store.Message{Type: "image", Body: img}, 1, 0); b != "[image]" {
		t.Fatalf("image alert %q", b)
	}
	hidden := Policy{HideBodies: true}
	if _, b := hidden.alert("alice", m, 1, 0); b != "New message" {
		t.Fatalf("hidden %q", b)
	}
	if _, b := hidden.alert("alice", m, 5, 0); b != "5 new messages" {
		t.Fatalf("hidden, 5 unread: %q", b)
	}
	if _, b := p.alert("ci", m, 1, 3); b != "3 new notifications" {
		t.Fatalf("folded %q", b)
	}
}
