package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestCLIFeatures runs the commands of spec §12–§15 against a node:
// contact, send --file, recall, presence.
func TestCLIFeatures(t *testing.T) {
	bin := buildCLI(t)
	n := startNode(t)
	as := func(user string, args ...string) result {
		t.Helper()
		return mqim(t, bin, append(args, "--server", "mqtt://"+n.MQTTAddr(), "--user", user, "--secret", cliSecret)...)
	}
	// Users exist once connected.
	for _, u := range []string{"alice", "bob", "carol"} {
		if r := as(u, "conversations"); r.code != 0 {
			t.Fatalf("%s: %+v", u, r)
		}
	}

	// Blocking.
	if r := as("bob", "contact", "block", "alice"); r.code != 0 || r.stdout != "alice blocked\n" {
		t.Fatalf("contact block: %+v", r)
	}
	if r := as("alice", "send", "--to", "bob", "hello?"); r.code == 0 || !strings.Contains(r.stderr, "blocked") {
		t.Fatalf("send to a user who blocked alice: %+v", r)
	}
	if r := as("bob", "contact", "unblock", "alice"); r.code != 0 || r.stdout != "alice none\n" {
		t.Fatalf("contact unblock: %+v", r)
	}
	if r := as("bob", "contact", "add", "alice"); r.code != 0 || r.stdout != "alice contact\n" {
		t.Fatalf("contact add: %+v", r)
	}
	if r := as("bob", "contact", "list"); r.code != 0 || r.stdout != "alice contact\n" {
		t.Fatalf("contact list: %+v", r)
	}
	if r := as("bob", "contact", "add", "nobody"); r.code != 1 || !strings.Contains(r.stderr, "unknown_user") {
		t.Fatalf("contact add nobody: %+v", r)
	}
	if r := as("bob", "contact", "befriend", "alice"); r.code != 2 {
		t.Fatalf("contact befriend: %+v", r)
	}

	// send --file: uploaded, then sent as an image.
	png := filepath.Join(t.TempDir(), "cat.png")
	if err := os.WriteFile(png, append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 100)...), 0o600); err != nil {
		t.Fatal(err)
	}
	r := as("alice", "send", "--file", png, "--http", "http://"+n.HTTPAddr(), "--to", "bob", "my", "cat")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "sent id=") {
		t.Fatalf("send --file: %+v", r)
	}
	id := regexp.MustCompile(`id=(\d+)`).FindStringSubmatch(r.stdout)[1]
	r = as("bob", "history", "--with", "alice", "--json")
	var m struct {
		Type string         `json:"type"`
		Body map[string]any `json:"body"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &m); err != nil || m.Type != "image" ||
		m.Body["mime"] != "image/png" || m.Body["name"] != "cat.png" || m.Body["caption"] != "my cat" ||
		!strings.HasPrefix(m.Body["url"].(string), "http://"+n.HTTPAddr()+"/v1/media/") {
		t.Fatalf("history after send --file: %v %+v (%s)", err, m, r.stdout)
	}
	if r := as("alice", "send", "--file", filepath.Join(t.TempDir(), "missing.png"), "--to", "bob"); r.code != 1 {
		t.Fatalf("send --file of a missing file: %+v", r)
	}

	// recall: only the sender.
	if r := as("bob", "recall", id); r.code != 1 || !strings.Contains(r.stderr, "not_allowed") {
		t.Fatalf("recall by bob: %+v", r)
	}
	if r := as("alice", "recall", id); r.code != 0 || !strings.HasPrefix(r.stdout, "recalled id="+id) {
		t.Fatalf("recall: %+v", r)
	}
	if r := as("alice", "recall", "x"); r.code != 2 {
		t.Fatalf("recall x: %+v", r)
	}

	// presence: bob shares with alice (his contact), carol does not.
	if r := as("alice", "presence", "bob"); r.code != 0 || !regexp.MustCompile(`^bob offline \(last seen 20\d\d-.*Z\)\n$`).MatchString(r.stdout) {
		t.Fatalf("presence bob: %+v", r)
	}
	if r := as("alice", "presence", "alice", "carol"); r.code != 1 || !strings.HasPrefix(r.stdout, "alice online\ncarol unknown (not_allowed") {
		t.Fatalf("presence alice carol: %+v", r)
	}
}
