package main

import (
	"io"
	"os"
	"strings"
	"testing"

	"github.com/mqim/mqim/protocol/authtoken"
)

func capture(t *testing.T, f func() error) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	err = f()
	w.Close()
	os.Stdout = old
	out, _ := io.ReadAll(r)
	return string(out), err
}

func TestToken(t *testing.T) {
	out, err := capture(t, func() error { return run([]string{"token", "--secret", "s3", "--user", "alice", "--ttl", "1h"}) })
	if err != nil {
		t.Fatal(err)
	}
	c, err := authtoken.Verify([]byte("s3"), strings.TrimSpace(out), "alice")
	if err != nil {
		t.Fatalf("printed token does not verify: %v", err)
	}
	if c.ExpiresAt == nil || c.Role != "" {
		t.Fatalf("claims %+v", c)
	}
	if _, err := authtoken.Verify([]byte("other"), strings.TrimSpace(out), "alice"); err == nil {
		t.Fatal("token verifies with another secret")
	}
	if _, err := authtoken.Verify([]byte("s3"), strings.TrimSpace(out), "bob"); err == nil {
		t.Fatal("token verifies for another user")
	}
	for _, args := range [][]string{{"token", "--user", "alice"}, {"token", "--secret", "s"}, {"token", "--secret", "s", "--user", "a", "--ttl", "-1h"}, {"nope"}} {
		if _, err := capture(t, func() error { return run(args) }); err == nil {
			t.Errorf("mqim %v succeeded, want an error", args)
		}
	}
}
