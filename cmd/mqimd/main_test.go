package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqim/mqim/internal/testpg"
)

// build compiles mqimd once per test binary run.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mqimd")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func runFail(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "MQIM_DATA_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("mqimd %v succeeded, want failure; output:\n%s", args, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	last := lines[len(lines)-1]
	if strings.Contains(string(out), "goroutine ") || strings.Contains(string(out), "panic") {
		t.Fatalf("stack trace in output:\n%s", out)
	}
	return last
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestHelpDocumentsEveryFlag: --help prints every flag, grouped by
// concern, with its environment variable, on stdout, and exits 0.
func TestHelpDocumentsEveryFlag(t *testing.T) {
	bin := build(t)
	cmd := exec.Command(bin, "--help")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	out := string(b)
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("--help: %v, stderr %q", err, stderr.String())
	}
	for _, f := range []string{"--mqtt-addr", "--ws-addr", "--http-addr", "--store", "--data-dir", "--jwt-secret", "--node-id", "--nats", "--nats-listen", "--nats-cluster-addr", "--nats-routes", "--nats-replicas", "--advertise", "--server-reference", "--route-ttl", "--config", "--version", "--log-format", "MQIM_MQTT_ADDR"} {
		if !strings.Contains(out, f) {
			t.Errorf("--help does not mention %s:\n%s", f, out)
		}
	}
	// Sections in order, each flag under its own.
	last := -1
	for _, h := range []string{"\nGeneral:\n", "\nListeners:\n  --admin-addr", "\nStore and local state:\n", "\nCluster:\n", "\nLimits:\n", "\nMedia (attachments):\n  --media-", "\nLogging:\n  --log-format"} {
		i := strings.Index(out, h)
		if i <= last {
			t.Errorf("--help: section %q missing or out of order:\n%s", h, out)
		}
		last = i
	}
	if strings.Contains(out, "\nOther:\n") {
		t.Errorf("--help has flags in no section:\n%s", out[strings.Index(out, "\nOther:\n"):])
	}
	if b, err := exec.Command(bin, "-h").Output(); err != nil || string(b) != out {
		t.Errorf("-h: %v", err)
	}
	if msg := runFail(t, bin, "--no-such-flag"); !strings.Contains(msg, "no-such-flag") || !strings.Contains(msg, "--help") {
		t.Errorf("unknown flag: %q", msg)
	}
}

func TestStartupErrorsAreOneLine(t *testing.T) {
	bin := build(t)
	db := testpg.URL(t)

	if msg := runFail(t, bin, "--store", "postgres://nobody@127.0.0.1:1/none?connect_timeout=2"); !strings.Contains(msg, "postgres") {
		t.Errorf("unreachable database: %q does not say which", msg)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	msg := runFail(t, bin, "--store", db, "--mqtt-addr", taken.Addr().String(), "--ws-addr", freeAddr(t), "--http-addr", freeAddr(t))
	if !strings.Contains(msg, taken.Addr().String()) || !strings.Contains(msg, "MQTT") {
		t.Errorf("taken port: %q does not name the address", msg)
	}
	if msg := runFail(t, bin, "--store", db, "--node-id", "5000"); !strings.Contains(msg, "node id") {
		t.Errorf("bad node id: %q", msg)
	}
	if msg := runFail(t, bin, "--nats-routes", "nats-route://127.0.0.1:1"); !strings.Contains(msg, "--nats-cluster-addr") {
		t.Errorf("routes without a cluster address: %q", msg)
	}
	if msg := runFail(t, bin, "--nats", "nats://127.0.0.1:1", "--nats-listen", "127.0.0.1:0"); !strings.Contains(msg, "embedded") {
		t.Errorf("--nats with an embedded-server flag: %q", msg)
	}
	if msg := runFail(t, bin, "--store", "mysql://x"); !strings.Contains(msg, "postgres://") {
		t.Errorf("unknown store scheme: %q", msg)
	}
}

// TestServesAndDrains runs the real binary: /healthz answers, SIGTERM stops
// it cleanly with exit status 0.
func TestServesAndDrains(t *testing.T) {
	bin := build(t)
	httpAddr := freeAddr(t)
	cmd := exec.Command(bin, "--store", testpg.URL(t), "--mqtt-addr", freeAddr(t), "--ws-addr", freeAddr(t),
		"--http-addr", httpAddr, "--jwt-secret", "s")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	serving := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "mqimd serving") {
				close(serving)
			}
		}
	}()
	select {
	case <-serving:
	case <-time.After(60 * time.Second):
		t.Fatal("mqimd did not report serving")
	}
	resp, err := http.Get("http://" + httpAddr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/healthz = %d", resp.StatusCode)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

// TestDefaultsNeedNoSetup runs mqimd with no store and no NATS flag: it
// serves from the embedded store and NATS in its data directory and says so,
// with where to connect and how to get a token.
func TestDefaultsNeedNoSetup(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	mqttAddr, httpAddr := freeAddr(t), freeAddr(t)
	cmd, lines := startLogged(t, bin, "--data-dir", dir, "--mqtt-addr", mqttAddr, "--ws-addr", freeAddr(t), "--http-addr", httpAddr)
	defer cmd.Process.Kill()
	var serving, token string
	for serving == "" || token == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("mqimd exited before serving")
			}
			if strings.Contains(l, "mqimd serving") {
				serving = l
			}
			if strings.Contains(l, "development token") {
				token = l
			}
		case <-time.After(60 * time.Second):
			t.Fatal("mqimd did not report serving")
		}
	}
	for _, want := range []string{"sqlite " + filepath.Join(dir, "mqim.db"), "embedded", filepath.Join(dir, "nats"), mqttAddr, httpAddr, "websocket=ws://"} {
		if !strings.Contains(serving, want) {
			t.Errorf("start-up line does not say %q:\n%s", want, serving)
		}
	}
	if !strings.Contains(token, "mqim token --secret-file "+filepath.Join(dir, "jwt-secret")) {
		t.Errorf("no usable token hint: %s", token)
	}
	if _, err := os.Stat(filepath.Join(dir, "mqim.db")); err != nil {
		t.Errorf("embedded store not in the data directory: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range lines {
		}
	}()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

// A second SIGTERM during a drain ends the process at once with exit
// status 3 (README). The drain is held open by a socket that never sends
// CONNECT (the node waits for it until the CONNECT deadline, 10 s).
func TestSecondSignalEndsTheDrain(t *testing.T) {
	bin := build(t)
	mqttAddr := freeAddr(t)
	cmd, lines := startLogged(t, bin, "--data-dir", t.TempDir(), "--mqtt-addr", mqttAddr, "--ws-addr", freeAddr(t), "--http-addr", freeAddr(t))
	defer cmd.Process.Kill()
	waitFor(t, lines, "mqimd serving")
	silent, err := net.Dial("tcp", mqttAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, lines, "draining")
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("exit after a second SIGTERM: %v, want status 3", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("exit took %v after the second signal", d)
	}
}

// startLogged starts mqimd with args; its log lines arrive on lines, which
// closes when the process closes its stderr.
func startLogged(t *testing.T, bin string, args ...string) (*exec.Cmd, <-chan string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, scanLines(stderr)
}

// scanLines sends the lines of r on the channel, which closes at EOF.
func scanLines(r io.Reader) <-chan string {
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	return lines
}
