package sdk_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqim/mqim/clients/sdk"
	"github.com/mqim/mqim/internal/testnode"
	"github.com/mqim/mqim/protocol/authtoken"
)

var secret = []byte("sdk-test-secret")

// waitTimeout bounds every wait for something that must happen; a passing
// test never waits for it to expire.
const waitTimeout = 60 * time.Second

func nodeLog() *slog.Logger {
	if os.Getenv("MQIM_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

func clientLog(t *testing.T) *slog.Logger {
	if os.Getenv("MQIM_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startNode starts a node on a new database of backend be; restartNode
// restarts it. Tests of the SDK's behaviour that involves the store run on
// both stores (testnode.ForEachBackend); those of connection handling only
// on the default, SQLite.
func startNode(t *testing.T, be testnode.Backend) *testnode.Node {
	t.Helper()
	return testnode.Start(t, testnode.NewDB(t, be), secret, nodeLog())
}

func token(t testing.TB, user string) string {
	t.Helper()
	tok, err := authtoken.Mint(secret, user, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// dial connects a client of user to addr (host:port or URL) and closes it
// when the test ends.
func dial(t *testing.T, addr, user string, edit ...func(*sdk.Config)) *sdk.Client {
	t.Helper()
	cfg := sdk.Config{
		Server: addr, User: user, Token: token(t, user),
		RequestTimeout: 5 * time.Second, ReconnectMax: 500 * time.Millisecond,
		Log: clientLog(t),
	}
	for _, f := range edit {
		f(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, err := sdk.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("dial %s: %v", user, err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close %s: %v", user, err)
		}
	})
	return c
}

// ctx is a context for one step of a test.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return c
}

// collect reads n events from c, failing on a timeout or a closed stream.
func collect(t *testing.T, c *sdk.Client, n int) []sdk.Event {
	t.Helper()
	var evs []sdk.Event
	timeout := time.After(waitTimeout)
	for len(evs) < n {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				t.Fatalf("%s: events closed after %d of %d", c.User(), len(evs), n)
			}
			evs = append(evs, ev)
		case <-timeout:
			t.Fatalf("%s: timed out with %d of %d events: %v", c.User(), len(evs), n, seqs(evs))
		}
	}
	return evs
}

// noMoreEvents checks that the client has handed over every event up to
// last and that the server has nothing after it: the stream is complete,
// not just quiet.
func noMoreEvents(t *testing.T, c *sdk.Client, last int64) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s: cursor at %d", c.User(), last), func() bool { return c.Cursor() == last })
	res, err := c.Sync(ctx(t), last, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != 0 || res.Latest != last {
		t.Fatalf("%s: cursor %d but server has latest %d, events %v", c.User(), last, res.Latest, seqs(res.Events))
	}
	select {
	case ev := <-c.Events():
		t.Fatalf("%s: unexpected event %+v", c.User(), ev)
	default:
	}
}

// initialSync returns a hook that closes the channel once the sync of the
// first connect has its answer, so that a test can start sending after it.
func initialSync() (func(after int64, res sdk.SyncResult), <-chan struct{}) {
	ch := make(chan struct{})
	var once sync.Once
	return func(after int64, res sdk.SyncResult) {
		if after == 0 {
			once.Do(func() { close(ch) })
		}
	}, ch
}

func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func seqs(evs []sdk.Event) []int64 {
	s := make([]int64, len(evs))
	for i, e := range evs {
		s[i] = e.Seq
	}
	return s
}

// checkStream checks that evs are the stored events from seq first on,
// contiguous, each once.
func checkStream(t *testing.T, evs []sdk.Event, first int64) {
	t.Helper()
	for i, ev := range evs {
		if ev.Seq != first+int64(i) {
			t.Fatalf("event %d has seq %d, want %d; stream %v", i, ev.Seq, first+int64(i), seqs(evs))
		}
	}
}

// eventually polls cond until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	delay := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(delay) // a poll interval, not a wait for something to happen
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// A TCP proxy between clients and a node, to break connections on purpose.

type proxy struct {
	t  *testing.T
	ln net.Listener

	mu     sync.Mutex
	target string
	refuse bool       // close new connections at once
	budget func() int // client→server bytes a connection carries before it is cut; nil: no limit
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
	cuts   atomic.Int64
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		ln.Close()
		p.cutAll()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) setTarget(addr string) { p.mu.Lock(); p.target = addr; p.mu.Unlock() }
func (p *proxy) setRefuse(r bool)      { p.mu.Lock(); p.refuse = r; p.mu.Unlock() }

// cutRandomly cuts each connection after it carried between lo and hi
// bytes from the client: right after forwarding a packet, typically before
// the server's answer reaches the client.
func (p *proxy) cutRandomly(lo, hi int, seed uint64) {
	r := rand.New(rand.NewPCG(seed, seed))
	var mu sync.Mutex
	p.mu.Lock()
	p.budget = func() int { mu.Lock(); defer mu.Unlock(); return lo + r.IntN(hi-lo+1) }
	p.mu.Unlock()
}

func (p *proxy) noCuts() { p.mu.Lock(); p.budget = nil; p.mu.Unlock() }

// cutAll closes every connection through the proxy.
func (p *proxy) cutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
	p.cuts.Add(1)
}

func (p *proxy) accept() {
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		target, refuse, budget := p.target, p.refuse, p.budget
		p.mu.Unlock()
		if refuse {
			down.Close()
			continue
		}
		up, err := net.Dial("tcp", target)
		if err != nil {
			down.Close()
			continue
		}
		limit := -1
		if budget != nil {
			limit = budget()
		}
		p.mu.Lock()
		p.conns[down], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		cut := func() {
			p.mu.Lock()
			_, open := p.conns[down]
			delete(p.conns, down)
			delete(p.conns, up)
			p.mu.Unlock()
			down.Close()
			up.Close()
			if open && limit >= 0 {
				p.cuts.Add(1)
			}
		}
		p.wg.Go(func() { defer cut(); pipe(up, down, limit) })
		p.wg.Go(func() { defer cut(); pipe(down, up, -1) })
	}
}

// pipe copies src to dst; with limit ≥ 0 it stops after the read that
// carries the total over limit (having forwarded it).
func pipe(dst, src net.Conn, limit int) {
	buf := make([]byte, 32<<10)
	total := 0
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			total += n
			if limit >= 0 && total > limit {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// restartNode shuts n down gracefully and starts a new node on the same
// database; the proxy then leads to the new one.
// during runs while no node is up.
func restartNode(t *testing.T, p *proxy, n *testnode.Node, during func()) *testnode.Node {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	p.setRefuse(true)
	if err := n.Stop(c); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	p.cutAll()
	during()
	n2 := testnode.Start(t, n.DB, secret, nodeLog())
	p.setTarget(n2.MQTTAddr())
	p.setRefuse(false)
	return n2
}

func textOf(ev sdk.Event) string {
	if ev.Msg == nil {
		return ""
	}
	s, _ := ev.Msg.Body["text"].(string)
	return s
}
