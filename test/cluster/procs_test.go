package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mqim/mqim/internal/testpg"
	"github.com/mqim/mqim/protocol/authtoken"
)

// bins holds the binaries built once for the package: mqimd and the real
// nats-server.
var bins struct {
	once        sync.Once
	dir         string
	mqimd, nats string
	err         error
}

func build(t *testing.T) (mqimd, natsServer string) {
	t.Helper()
	bins.once.Do(func() {
		bins.dir, bins.err = os.MkdirTemp("", "mqim-cluster-bin-")
		if bins.err != nil {
			return
		}
		bins.mqimd = filepath.Join(bins.dir, "mqimd")
		bins.nats = filepath.Join(bins.dir, "nats-server")
		for pkg, out := range map[string]string{"github.com/mqim/mqim/cmd/mqimd": bins.mqimd, "github.com/nats-io/nats-server/v2": bins.nats} {
			cmd := exec.Command("go", "build", "-o", out, pkg)
			if b, err := cmd.CombinedOutput(); err != nil {
				bins.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
				return
			}
		}
	})
	if bins.err != nil {
		t.Fatal(bins.err)
	}
	return bins.mqimd, bins.nats
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bins.dir != "" {
		os.RemoveAll(bins.dir)
	}
	os.Exit(code)
}

func freePort(t *testing.T) int { return testpg.FreePort(t) }

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// proc is a server process the test starts, kills and restarts.
type proc struct {
	t     *testing.T
	name  string
	argv  []string
	env   []string // added to the environment at the next start
	log   string
	ready func(ctx context.Context) error

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func newProc(t *testing.T, name string, ready func(context.Context) error, argv ...string) *proc {
	p := &proc{t: t, name: name, argv: argv, ready: ready, log: filepath.Join(t.TempDir(), name+".log")}
	t.Cleanup(func() {
		p.signal(syscall.SIGKILL)
		p.wait()
		if t.Failed() {
			if b, err := os.ReadFile(p.log); err == nil {
				t.Logf("---- %s log (last 4 KiB) ----\n%s", name, lastBytes(b, 4096))
			}
		}
	})
	return p
}

func lastBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// start starts the process and waits until it is ready.
func (p *proc) start() {
	p.t.Helper()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	fmt.Fprintf(f, "==== start %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), p.env...)
	if err := cmd.Start(); err != nil {
		f.Close()
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		err := p.ready(ctx)
		if err == nil {
			return
		}
		select {
		case <-done:
			p.t.Fatalf("%s exited while starting (log %s)", p.name, p.log)
		case <-ctx.Done():
			p.t.Fatalf("%s not ready: %v", p.name, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (p *proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(sig)
	}
}

// wait waits for the process to exit.
func (p *proc) wait() {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done != nil {
		<-done
	}
}

// killedBy says whether the process's last exit was by sig (after wait).
func (p *proc) killedBy(sig syscall.Signal) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.ProcessState == nil {
		return false
	}
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

// stop sends sig and waits for the exit.
func (p *proc) stop(sig syscall.Signal) {
	p.signal(sig)
	p.wait()
}

func httpOK(url string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	}
}

// natsProc is an external nats-server with JetStream.
func natsProc(t *testing.T, bin string) (p *proc, url string) {
	port, mon := freePort(t), freePort(t)
	dir := t.TempDir()
	p = newProc(t, "nats", httpOK(fmt.Sprintf("http://%s/healthz?js-enabled-only=true", addr(mon))),
		bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-m", strconv.Itoa(mon), "-js", "-sd", dir)
	return p, "nats://" + addr(port)
}

// node is one mqimd process.
type node struct {
	*proc
	id             int
	mqtt, ws, http string
}

// nodeProc prepares mqimd with its own data directory, kept across
// restarts; an empty dbURL means the embedded store.
func nodeProc(t *testing.T, bin string, id int, dbURL string, extra ...string) *node {
	n := &node{id: id, mqtt: addr(freePort(t)), ws: addr(freePort(t)), http: addr(freePort(t))}
	argv := []string{bin, "--data-dir", t.TempDir(), "--jwt-secret", string(secret),
		"--mqtt-addr", n.mqtt, "--ws-addr", n.ws, "--http-addr", n.http,
		"--node-id", strconv.Itoa(id), "--advertise", n.mqtt, "--log-level", "warn", "--route-ttl", "3s",
	}
	if dbURL != "" {
		argv = append(argv, "--store", dbURL)
	}
	n.proc = newProc(t, fmt.Sprintf("mqimd-%d", id), httpOK("http://"+n.http+"/healthz"), append(argv, extra...)...)
	return n
}

// admin sends an admin GET to n's HTTP API and decodes the JSON answer.
func (n *node) admin(t *testing.T, path string, out any) bool {
	t.Helper()
	tok, err := authtoken.Mint(secret, "admin", authtoken.RoleAdmin, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+n.http+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(out) == nil
}

// liveNodes asks n which nodes are live: name → advertised address.
func (n *node) liveNodes(t *testing.T) map[string]string {
	var out struct {
		Nodes []struct{ Name, Addr string }
	}
	m := map[string]string{}
	if n.admin(t, "/v1/nodes", &out) {
		for _, x := range out.Nodes {
			m[x.Name] = x.Addr
		}
	}
	return m
}

// presence asks n's HTTP API which nodes hold user's devices (client → node).
func (n *node) presence(t *testing.T, user string) map[string]string {
	t.Helper()
	var out struct {
		Online  bool `json:"online"`
		Devices []struct {
			Client, Node string
		} `json:"devices"`
	}
	if !n.admin(t, "/v1/users/"+user+"/presence", &out) {
		return nil
	}
	m := map[string]string{}
	for _, d := range out.Devices {
		m[d.Client] = d.Node
	}
	if out.Online != (len(m) > 0) {
		t.Errorf("presence of %s: online=%v with %d devices", user, out.Online, len(m))
	}
	return m
}

// metric reads a counter or gauge from n's /metrics; -1 if unreadable.
func (n *node) metric(name string) float64 {
	resp, err := http.Get("http://" + n.http + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

func (n *node) name() string { return fmt.Sprintf("node-%d", n.id) }
