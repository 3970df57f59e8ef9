package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mqim/mqim/protocol/authtoken"
)

// TestCLIUsersReadTypingDownload runs the commands of issue 13 against a
// node: user create (admin), read, typing, download; the human lines of
// group, image, recall, system, typing and read events; --user from the
// token; one "mqim:" per error line; a refused connection failing at once.
func TestCLIUsersReadTypingDownload(t *testing.T) {
	bin := buildCLI(t)
	n := startNode(t)
	srv := "mqtt://" + n.MQTTAddr()
	httpAPI := "http://" + n.HTTPAddr()
	as := func(user string, args ...string) result {
		t.Helper()
		return mqim(t, bin, append(args, "--server", srv, "--user", user, "--secret", cliSecret)...)
	}

	// The README's group example: members who never connected exist once
	// an admin creates them.
	r := mqim(t, bin, "user", "create", "--server", srv, "--secret", cliSecret, "--http", httpAPI, "carol", "dave")
	if r.code != 0 || r.stdout != "carol created\ndave created\n" {
		t.Fatalf("user create: %+v", r)
	}
	if r = mqim(t, bin, "user", "create", "--server", srv, "--secret", cliSecret, "--http", httpAPI, "carol", "--json"); r.code != 0 || r.stdout != `{"id":"carol","created":false}`+"\n" {
		t.Fatalf("user create of an existing user: %+v", r)
	}
	if r = as("alice", "user", "create", "--http", httpAPI, "--token", mint(t, "alice", ""), "erin"); r.code != 1 || !strings.Contains(r.stderr, "not_authorized") || !strings.Contains(r.stderr, "--role admin") {
		t.Fatalf("user create with a user token: %+v", r)
	}
	if r = as("alice", "group", "create", "--name", "team", "--members", "erin"); r.code != 1 || !strings.Contains(r.stderr, `no user "erin"`) {
		t.Fatalf("group with a user that does not exist: %+v", r)
	}
	// Every error line carries one "mqim:" only.
	if strings.Count(r.stderr, "mqim:") != 1 || !strings.HasPrefix(r.stderr, "mqim: group create: unknown_user: ") {
		t.Errorf("error line: %q", r.stderr)
	}

	// bob listens, human lines, for the events below.
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	listen, out := startListen(t, ctx, bin, "listen", "--count", "6", "--timeout", "60s", "--server", srv, "--user", "bob", "--secret", cliSecret)

	r = as("alice", "group", "create", "--name", "team", "--members", "bob,carol,dave")
	gid := strings.TrimSpace(r.stdout)
	if r.code != 0 {
		t.Fatalf("group create with created users: %+v", r)
	}
	// An image, downloaded by bob.
	content := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 100)...)
	png := filepath.Join(t.TempDir(), "cat.png")
	if err := os.WriteFile(png, content, 0o600); err != nil {
		t.Fatal(err)
	}
	// --user from the token when omitted.
	r = mqim(t, bin, "send", "--server", srv, "--token", mint(t, "alice", ""), "--http", httpAPI, "--to", "bob", "--file", png, "my", "cat")
	if r.code != 0 {
		t.Fatalf("send --file with --token only: %+v", r)
	}
	id := regexp.MustCompile(`id=(\d+)`).FindStringSubmatch(r.stdout)[1]
	r = as("bob", "history", "--with", "alice", "--json")
	var m struct{ Body map[string]any }
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &m); err != nil {
		t.Fatalf("history: %v %+v", err, r)
	}
	url, _ := m.Body["url"].(string)
	saved := filepath.Join(t.TempDir(), "got.png")
	if r = as("bob", "download", "--http", httpAPI, url, "-o", saved); r.code != 0 || !strings.HasPrefix(r.stdout, "saved "+saved+" (108 B, image/png)") {
		t.Fatalf("download: %+v", r)
	}
	if b, err := os.ReadFile(saved); err != nil || !bytes.Equal(b, content) {
		t.Fatalf("downloaded file: %v, %d bytes", err, len(b))
	}
	mediaID := url[strings.LastIndex(url, "/")+1:]
	if r = as("bob", "download", "--http", httpAPI, mediaID, "-o", "-"); r.code != 0 || r.stdout != string(content) {
		t.Fatalf("download -o - by media id: exit %d, %d bytes, %s", r.code, len(r.stdout), r.stderr)
	}
	if r = as("bob", "download", "--http", httpAPI, url, "-o", saved); r.code != 1 || !strings.Contains(r.stderr, "exists") {
		t.Fatalf("download over an existing file: %+v", r)
	}
	if r = as("bob", "download", "--http", httpAPI, "http://elsewhere.example/v1/media/"+mediaID); r.code != 2 || !strings.Contains(r.stderr, "not sent elsewhere") {
		t.Fatalf("download from another host: %+v", r)
	}
	if r = as("bob", "download", "--http", httpAPI, "nosuchmedia", "-o", "-"); r.code != 1 || !strings.Contains(r.stderr, "HTTP 404: not_found") {
		t.Fatalf("download of nothing: %+v", r)
	}
	if r = as("alice", "recall", id); r.code != 0 {
		t.Fatalf("recall: %+v", r)
	}
	// A system notification from a bridge.
	req, _ := http.NewRequest("POST", httpAPI+"/v1/notifications", strings.NewReader(`{"to":"bob","cmid":"b-1","body":{"text":"build 42 passed"}}`))
	req.Header.Set("Authorization", "Bearer "+mint(t, "ci.bot", authtoken.RoleBridge))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("notification: %v %v", err, resp)
	}
	resp.Body.Close()
	if r = as("alice", "typing", "bob"); r.code != 0 || r.stdout != "told bob: typing\n" {
		t.Fatalf("typing: %+v", r)
	}
	if r = as("bob", "read", "--with", "alice"); r.code != 0 || r.stdout != "d:alice:bob read up to #1, 0 unread\n" {
		t.Fatalf("read: %+v", r)
	}
	if err := listen.Wait(); err != nil {
		t.Fatalf("listen: %v\n%s", err, out)
	}
	got := out.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^\[\d+\] ` + gid + ` #1 20\S+ \S+ alice \[group\] created the group "team" with bob, carol, dave$`),
		regexp.MustCompile(`(?m)^\[\d+\] d:alice:bob #1 20\S+ \S+ alice: \[image cat\.png image/png 108 B\] my cat <` + regexp.QuoteMeta(url) + `>$`),
		regexp.MustCompile(`(?m)^\[\d+\] d:alice:bob alice recalled #1 \(id ` + id + `\)$`),
		regexp.MustCompile(`(?m)^\[\d+\] d:bob:ci\.bot #1 20\S+ \S+ ci\.bot: \[system\] build 42 passed$`),
		regexp.MustCompile(`(?m)^d:alice:bob alice is typing$`),
		regexp.MustCompile(`(?m)^\[\d+\] d:alice:bob bob read up to #1$`),
	} {
		if !want.MatchString(got) {
			t.Errorf("listen printed no line matching %s:\n%s", want, got)
		}
	}
	if r = as("bob", "read", "--group", gid, "--seq", "1"); r.code != 0 || r.stdout != gid+" read up to #1, 0 unread\n" {
		t.Fatalf("read --group --seq: %+v", r)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"read"}, 2, "--with"},
		{[]string{"read", "--with", "bob", "--group", gid}, 2, "one of"},
		{[]string{"read", "--conv", "d:carol:dave"}, 1, "not_member"},
		{[]string{"typing"}, 2, "typing"},
		{[]string{"typing", "bob"}, 2, "another user"},
		{[]string{"download"}, 2, "url"},
		{[]string{"user", "delete", "x"}, 2, "user create"},
	} {
		if r := as("bob", tc.args...); r.code != tc.code || !strings.Contains(r.stderr, tc.want) || strings.Count(r.stderr, "mqim:") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, r.code, r.stderr, tc.code, tc.want)
		}
	}

	// A refused connection fails at once, whatever --connect-timeout.
	start := time.Now()
	r = mqim(t, bin, "read", "--with", "alice", "--server", "mqtt://"+closedPort(t), "--user", "bob", "--secret", cliSecret, "--connect-timeout", "50s")
	if d := time.Since(start); r.code != 1 || !strings.Contains(r.stderr, "refused") || !strings.Contains(r.stderr, "is mqimd running") || d > 10*time.Second {
		t.Errorf("refused connection: %+v after %v", r, d)
	}
}

func mint(t *testing.T, user, role string) string {
	t.Helper()
	tok, err := authtoken.Mint([]byte(cliSecret), user, role, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
