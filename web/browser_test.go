package web_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqim/mqim/clients/cli"
	"github.com/mqim/mqim/internal/testcerts"
	"github.com/mqim/mqim/internal/testdeps"
	"github.com/mqim/mqim/internal/testnode"
	"github.com/mqim/mqim/protocol/authtoken"
	"github.com/mqim/mqim/server"
)

var secret = []byte("web-test-secret")

// TestPageServed: the page, its script (the SDK and MQTT.js bundled in) and
// their licenses are embedded and served,
// and / leads to the page. The nodes here run on the default store, SQLite,
// as for a user who opens the page of a fresh mqimd.
func TestPageServed(t *testing.T) {
	n := testnode.Start(t, testnode.NewDB(t, testnode.SQLite), secret, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for path, want := range map[string]string{
		"/":                             "<title>mqim</title>",
		"/web/":                         `id="login"`,
		"/web/app.js":                   "im/v1/u/",
		"/web/THIRD_PARTY_LICENSES.txt": "mqtt@",
		"/web/config.json":              `"ws_path":"/mqtt"`,
		"/web/style.css":                "#messages",
		"/web/nonexistent":              "404 page not found",
		"/web/../v1/nodes":              "",
		"/web/%2e%2e/go.mod":            "",
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

// TestBrowserChat drives three pages in headless Chromium (Debian's
// chromium, with playwright-core from npm) through a chat against a node on
// the default store (SQLite): alice and bob at 1280 px, carol on a 390 px
// phone. testdata/chat.cjs is the script: login errors, direct chat,
// unread counts and receipts, typing, presence, a send and an edit the
// moderation refuses, attachments (uploaded from
// the page and sent with `mqim send --file`), a bridge's system notice,
// edit and recall, a group, history paging, a connection cut and restored
// (alice's page goes through a proxy this test cuts), remember-me and
// logout. It saves screenshots at both widths into $MQIM_WEB_SCREENSHOTS
// (docs/ holds the committed ones), else into the test's temp dir.
//
// What it needs: /usr/bin/chromium (apt-get install chromium), node and
// npm, and the npm registry for playwright-core, installed into
// $TMPDIR/mqim-playwright on first use. Run as root (as CI is), it installs
// chromium itself; otherwise it skips when something is missing, unless run
// by scripts/test or under CI=true, where a missing piece fails the test.
func TestBrowserChat(t *testing.T) {
	b := browserDeps(t)
	files := t.TempDir()
	// A reject word list: a send or edit holding "forbidden" is refused
	// with content_refused [IM-18.1-3], which the page explains.
	words := filepath.Join(files, "reject.txt")
	if err := os.WriteFile(words, []byte("forbidden\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n := testnode.Start(t, testnode.NewDB(t, testnode.SQLite), secret, slog.New(slog.NewTextHandler(io.Discard, nil)),
		func(c *server.Config) { c.Moderation.RejectLists = []string{words} })
	img := filepath.Join(files, "sunset.png")
	writePNG(t, img, 320, 200)
	txt := filepath.Join(files, "notes.txt")
	if err := os.WriteFile(txt, []byte("meeting notes: bring the slides\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	shots := os.Getenv("MQIM_WEB_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	proxy := startProxy(t, n.WSAddr())
	control := startControl(t, n, proxy, img)

	wrong, err := authtoken.Mint([]byte("another-secret"), "alice", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b.run(t, "chat.cjs",
		// bob's page names the server localhost, the others 127.0.0.1: the
		// image `mqim send --file` sends names 127.0.0.1, and bob's page must
		// still fetch it from its own origin, with its token.
		"URL=http://"+n.HTTPAddr()+"/web/",
		"BOB_URL=http://localhost:"+port(t, n.HTTPAddr())+"/web/",
		"WS_PROXY=ws://"+proxy.addr()+"/mqtt",
		"CONTROL=http://"+control,
		"SHOTS="+shots,
		"IMAGE="+img, "FILE="+txt,
		"ALICE_TOKEN="+mint(t, "alice"), "BOB_TOKEN="+mint(t, "bob"), "CAROL_TOKEN="+mint(t, "carol"),
		"WRONG_TOKEN="+wrong,
	)
	for _, f := range []string{"web-1280.png", "web-390.png"} {
		if st, err := os.Stat(filepath.Join(shots, f)); err != nil || st.Size() < 10000 {
			t.Errorf("screenshot %s: %v", f, err)
		}
	}
}

// TestBrowserChatTLS: two pages chat over HTTPS and wss, with a
// certificate of a CA made in the test, which the pages are told to accept
// (testdata/tls.cjs): the page served over HTTPS connects to the wss
// listener [IM-1.1-5].
func TestBrowserChatTLS(t *testing.T) {
	b := browserDeps(t)
	ca := testcerts.NewCA(t, "web test CA")
	crt, key := ca.Server(t).Write(t, t.TempDir(), "server")
	n := testnode.Start(t, testnode.NewDB(t, testnode.SQLite), secret, slog.New(slog.NewTextHandler(io.Discard, nil)),
		func(c *server.Config) { c.TLSCert, c.TLSKey = crt, key })
	b.run(t, "tls.cjs", "URL=https://"+n.HTTPSAddr()+"/web/", "ALICE_TOKEN="+mint(t, "alice"), "BOB_TOKEN="+mint(t, "bob"))
}

// TestBrowserReadFanoutGroup: a group above the node's read fan-out
// threshold, whose events reach the pages on the group topic and in
// history only (testdata/readfanout.cjs).
func TestBrowserReadFanoutGroup(t *testing.T) {
	b := browserDeps(t)
	n := testnode.Start(t, testnode.NewDB(t, testnode.SQLite), secret, slog.New(slog.NewTextHandler(io.Discard, nil)),
		func(c *server.Config) { c.GroupReadFanout = 2 })
	b.run(t, "readfanout.cjs",
		"URL=http://"+n.HTTPAddr()+"/web/",
		"ALICE_TOKEN="+mint(t, "alice"), "BOB_TOKEN="+mint(t, "bob"), "CAROL_TOKEN="+mint(t, "carol"))
}

// browser is what the browser tests run with: Chromium, node and
// playwright-core.
type browser struct{ chromium, node, playwright string }

// browserDeps finds (or installs) what the browser tests need; see
// TestBrowserChat.
func browserDeps(t *testing.T) browser {
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
	return browser{chromium: chromium, node: nodeBin, playwright: dir}
}

// run runs a script of testdata with env added; it must print ok last.
func (b browser) run(t *testing.T, script string, env ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.node, filepath.Join("testdata", script))
	cmd.Env = append(append(os.Environ(), "PLAYWRIGHT_DIR="+b.playwright, "CHROMIUM="+b.chromium), env...)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "ok") {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
}

func port(t *testing.T, addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// writePNG writes a w×h gradient, an image a person can recognise in the
// screenshots.
func writePNG(t *testing.T, path string, w, h int) {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.Set(x, y, color.RGBA{R: uint8(255 - y), G: uint8(80 + x/4), B: uint8(120 + y/2), A: 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startControl serves what the script asks of the Go side: cut and restore
// alice's connections, `mqim send --file` (the CLI's own code) and a
// bridge's system notification over HTTP.
func startControl(t *testing.T, n *testnode.Node, p *proxy, img string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /cut", func(w http.ResponseWriter, r *http.Request) { p.cut(true) })
	mux.HandleFunc("POST /restore", func(w http.ResponseWriter, r *http.Request) { p.cut(false) })
	mux.HandleFunc("POST /cli-image", func(w http.ResponseWriter, r *http.Request) {
		var out bytes.Buffer
		err := cli.Run(r.Context(), []string{"send", "--server", "mqtt://" + n.MQTTAddr(), "--user", "alice",
			"--token", mint(t, "alice"), "--http", "http://" + n.HTTPAddr(), "--to", "bob", "--file", img, "sunset from the CLI"}, &out, &out)
		if err != nil {
			http.Error(w, err.Error()+": "+out.String(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("POST /notify", func(w http.ResponseWriter, r *http.Request) {
		tok, err := authtoken.Mint(secret, "ci", "bridge", time.Hour)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		req, _ := http.NewRequestWithContext(r.Context(), "POST", "http://"+n.HTTPAddr()+"/v1/notifications",
			strings.NewReader(`{"to":"bob","cmid":"build-42","body":{"text":"build 42 passed","url":"https://ci.example/42"}}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			b, _ := io.ReadAll(resp.Body)
			http.Error(w, resp.Status+": "+string(b), http.StatusInternalServerError)
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln.Addr().String()
}

// proxy forwards TCP connections to the node's WebSocket listener until
// cut: then it closes them all and refuses new ones until restored, as a
// network that goes away and comes back.
type proxy struct {
	ln       net.Listener
	upstream string
	wg       sync.WaitGroup

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
}

func startProxy(t *testing.T, upstream string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, upstream: upstream, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.cut(true)
		p.wg.Wait()
	})
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.forward(c)
		}()
	}
}

func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) forward(c net.Conn) {
	defer c.Close()
	up, err := net.DialTimeout("tcp", p.upstream, 10*time.Second)
	if err != nil {
		return
	}
	defer up.Close()
	if !p.track(c) || !p.track(up) {
		return
	}
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

func (p *proxy) cut(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
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
