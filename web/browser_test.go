package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqim/mqim/internal/testcerts"
	"github.com/mqim/mqim/internal/testdeps"
	"github.com/mqim/mqim/internal/testnode"
	"github.com/mqim/mqim/protocol/authtoken"
	"github.com/mqim/mqim/server"
)

var secret = []byte("web-test-secret")

// TestPageServed: the page, its script and MQTT.js are embedded and served,
// and / leads to the page. The nodes here run on the default store, SQLite,
// as for a user who opens the page of a fresh mqimd.
func TestPageServed(t *testing.T) {
	n := testnode.Start(t, testnode.NewDB(t, testnode.SQLite), secret, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for path, want := range map[string]string{
		"/":                  "<title>mqim</title>",
		"/web/":              `id="login"`,
		"/web/app.js":        "im/v1/u/",
		"/web/mqtt.min.js":   "mqtt",
		"/web/config.json":   `"ws_path":"/mqtt"`,
		"/web/style.css":     "#messages",
		"/web/nonexistent":   "404 page not found",
		"/web/../v1/nodes":   "",
		"/web/%2e%2e/go.mod": "",
	} {
		resp, err := http.Get("http://" + n.HTTPAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d, body lacks %q:\n%.300s", path, resp.StatusCode, want, b)
		}
		if want == "" && resp.StatusCode == http.StatusOK && strings.Contains(string(b), "module") {
			t.Errorf("GET %s served a file outside the page", path)
		}
	}
}

// TestBrowserChat drives two pages in headless Chromium (Debian's
// chromium, with playwright-core from npm) through a chat against a node:
// login, a new conversation, live messages both ways, unread counts, read
// receipts and history paging (testdata/chat.cjs).
//
// What it needs: /usr/bin/chromium (apt-get install chromium), node and
// npm, and the npm registry for playwright-core, installed into
// $TMPDIR/mqim-playwright on first use. Run as root (as CI is), it installs
// chromium itself; otherwise it skips when something is missing, unless run
// by scripts/test or under CI=true, where a missing piece fails the test.
func TestBrowserChat(t *testing.T) {
	n := testnode.Start(t, testnode.NewDB(t, testnode.SQLite), secret, slog.New(slog.NewTextHandler(io.Discard, nil)))
	browserChat(t, "http://"+n.HTTPAddr()+"/web/")
}

// TestBrowserChatTLS is TestBrowserChat over HTTPS and wss, with a
// certificate of a CA made in the test, which the browser is told to
// accept (IGNORE_HTTPS_ERRORS): the page served over HTTPS connects to the
// wss listener [IM-1.1-5].
func TestBrowserChatTLS(t *testing.T) {
	ca := testcerts.NewCA(t, "web test CA")
	crt, key := ca.Server(t).Write(t, t.TempDir(), "server")
	n := testnode.Start(t, testnode.NewDB(t, testnode.SQLite), secret, slog.New(slog.NewTextHandler(io.Discard, nil)),
		func(c *server.Config) { c.TLSCert, c.TLSKey = crt, key })
	browserChat(t, "https://"+n.HTTPSAddr()+"/web/", "IGNORE_HTTPS_ERRORS=1")
}

// browserChat runs testdata/chat.cjs against the page at url.
func browserChat(t *testing.T, url string, env ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: not in -short mode")
	}
	chromium := need(t, "chromium", "/usr/bin/chromium", []string{"apt-get", "install", "-y", "--no-install-recommends", "chromium"})
	nodeBin := need(t, "node", "", nil)
	npm := need(t, "npm", "", nil)
	dir := filepath.Join(os.TempDir(), "mqim-playwright")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core", "package.json")); err != nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"name":"mqim-playwright","private":true}`), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "install", "--no-audit", "--no-fund", "playwright-core@1")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			missing(t, "playwright-core: npm install failed: "+err.Error()+"\n"+string(out))
		}
	}

	env = append(append(os.Environ(), env...),
		"PLAYWRIGHT_DIR="+dir,
		"CHROMIUM="+chromium,
		"URL="+url,
		"ALICE=alice", "ALICE_TOKEN="+mint(t, "alice"),
		"BOB=bob", "BOB_TOKEN="+mint(t, "bob"),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, filepath.Join("testdata", "chat.cjs"))
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "ok") {
		t.Fatalf("browser chat: %v\n%s", err, out)
	}
}

func mint(t *testing.T, user string) string {
	tok, err := authtoken.Mint(secret, user, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// need finds a program: at path if given, else on PATH. Missing, it is
// installed with install when running as root, else the test skips (fails
// under scripts/test and CI: testdeps.Required).
func need(t *testing.T, name, path string, install []string) string {
	t.Helper()
	find := func() (string, bool) {
		if path != "" {
			_, err := os.Stat(path)
			return path, err == nil
		}
		p, err := exec.LookPath(name)
		return p, err == nil
	}
	if p, ok := find(); ok {
		return p
	}
	if install != nil && os.Geteuid() == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, install[0], install[1:]...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			missing(t, name+": "+strings.Join(install, " ")+": "+err.Error()+"\n"+string(out))
		}
		if p, ok := find(); ok {
			return p
		}
	}
	missing(t, name+" is not installed")
	return ""
}

func missing(t *testing.T, why string) {
	t.Helper()
	testdeps.Missing(t, why)
}
