package moderation

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mqim/mqim/im"
	"github.com/mqim/mqim/protocol"
)

var secret = []byte("0123456789abcdef-test")

// receiver is a fake webhook receiver: a real HTTP server that checks the
// signature and answers by the body's text.
type receiver struct {
	*httptest.Server
	mu    sync.Mutex
	got   []Request
	hang  chan struct{} // "hang" waits for it (or the client to give up)
	inFly chan struct{}
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{hang: make(chan struct{}), inFly: make(chan struct{}, 64)}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" ||
			protocol.VerifyWebhook(secret, r.Header.Get(protocol.WebhookHeaderTimestamp), r.Header.Get(protocol.WebhookHeaderSignature), body, time.Now()) != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var req Request
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		rc.got = append(rc.got, req)
		rc.mu.Unlock()
		text, _ := req.Body["text"].(string)
		switch text {
		case "deny":
			io.WriteString(w, `{"action":"deny","reason":"no spam please"}`)
		case "replace":
			io.WriteString(w, `{"action":"replace","body":{"text":"replaced","n":1}}`)
		case "hang":
			rc.inFly <- struct{}{}
			select {
			case <-rc.hang:
			case <-r.Context().Done():
			}
		case "500":
			http.Error(w, "oops", http.StatusInternalServerError)
		case "not json":
			io.WriteString(w, "<html>hello</html>")
		case "unknown action":
			io.WriteString(w, `{"action":"maybe"}`)
		case "replace nothing":
			io.WriteString(w, `{"action":"replace","body":"text"}`)
		case "huge":
			io.WriteString(w, `{"action":"allow","reason":"`+strings.Repeat("x", maxVerdictBytes)+`"}`)
		case "redirect":
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		default:
			io.WriteString(w, `{"action":"allow"}`)
		}
	}))
	t.Cleanup(func() { close(rc.hang); rc.Close() })
	return rc
}

func newHook(t *testing.T, url string, failOpen bool, timeout time.Duration) (*Webhook, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	w, err := NewWebhook(WebhookConfig{URL: url, Secret: secret, FailOpen: failOpen, Timeout: timeout, Log: quiet(), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return w, reg
}

func ask(w *Webhook, text string) (im.HookVerdict, error) {
	return w.BeforeSend(context.Background(), &im.HookRequest{Kind: im.HookSend, From: "alice", Client: "alice.phone",
		Cmid: "c1", To: "bob", Type: "text", Body: map[string]any{"text": text}})
}

func TestWebhookVerdicts(t *testing.T) {
	rc := newReceiver(t)
	w, reg := newHook(t, rc.URL, false, 0)
	if v, err := ask(w, "hello"); err != nil || v.Deny || v.Body != nil {
		t.Fatalf("allow: %+v %v", v, err)
	}
	if v, err := ask(w, "deny"); err != nil || !v.Deny || v.Reason != "no spam please" {
		t.Fatalf("deny: %+v %v", v, err)
	}
	if v, err := ask(w, "replace"); err != nil || v.Body["text"] != "replaced" || v.Body["n"] != float64(1) {
		t.Fatalf("replace: %+v %v", v, err)
	}
	rc.mu.Lock()
	first := rc.got[0]
	rc.mu.Unlock()
	if first.Kind != "send" || first.From != "alice" || first.Client != "alice.phone" || first.Cmid != "c1" || first.To != "bob" ||
		first.Type != "text" || first.Body["text"] != "hello" || first.TS == 0 {
		t.Fatalf("request as received: %+v", first)
	}
	if got := testutil.CollectAndCount(reg, "mqim_moderation_webhook_seconds"); got != 1 {
		t.Fatalf("latency histogram: %d series", got)
	}
	for _, r := range []string{"allow", "deny", "replace"} {
		if n := testutil.ToFloat64(w.results.WithLabelValues(r)); n != 1 {
			t.Errorf("%s counted %v times", r, n)
		}
	}
}

// Garbage and failures: no verdict. Failing closed that is an error (the
// core answers unavailable); failing open an allow.
func TestWebhookFailures(t *testing.T) {
	rc := newReceiver(t)
	closed, _ := newHook(t, rc.URL, false, 0)
	open, _ := newHook(t, rc.URL, true, 0)
	for _, text := range []string{"500", "not json", "unknown action", "replace nothing", "huge", "redirect"} {
		if v, err := ask(closed, text); err == nil {
			t.Errorf("%s, failing closed: %+v, no error", text, v)
		}
		if v, err := ask(open, text); err != nil || v.Deny || v.Body != nil {
			t.Errorf("%s, failing open: %+v %v", text, v, err)
		}
	}
	if n := testutil.ToFloat64(closed.results.WithLabelValues("invalid")); n != 4 {
		t.Errorf("invalid answers counted %v, want 4", n)
	}
	// A receiver that is not there.
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	down, _ := newHook(t, gone.URL, false, 0)
	if _, err := ask(down, "hello"); err == nil {
		t.Error("a webhook that is down: no error")
	}
	wrong, _ := newHook(t, rc.URL, false, 0)
	wrong.cfg.Secret = []byte("another secret of sixteen")
	if _, err := ask(wrong, "hello"); err == nil {
		t.Error("a badly signed request was answered")
	}
}

// A webhook that hangs is given up on after the timeout, and calls run
// concurrently: many hanging at once take one timeout, not their sum.
func TestWebhookTimeoutAndConcurrency(t *testing.T) {
	rc := newReceiver(t)
	const n = 20
	timeout := 500 * time.Millisecond
	closed, _ := newHook(t, rc.URL, false, timeout)
	open, _ := newHook(t, rc.URL, true, timeout)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range 2 * n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := closed
			if i%2 == 1 {
				w = open
			}
			v, err := ask(w, "hang")
			if (i%2 == 0) != (err != nil) || v.Deny {
				errs <- err
			}
		}()
	}
	for range 2 * n { // every call reached the receiver before any timed out
		<-rc.inFly
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("wrong outcome of a hanging call: %v", err)
	}
	if d := time.Since(start); d < timeout || d > 20*timeout {
		t.Fatalf("%d hanging calls took %v with a timeout of %v", 2*n, d, timeout)
	}
	if got := testutil.ToFloat64(closed.results.WithLabelValues("timeout")); got != n {
		t.Fatalf("timeouts counted %v, want %d", got, n)
	}
}

func TestWebhookConfigErrors(t *testing.T) {
	for name, cfg := range map[string]WebhookConfig{
		"no URL":       {Secret: secret},
		"not http":     {URL: "ftp://x/y", Secret: secret},
		"relative":     {URL: "/hook", Secret: secret},
		"short secret": {URL: "http://127.0.0.1/hook", Secret: []byte("short")},
	} {
		if _, err := NewWebhook(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
