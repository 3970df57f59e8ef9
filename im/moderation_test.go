package im

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/protocol/authtoken"
	"github.com/mqim/mqim/store"
)

// fakeWords refuses texts with "forbidden" and masks "darn" as "####"
// and "x" as "xxxxxxxx" (so that masking can grow a body); the real
// filter, moderation.Words, has its own tests and the node-level ones.
type fakeWords struct{}

func (fakeWords) Check(s string) (string, bool) {
	if strings.Contains(s, "forbidden") {
		return s, true
	}
	s = strings.ReplaceAll(s, "darn", "####")
	return strings.ReplaceAll(s, "x", "xxxxxxxx"), false
}

// fakeHook answers by the text of the body: "deny" denies, "replace"
// replaces, "fail" fails, "slow" waits until release is closed; it
// records what it was asked.
type fakeHook struct {
	mu      sync.Mutex
	asked   []HookRequest
	release chan struct{}
	calls   chan string // the text of each call as it starts, if not nil
}

func (h *fakeHook) BeforeSend(ctx context.Context, req *HookRequest) (HookVerdict, error) {
	h.mu.Lock()
	h.asked = append(h.asked, *req)
	h.mu.Unlock()
	text, _ := req.Body["text"].(string)
	if h.calls != nil {
		h.calls <- text
	}
	switch {
	case strings.HasPrefix(text, "slow"):
		select {
		case <-h.release:
		case <-ctx.Done():
			return HookVerdict{}, ctx.Err()
		}
	case text == "deny":
		return HookVerdict{Deny: true, Reason: "not on a Sunday"}, nil
	case text == "replace":
		return HookVerdict{Body: map[string]any{"text": "replaced", "by": "hook"}}, nil
	case text == "replace badly":
		return HookVerdict{Body: map[string]any{"no": "text"}}, nil
	case text == "fail":
		return HookVerdict{}, errors.New("webhook down")
	}
	return HookVerdict{}, nil
}

func moderated(t *testing.T, words WordFilter, hook BeforeSend) *core {
	return newCoreWith(t, true, func(c *Config) {
		c.Words, c.BeforeSend = words, hook
		c.MaxBody = 200
	}, "alice", "bob", "news")
}

func bodyOf(t *testing.T, m *store.Message) map[string]any {
	t.Helper()
	w, err := m.Wire()
	if err != nil {
		t.Fatal(err)
	}
	return w.Body
}

func refusedWith(t *testing.T, o SendOutcome, code string) {
	t.Helper()
	if o.Err == nil || o.Err.Code != code {
		t.Fatalf("outcome %+v, want %s", o, code)
	}
}

func notStored(t *testing.T, c *core, user, cmid string) {
	t.Helper()
	if ok, err := c.store.Stored(context.Background(), user, cmid); err != nil || ok {
		t.Fatalf("refused %s/%s stored: %v %v", user, cmid, ok, err)
	}
}

// The word filter refuses (content_refused, nothing stored) or masks
// text and caption; a masked body is validated again; the retry of a
// masked send is the same send [IM-18.1].
func TestWordFilterOnSends(t *testing.T) {
	c := moderated(t, fakeWords{}, nil)
	alice := session("alice")
	refusedWith(t, c.send(t, alice, text("r1", "bob", "a forbidden word")), protocol.CodeContentRefused)
	notStored(t, c, "alice", "r1")
	img := protocol.Send{Cmid: "r2", To: "bob", Type: protocol.TypeImage,
		Body: map[string]any{"url": "/v1/media/x", "caption": "forbidden"}}
	refusedWith(t, c.send(t, alice, img), protocol.CodeContentRefused)
	notStored(t, c, "alice", "r2")

	o := c.send(t, alice, text("m1", "bob", "oh darn"))
	if o.Err != nil || bodyOf(t, o.Msg)["text"] != "oh ####" {
		t.Fatalf("masked send: %+v", o)
	}
	again := c.send(t, alice, text("m1", "bob", "oh darn"))
	if again.Err != nil || !again.Duplicate || again.Msg.ID != o.Msg.ID {
		t.Fatalf("retry of a masked send: %+v", again)
	}
	if got := bodyOf(t, c.rec.eventsOf("bob")[0].Msg)["text"]; got != "oh ####" {
		t.Fatalf("delivered %q", got)
	}
	// Masking that makes the body too large: refused as such.
	refusedWith(t, c.send(t, alice, text("m2", "bob", strings.Repeat("x", 30))), protocol.CodeTooLarge)
	notStored(t, c, "alice", "m2")
	// Other fields are not read.
	custom := protocol.Send{Cmid: "m3", To: "bob", Type: protocol.TypeCustom, Body: map[string]any{"note": "forbidden"}}
	if o := c.send(t, alice, custom); o.Err != nil {
		t.Fatalf("custom field: %v", o.Err)
	}
	// Notifications too, MQTT and HTTP alike.
	bridge := &Session{User: "news", Role: authtoken.RoleBridge, Format: protocol.JSON}
	ch := make(chan SendOutcome, 1)
	c.Notify(bridge, protocol.JSON, encode(t, map[string]any{"cmid": "n1", "to": "bob", "body": map[string]any{"text": "forbidden"}}), func(o SendOutcome) { ch <- o })
	refusedWith(t, <-ch, protocol.CodeContentRefused)
	req, perr := c.ValidateSend("news", protocol.Send{Cmid: "n2", To: "bob", Body: map[string]any{"text": "darn it"}}, true)
	if perr != nil {
		t.Fatal(perr)
	}
	if o := c.Submit(context.Background(), bridge, req); o.Err != nil || bodyOf(t, o.Msg)["text"] != "#### it" {
		t.Fatalf("HTTP notification: %+v", o)
	}
}

// Edits go through the filter: refused, or stored masked [IM-18.3].
func TestWordFilterOnEdits(t *testing.T) {
	c := moderated(t, fakeWords{}, nil)
	alice := session("alice")
	o := c.send(t, alice, text("m1", "bob", "fine"))
	if o.Err != nil {
		t.Fatal(o.Err)
	}
	id := fmt.Sprint(o.Msg.ID)
	if r := c.call(t, alice, protocol.MethodEdit, map[string]any{"msg_id": id, "body": map[string]any{"text": "forbidden"}}); code(r) != protocol.CodeContentRefused {
		t.Fatalf("refused edit: %+v", r)
	}
	res := mustOK(t, c.call(t, alice, protocol.MethodEdit, map[string]any{"msg_id": id, "body": map[string]any{"text": "darn"}})).(*protocol.MessageResult)
	if res.Msg.Body["text"] != "####" {
		t.Fatalf("masked edit: %+v", res.Msg.Body)
	}
	if r := c.call(t, alice, protocol.MethodEdit, map[string]any{"msg_id": id, "body": map[string]any{"text": strings.Repeat("x", 30)}}); code(r) != protocol.CodeTooLarge {
		t.Fatalf("edit masked over the limit: %+v", r)
	}
}

// The before-send webhook allows, denies with its reason, replaces (the
// replacement validated again) or, failing, refuses with unavailable; it
// comes after the word filter and sees edits and notifications [IM-18.2].
func TestBeforeSendHook(t *testing.T) {
	h := &fakeHook{}
	c := moderated(t, fakeWords{}, h)
	alice := session("alice")
	if o := c.send(t, alice, text("a1", "bob", "hello")); o.Err != nil {
		t.Fatal(o.Err)
	}
	o := c.send(t, alice, text("d1", "bob", "deny"))
	refusedWith(t, o, protocol.CodeContentRefused)
	if o.Err.Message != "not on a Sunday" {
		t.Fatalf("reason %q", o.Err.Message)
	}
	notStored(t, c, "alice", "d1")
	o = c.send(t, alice, text("p1", "bob", "replace"))
	if o.Err != nil || bodyOf(t, o.Msg)["text"] != "replaced" || bodyOf(t, o.Msg)["by"] != "hook" {
		t.Fatalf("replaced: %+v", o)
	}
	refusedWith(t, c.send(t, alice, text("p2", "bob", "replace badly")), protocol.CodeBadRequest)
	refusedWith(t, c.send(t, alice, text("f1", "bob", "fail")), protocol.CodeUnavailable)
	notStored(t, c, "alice", "f1")
	// The word filter runs first: the webhook never hears of a refused text
	// and gets the masked one.
	refusedWith(t, c.send(t, alice, text("w1", "bob", "forbidden")), protocol.CodeContentRefused)
	if o := c.send(t, alice, text("w2", "bob", "darn")); o.Err != nil {
		t.Fatal(o.Err)
	}
	// Edits and notifications are asked too.
	id := fmt.Sprint(c.send(t, alice, text("e1", "bob", "to edit")).Msg.ID)
	if r := c.call(t, alice, protocol.MethodEdit, map[string]any{"msg_id": id, "body": map[string]any{"text": "deny"}}); code(r) != protocol.CodeContentRefused {
		t.Fatalf("denied edit: %+v", r)
	}
	res := mustOK(t, c.call(t, alice, protocol.MethodEdit, map[string]any{"msg_id": id, "body": map[string]any{"text": "replace"}})).(*protocol.MessageResult)
	if res.Msg.Body["text"] != "replaced" {
		t.Fatalf("replaced edit: %+v", res.Msg.Body)
	}
	bridge := &Session{User: "news", Role: authtoken.RoleBridge, Format: protocol.JSON}
	req, _ := c.ValidateSend("news", protocol.Send{Cmid: "n1", Group: "", To: "bob", Body: map[string]any{"text": "deny"}}, true)
	refusedWith(t, c.Submit(context.Background(), bridge, req), protocol.CodeContentRefused)

	h.mu.Lock()
	defer h.mu.Unlock()
	var seen []string
	for _, r := range h.asked {
		seen = append(seen, fmt.Sprintf("%s:%s:%v", r.Kind, r.Cmid, r.Body["text"]))
	}
	want := []string{"send:a1:hello", "send:d1:deny", "send:p1:replace", "send:p2:replace badly", "send:f1:fail",
		"send:w2:####", "send:e1:to edit", "edit::deny", "edit::replace", "notification:n1:deny"}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("the webhook was asked\n%v\nwant\n%v", seen, want)
	}
	if h.asked[0].From != "alice" || h.asked[0].Client != "alice-phone" || h.asked[0].To != "bob" || h.asked[0].Type != "text" {
		t.Fatalf("request: %+v", h.asked[0])
	}
}

// Webhook calls of one connection run concurrently, yet its sends and the
// requests after them are committed in arrival order, and each answer
// comes once [IM-18.2-5].
func TestBeforeSendConcurrentInOrder(t *testing.T) {
	h := &fakeHook{release: make(chan struct{}), calls: make(chan string, 16)}
	c := moderated(t, nil, h)
	alice := session("alice")
	outcomes := make(chan SendOutcome, 3)
	for i, s := range []string{"slow 1", "quick 2", "slow 3"} {
		c.Send(alice, protocol.JSON, encode(t, text(fmt.Sprint("c", i), "bob", s)), func(o SendOutcome) { outcomes <- o })
	}
	// All three calls are in flight at once, while the first still waits.
	for range 3 {
		select {
		case <-h.calls:
		case <-time.After(30 * time.Second):
			t.Fatal("the webhook calls do not run concurrently")
		}
	}
	// A request after them waits for them.
	replied := make(chan *protocol.Response, 1)
	c.Call(alice, protocol.MethodSettings, protocol.JSON, encode(t, map[string]any{"conv": "d:alice:bob", "muted": true}),
		func(r *protocol.Response) { replied <- r })
	select {
	case o := <-outcomes:
		t.Fatalf("answered before the first call returned: %+v", o)
	case r := <-replied:
		t.Fatalf("a later request overtook the sends: %+v", r)
	case <-time.After(50 * time.Millisecond):
	}
	close(h.release)
	var seqs []int64
	for range 3 {
		o := <-outcomes
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		seqs = append(seqs, o.Msg.Seq)
		if want := map[string]int64{"c0": 1, "c1": 2, "c2": 3}[o.Cmid]; o.Msg.Seq != want {
			t.Fatalf("%s committed as seq %d, want %d (arrival order)", o.Cmid, o.Msg.Seq, want)
		}
	}
	if r := <-replied; !r.OK {
		t.Fatalf("settings: %+v", r.Error)
	}
}

// One connection cannot take every webhook call of the node: past its
// share (an eighth of BeforeSendCalls) its own sends wait, while another
// connection's are asked at once [IM-18.2-5].
func TestBeforeSendShareOfOneConnection(t *testing.T) {
	h := &fakeHook{release: make(chan struct{}), calls: make(chan string, 16)}
	c := newCoreWith(t, true, func(c *Config) { c.BeforeSend, c.BeforeSendCalls = h, 16 }, "alice", "bob")
	alice := session("alice")
	outcomes := make(chan SendOutcome, 4)
	sent := make(chan struct{})
	go func() { // alice's share is 2: her third send waits on her goroutine
		defer close(sent)
		for i := range 3 {
			c.Send(alice, protocol.JSON, encode(t, text(fmt.Sprint("a", i), "bob", "slow")), func(o SendOutcome) { outcomes <- o })
		}
	}()
	for range 2 {
		<-h.calls
	}
	done := make(chan SendOutcome, 1)
	c.Send(session("bob"), protocol.JSON, encode(t, text("b1", "alice", "quick")), func(o SendOutcome) { done <- o })
	select {
	case o := <-done:
		if o.Err != nil {
			t.Fatalf("bob's send: %v", o.Err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("bob's send waited for alice's webhook calls")
	}
	select {
	case <-sent:
		t.Fatal("alice's third send was not held back beyond her share of the calls")
	default:
	}
	close(h.release)
	<-sent
	for range 3 {
		if o := <-outcomes; o.Err != nil {
			t.Fatalf("alice's send %s: %v", o.Cmid, o.Err)
		}
	}
}
