package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A word list or webhook setting that cannot work stops mqimd at start-up
// with one line naming it [IM-18].
func TestModerationStartupErrors(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	three := write("three.txt", "一\n二\n三\n")
	short := write("short-secret", "short")
	secret := write("secret", "a secret of more than sixteen bytes")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--moderation-reject-words", filepath.Join(dir, "missing.txt")}, "missing.txt"},
		{[]string{"--moderation-mask-words", three, "--moderation-max-words", "2"}, "more than 2 words"},
		{[]string{"--moderation-mask-words", write("long.txt", strings.Repeat("长", 65)+"\n")}, "line 1"},
		{[]string{"--moderation-webhook-url", "http://127.0.0.1:1/hook"}, "--moderation-webhook-secret-file"},
		{[]string{"--moderation-webhook-url", "http://127.0.0.1:1/hook", "--moderation-webhook-secret-file", short}, "at least 16 bytes"},
		{[]string{"--moderation-webhook-url", "hook", "--moderation-webhook-secret-file", secret}, "not an http(s) URL"},
	} {
		args := append([]string{"--mqtt-addr", freeAddr(t), "--ws-addr", freeAddr(t), "--http-addr", freeAddr(t)}, c.args...)
		if msg := runFail(t, bin, args...); !strings.Contains(msg, c.want) {
			t.Errorf("mqimd %v: %q, want it to say %q", c.args, msg, c.want)
		}
	}
}
