package main

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestConfigFile: every flag has a key of its name in the --config YAML
// file; a flag on the command line beats the environment, which beats the
// file, which beats the default. The serving line shows what won.
func TestConfigFile(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	fileMQTT, fileWS, fileHTTP := freeAddr(t), freeAddr(t), freeAddr(t)
	envWS, envHTTP, flagHTTP := freeAddr(t), freeAddr(t), freeAddr(t)
	cfg := filepath.Join(dir, "mqimd.yaml")
	writeFile(t, cfg, `# every key is a flag name
mqtt-addr: "`+fileMQTT+`"
ws-addr: "`+fileWS+`"
http-addr: "`+fileHTTP+`"
data-dir: "`+filepath.Join(dir, "data")+`"
node-name: file-node
log-format: json
route-ttl: 45s
media-types: [image/png, text/plain]
`)
	cmd := exec.Command(bin, "--config", cfg, "--http-addr", flagHTTP)
	cmd.Env = append(cleanEnv(), "MQIM_WS_ADDR="+envWS, "MQIM_HTTP_ADDR="+envHTTP, "MQIM_NODE_NAME=env-node")
	lines := startCmd(t, cmd)
	serving := waitFor(t, lines, "mqimd serving")
	var rec map[string]any
	if err := json.Unmarshal([]byte(serving), &rec); err != nil {
		t.Fatalf("log-format json from the file not applied: %v: %s", err, serving)
	}
	for key, want := range map[string]string{
		"mqtt":      fileMQTT,                  // file over default
		"websocket": "ws://" + envWS + "/mqtt", // env over file
		"http":      flagHTTP,                  // flag over env and file
		"node":      "env-node",                // env over file
		"store":     "sqlite " + filepath.Join(dir, "data", "mqim.db"),
	} {
		if rec[key] != want {
			t.Errorf("%s = %v, want %s (line %s)", key, rec[key], want, serving)
		}
	}
	stop(t, cmd, lines)

	// The file's own path may come from the environment too.
	cmd = exec.Command(bin, "--http-addr", freeAddr(t), "--ws-addr", freeAddr(t), "--mqtt-addr", freeAddr(t))
	cmd.Env = append(cleanEnv(), "MQIM_CONFIG="+cfg)
	lines = startCmd(t, cmd)
	if l := waitFor(t, lines, "mqimd serving"); !strings.Contains(l, `"node":"file-node"`) {
		t.Errorf("MQIM_CONFIG not read: %s", l)
	}
	stop(t, cmd, lines)

	// Refusals: one line that names the file, the line and the key.
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown key", "mqtt-addr: \":1883\"\nmqtt_port: 1883\n", `config file ` + cfg + `, line 2: unknown key "mqtt_port"`},
		{"misspelt key", "log_level: debug\n", `did you mean "log-level"?`},
		{"bad value", "node-id: many\n", `line 1: node-id: invalid value "many"`},
		{"version", "version: true\n", `"version" cannot be set in a config file`},
		{"not a mapping", "- mqtt-addr\n", "want a mapping"},
		{"twice", "node-id: 1\nnode-id: 2\n", `"node-id" is set twice`},
		{"not YAML", "mqtt-addr: [\n", "config file " + cfg},
	} {
		writeFile(t, cfg, tc.yaml)
		if msg := runFail(t, bin, "--config", cfg); !strings.Contains(msg, tc.want) || !strings.HasPrefix(msg, "mqimd: ") {
			t.Errorf("%s: %q does not say %q", tc.name, msg, tc.want)
		}
	}
	if msg := runFail(t, bin, "--config", filepath.Join(dir, "missing.yaml")); !strings.Contains(msg, "missing.yaml") {
		t.Errorf("missing file: %q", msg)
	}
	// A bad value in the environment names the variable.
	cmd = exec.Command(bin)
	cmd.Env = append(cleanEnv(), "MQIM_NODE_ID=many", "MQIM_DATA_DIR="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), `MQIM_NODE_ID="many"`) {
		t.Errorf("bad env value: %v %s", err, out)
	}
}

// TestVersion: --version prints the version and exits 0; the build can set
// it with -ldflags.
func TestVersion(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "mqimd")
	if out, err := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7-test", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil || !regexp.MustCompile(`^mqimd v9\.8\.7-test .*go1\.\d+`).Match(out) {
		t.Fatalf("--version: %v %q", err, out)
	}
	out, err = exec.Command(build(t), "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "mqimd ") || strings.Count(string(out), "\n") != 1 {
		t.Fatalf("--version without ldflags: %v %q", err, out)
	}
}

// TestJSONLogsHaveMessages: with --log-format json every line is a JSON
// object with a message, including what mochi logs about a connection
// that ends before CONNECT (it logs those without one).
func TestJSONLogsHaveMessages(t *testing.T) {
	bin := build(t)
	mqttAddr := freeAddr(t)
	cmd := exec.Command(bin, "--data-dir", t.TempDir(), "--mqtt-addr", mqttAddr, "--ws-addr", freeAddr(t), "--http-addr", freeAddr(t),
		"--log-format", "json", "--log-level", "debug")
	cmd.Env = cleanEnv()
	raw := startCmd(t, cmd)
	jsonWithMessage := func(l string) {
		var rec struct{ Msg, Level string }
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec.Msg == "" || rec.Level == "" {
			t.Fatalf("log line without a message or not JSON: %s", l)
		}
	}
	until := func(what string) { t.Helper(); waitChecked(t, raw, what, jsonWithMessage) }
	until("mqimd serving")
	c, err := net.Dial("tcp", mqttAddr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close() // ends before CONNECT
	until("mqtt connection ended with an error")
	stop(t, cmd, raw)
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// cleanEnv is the test's environment without MQIM_* variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MQIM_") {
			env = append(env, kv)
		}
	}
	return env
}

// startCmd starts cmd; its stderr lines arrive on the channel, which closes
// when the process closes its stderr.
func startCmd(t *testing.T, cmd *exec.Cmd) <-chan string {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return scanLines(stderr)
}

// waitFor returns the first line containing what.
func waitFor(t *testing.T, lines <-chan string, what string) string {
	t.Helper()
	return waitChecked(t, lines, what, func(string) {})
}

// waitChecked is waitFor that passes every line to check on the way.
func waitChecked(t *testing.T, lines <-chan string, what string, check func(string)) string {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("mqimd exited before logging %q", what)
			}
			check(l)
			if strings.Contains(l, what) {
				return l
			}
		case <-timeout:
			t.Fatalf("mqimd did not log %q", what)
		}
	}
}

// stop ends mqimd with SIGTERM and checks that it drained cleanly.
func stop(t *testing.T, cmd *exec.Cmd, lines <-chan string) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range lines {
		}
	}()
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	}
}
