package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqim/mqim/internal/testnode"
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/protocol/authtoken"
	"github.com/mqim/mqim/server"
)

const cliSecret = "cli-test-secret"

// cliTimeout bounds each command; a passing test never waits for it.
const cliTimeout = 60 * time.Second

// buildCLI builds the mqim binary into a temporary directory.
func buildCLI(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "mqim")
	// mqim-bare beside it: the reference of mqim bench --ref bare.
	out, err := exec.Command("go", "build", "-o", dir, ".", "../mqim-bare").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// command prepares the binary with args and an environment without MQIM_*
// variables.
func command(ctx context.Context, bin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MQIM_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	return cmd
}

type result struct {
	stdout, stderr string
	code           int
}

// mqim runs the binary to completion.
func mqim(t *testing.T, bin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := command(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("mqim %v: %v", args, err)
	}
	return r
}

// startNode starts a node for the CLI to talk to, on the default store a
// user gets, SQLite: these tests are about the CLI; test/e2e runs the
// server's scenarios on both stores.
func startNode(t *testing.T, opts ...func(*server.Config)) *testnode.Node {
	t.Helper()
	return testnode.Start(t, testnode.NewDB(t, testnode.SQLite), []byte(cliSecret),
		slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})), opts...)
}

func TestCLIChat(t *testing.T) {
	bin := buildCLI(t)
	n := startNode(t)
	srv := "mqtt://" + n.MQTTAddr()
	bobArgs := []string{"--server", srv, "--user", "bob", "--secret", cliSecret}

	// bob listens (global flags after the command) for two events.
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	listen, listenOut := startListen(t, ctx, bin, append([]string{"listen", "--count", "2", "--timeout", "60s", "--json"}, bobArgs...)...)

	// alice sends: global flags after and before the command; a token from
	// the environment-free --token flag the second time.
	r := mqim(t, bin, "send", "--server", srv, "--user", "alice", "--secret", cliSecret, "--to", "bob", "hi", "bob")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "sent id=") || !strings.Contains(r.stdout, "conv=d:alice:bob seq=1") {
		t.Fatalf("send: %+v", r)
	}
	tok, err := authtoken.Mint([]byte(cliSecret), "alice", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	r = mqim(t, bin, "--server", srv, "--user", "alice", "--token", tok, "--json", "send", "--to", "bob", "second")
	var sent struct {
		ID, Conv, Cmid string
		Seq            int64
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &sent) != nil || sent.Seq != 2 || sent.ID == "" || len(sent.Cmid) != 26 {
		t.Fatalf("send --json: %+v", r)
	}

	if err := listen.Wait(); err != nil {
		t.Fatalf("listen: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(listenOut.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("listen printed %q", listenOut.String())
	}
	for i, want := range []string{"hi bob", "second"} {
		var ev protocol.Event
		if err := json.Unmarshal([]byte(lines[i]), &ev); err != nil || ev.Kind != "message" || ev.Seq != int64(i+1) || ev.Msg.Body["text"] != want {
			t.Fatalf("event %d: %s (%v)", i, lines[i], err)
		}
	}
	if lines[1] != "" && !strings.Contains(lines[1], `"id":"`+sent.ID+`"`) {
		t.Fatalf("message id not a decimal string in JSON: %s", lines[1])
	}

	// sync, history and conversations, as bob.
	r = mqim(t, bin, append([]string{"sync", "--since", "1"}, bobArgs...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "[2] d:alice:bob #2 ") || !strings.Contains(r.stdout, "alice: second") ||
		strings.Contains(r.stdout, "hi bob") || !strings.Contains(r.stdout, "latest seq 2") {
		t.Fatalf("sync: %+v", r)
	}
	r = mqim(t, bin, append([]string{"sync", "--json"}, bobArgs...)...)
	if r.code != 0 || strings.Count(r.stdout, "\n") != 2 {
		t.Fatalf("sync --json: %+v", r)
	}
	r = mqim(t, bin, append([]string{"history", "--with", "alice"}, bobArgs...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "#1 ") || !strings.Contains(r.stdout, "alice: hi bob") || !strings.Contains(r.stdout, "#2 ") {
		t.Fatalf("history: %+v", r)
	}
	r = mqim(t, bin, append([]string{"conversations"}, bobArgs...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "d:alice:bob  alice  2 unread  last #2") || !strings.Contains(r.stdout, "2 unread\n") {
		t.Fatalf("conversations: %+v", r)
	}
	secretFile := filepath.Join(t.TempDir(), "jwt-secret")
	if err := os.WriteFile(secretFile, []byte(cliSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = mqim(t, bin, "--server", srv, "--user", "bob", "--secret-file", secretFile, "conversations", "--json")
	var cv protocol.Conversation
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &cv) != nil || cv.Peer != "alice" || cv.Unread != 2 {
		t.Fatalf("conversations --json: %+v", r)
	}

	// listen from a seq prints the stored events first (human format),
	// over WebSocket this time.
	wsArgs := []string{"--server", "ws://" + n.WSAddr() + "/mqtt", "--user", "bob", "--secret", cliSecret}
	r = mqim(t, bin, append([]string{"listen", "--since", "0", "--count", "2", "--timeout", "60s"}, wsArgs...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "[1] d:alice:bob #1 ") || !strings.Contains(r.stdout, "alice: hi bob\n[2] d:alice:bob #2 ") {
		t.Fatalf("listen --since 0: %+v", r)
	}

	// Failures: one clear line on stderr, non-zero status.
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown user", []string{"send", "--to", "carol", "hi"}, 1, "unknown_user"},
		{"not a group id", []string{"send", "--group", "g1", "hi"}, 1, "bad_request"},
		{"unknown group", []string{"send", "--group", "g:1", "hi"}, 1, "unknown_group"},
		{"both to and group", []string{"send", "--group", "g:1", "--to", "bob", "hi"}, 2, "--group"},
		{"no recipient", []string{"send", "hi"}, 2, "--to"},
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
		{"listen timeout", []string{"listen", "--count", "1", "--timeout", "1s"}, 3, "0 of 1 events"},
		{"not a member", []string{"history", "--conv", "d:carol:dave"}, 1, "not_member"},
	} {
		r := mqim(t, bin, append(tc.args, "--server", srv, "--user", "alice", "--secret", cliSecret)...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 1 {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and %q", tc.name, r.code, r.stderr, tc.code, tc.want)
		}
	}
	r = mqim(t, bin, "send", "--server", srv, "--user", "alice", "--token", "garbage", "--to", "bob", "hi")
	if r.code != 1 || !strings.Contains(r.stderr, "refused the token") {
		t.Errorf("bad token: %+v", r)
	}
	r = mqim(t, bin, "conversations", "--server", srv, "--user", "alice", "--secret", "wrong-secret")
	if r.code != 1 || !strings.Contains(r.stderr, "refused the token") {
		t.Errorf("wrong secret: %+v", r)
	}
	// A port nothing listens on (the node's HTTP port speaks no MQTT; use a
	// closed one).
	closed := closedPort(t)
	r = mqim(t, bin, "send", "--server", "mqtt://"+closed, "--user", "alice", "--secret", cliSecret, "--connect-timeout", "1s", "--to", "bob", "hi")
	if r.code != 1 || !strings.Contains(r.stderr, "is mqimd running") || !strings.Contains(r.stderr, "refused") {
		t.Errorf("unreachable server: %+v", r)
	}
	r = mqim(t, bin, "send", "--to", "bob", "hi", "--user", "alice")
	if r.code != 2 || !strings.Contains(r.stderr, "--token") {
		t.Errorf("no token: %+v", r)
	}

	// listen without --count ends cleanly on SIGINT.
	l, _ := startListen(t, ctx, bin, append([]string{"listen"}, bobArgs...)...)
	if err := l.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := l.Wait(); err != nil {
		t.Errorf("interrupted listen: %v", err)
	}
}

// startListen starts mqim listen and waits until it says it is listening.
func startListen(t *testing.T, ctx context.Context, bin string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	listen := command(ctx, bin, args...)
	var out bytes.Buffer
	stderr := &readyWriter{ready: make(chan struct{})}
	listen.Stdout, listen.Stderr = &out, stderr
	if err := listen.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stderr.ready:
	case <-time.After(cliTimeout): // also when it exited early: its stderr says why
		t.Fatalf("listen did not get ready; stderr: %s", stderr.String())
	}
	return listen, &out
}

// readyWriter collects stderr and closes ready on "listening as".
type readyWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	ready chan struct{}
	done  bool
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.done && strings.Contains(w.buf.String(), "listening as ") {
		w.done = true
		close(w.ready)
	}
	return len(p), nil
}

func (w *readyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestCLIGroups: mqim group create|add|remove|info, send --group and
// history --group against a node [IM-11].
func TestCLIGroups(t *testing.T) {
	bin := buildCLI(t)
	// Groups above 3 members fan out on read: adding dave switches it.
	n := startNode(t, func(c *server.Config) { c.GroupReadFanout = 3 })
	srv := "mqtt://" + n.MQTTAddr()
	as := func(user string, args ...string) result {
		t.Helper()
		return mqim(t, bin, append(args, "--server", srv, "--user", user, "--secret", cliSecret)...)
	}
	for _, u := range []string{"bob", "carol", "dave"} {
		if r := as(u, "conversations"); r.code != 0 { // connecting creates the user
			t.Fatalf("%s: %+v", u, r)
		}
	}
	r := as("alice", "group", "create", "--name", "team", "--members", "bob,carol")
	gid := strings.TrimSpace(r.stdout)
	if r.code != 0 || !protocol.IsGroupConv(gid) {
		t.Fatalf("group create: %+v", r)
	}
	if r = as("alice", "send", "--group", gid, "hello", "team"); r.code != 0 || !strings.Contains(r.stdout, "conv="+gid+" seq=2") {
		t.Fatalf("send --group: %+v", r)
	}
	if r = as("bob", "send", "--group", gid, "--mentions", "alice", "hi", "alice"); r.code != 0 {
		t.Fatalf("send --group --mentions: %+v", r)
	}
	r = as("carol", "history", "--group", gid)
	if r.code != 0 || !strings.Contains(r.stdout, "alice: hello team") || !strings.Contains(r.stdout, "bob: hi alice") {
		t.Fatalf("history --group: %+v", r)
	}
	if r = as("carol", "conversations"); r.code != 0 || !strings.Contains(r.stdout, gid+`  group "team"  3 unread`) {
		t.Fatalf("conversations: %+v", r)
	}
	if r = as("bob", "group", "add", gid, "dave"); r.code != 1 || !strings.Contains(r.stderr, "forbidden") {
		t.Fatalf("group add by a member: %+v", r)
	}
	if r = as("alice", "group", "add", gid, "dave"); r.code != 0 || !strings.Contains(r.stdout, "event #4") {
		t.Fatalf("group add: %+v", r)
	}
	if r = as("alice", "group", "remove", gid, "carol"); r.code != 0 {
		t.Fatalf("group remove: %+v", r)
	}
	if r = as("carol", "history", "--group", gid); r.code != 1 || !strings.Contains(r.stderr, "not_member") {
		t.Fatalf("history after removal: %+v", r)
	}
	if r = as("dave", "group", "info", gid); r.code != 0 || !strings.Contains(r.stdout, "3 members") || !strings.Contains(r.stdout, "alice owner") {
		t.Fatalf("group info: %+v", r)
	}
	if r = as("dave", "group", "add", gid); r.code != 2 {
		t.Fatalf("group add without a user: %+v", r)
	}

	// listen --group follows the group topic: events after --group-after
	// come from history, later ones live.
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	listen, out := startListen(t, ctx, bin, "listen", "--group", gid, "--group-after", "4", "--count", "2", "--timeout", "60s",
		"--server", srv, "--user", "dave", "--secret", cliSecret)
	if r = as("bob", "send", "--group", gid, "read", "fan-out"); r.code != 0 || !strings.Contains(r.stdout, "seq=6") {
		t.Fatalf("send to the read-fan-out group: %+v", r)
	}
	if err := listen.Wait(); err != nil {
		t.Fatalf("listen --group: %v (%s)", err, out)
	}
	if s := out.String(); !strings.Contains(s, "[group] "+gid+" #5 ") || !strings.Contains(s, "[group] "+gid+" #6 ") ||
		!strings.Contains(s, "bob: read fan-out") {
		t.Fatalf("listen --group printed %q", s)
	}
	if r = as("carol", "listen", "--group", gid, "--count", "1", "--timeout", "5s"); r.code != 1 || !strings.Contains(r.stderr, "not_member") {
		t.Fatalf("listen --group by a removed member: %+v", r)
	}
}

// The chat CLI and the SDK speak the protocol only: they mint tokens with
// protocol/authtoken and do not link the MQTT server (issue 11; the bare
// broker of bench --ref bare is the separate command mqim-bare).
func TestCLILinksNoBroker(t *testing.T) {
	for _, pkg := range []string{".", "../../clients/sdk"} {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, "github.com/mochi-mqtt/") || dep == "github.com/mqim/mqim/mqtt" || strings.HasPrefix(dep, "github.com/mqim/mqim/im") ||
				strings.HasPrefix(dep, "github.com/mqim/mqim/server") || strings.HasPrefix(dep, "github.com/nats-io/nats-server") {
				t.Errorf("%s links %s", pkg, dep)
			}
		}
	}
}
