package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A webhook secret file written with echo is read without its newline; a
// short or missing one is a start-up error naming the flag.
func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	got, err := readSecretFile("push-webhook-secret-file", write("nl", "0123456789abcdef\n"))
	if err != nil || string(got) != "0123456789abcdef" {
		t.Fatalf("secret %q, %v; want it without the newline", got, err)
	}
	for _, p := range []string{write("short", "short secret \n"), filepath.Join(dir, "missing")} {
		if _, err := readSecretFile("push-webhook-secret-file", p); err == nil || !strings.Contains(err.Error(), "--push-webhook-secret-file") {
			t.Errorf("%s: %v; want an error naming the flag", p, err)
		}
	}
}
