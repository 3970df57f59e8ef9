package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqim/mqim/moderation"
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/server"
)

// wordList writes a word list file.
func wordList(t *testing.T, words ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "words.txt")
	if err := os.WriteFile(p, []byte(strings.Join(words, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestModerationWordFilter: the word filter over MQTT and HTTP, on sends,
// edits and notifications [IM-18.1], [IM-18.3]: Chinese and full-width
// words refused with content_refused and not stored; masked words stored
// and delivered masked; a retry of a masked send is the stored message.
func TestModerationWordFilter(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		reject, mask := wordList(t, "法轮功", "BadWord"), wordList(t, "坏蛋", "ＤＡＲＮ")
		n := startNode(t, be, func(c *server.Config) {
			c.Moderation = server.Moderation{RejectLists: []string{reject}, MaskLists: []string{mask}}
		})
		alice := dl.dial(t, n, "alice")
		bob := dl.dial(t, n, "bob")

		for i, s := range []string{"我练法轮功", "ｂａｄｗｏｒｄ!", "a BADWORD inside"} {
			cmid := "r" + string(rune('0'+i))
			mark := alice.mark()
			alice.expectRefused(mark, alice.send(text(cmid, "bob", s)), protocol.CodeContentRefused, cmid)
		}
		m := alice.sendOK(text("m1", "bob", "你这个坏蛋, Darn it!"))
		if ev := bob.nextMessage(); ev.Msg.Cmid != "m1" || ev.Msg.Body["text"] != "你这个**, **** it!" {
			t.Fatalf("bob got %v", ev)
		}
		// The retry, with what the client sent, is the stored message (3.1.1
		// sees no outcome of a retry [IM-4.5-2]).
		if dl.v5() {
			if again := alice.sendOK(text("m1", "bob", "你这个坏蛋, Darn it!")); again.ID != m.ID {
				t.Fatalf("retry stored as %+v, want %+v", again, m)
			}
		}
		// Edits: refused, or stored masked.
		alice.rpcErr(protocol.MethodEdit, protocol.MessageRequest{MsgID: m.ID, Body: map[string]any{"text": "法轮功"}}, protocol.CodeContentRefused)
		res := call[protocol.MessageResult](alice, protocol.MethodEdit, protocol.MessageRequest{MsgID: m.ID, Body: map[string]any{"text": "大坏蛋"}})
		if res.Msg.Body["text"] != "大**" {
			t.Fatalf("edit stored %v", res.Msg.Body)
		}
		// A notification over HTTP goes through the same filter.
		tok := bridgeToken(t, "ci")
		if status, res := postNotification(t, n, tok, map[string]any{"to": "bob", "cmid": "n1", "body": map[string]any{"text": "法轮功"}}); status != http.StatusUnprocessableEntity ||
			res["error"].(map[string]any)["code"] != protocol.CodeContentRefused {
			t.Fatalf("refused notification: %d %v", status, res)
		}
		if status, res := postNotification(t, n, tok, map[string]any{"to": "bob", "cmid": "n2", "body": map[string]any{"text": "build by 坏蛋"}}); status != http.StatusCreated {
			t.Fatalf("masked notification: %d %v", status, res)
		}
		var texts []string
		for _, msg := range bob.historyAll(m.Conv) {
			texts = append(texts, msg.Body["text"].(string))
		}
		if got := strings.Join(texts, "|"); got != "大**" {
			t.Fatalf("history of alice and bob: %q (nothing refused stored, the masked edit)", got)
		}
		if ev := bob.waitFrom(0, "notification n2", func(e event) bool { return e.Msg != nil && e.Msg.Cmid == "n2" }); ev.Msg.Body["text"] != "build by **" {
			t.Fatalf("notification delivered as %v", ev)
		}
	})
}

// hookReceiver is a fake before-send webhook: a real HTTP server that
// checks the signature and answers by the text: "deny …" denies, "replace"
// replaces, "hang" answers nothing until the client gives up.
func hookReceiver(t *testing.T, key []byte) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if protocol.VerifyWebhook(key, r.Header.Get(protocol.WebhookHeaderTimestamp), r.Header.Get(protocol.WebhookHeaderSignature), body, time.Now()) != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var req moderation.Request
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		text, _ := req.Body["text"].(string)
		switch {
		case strings.HasPrefix(text, "deny"):
			io.WriteString(w, `{"action":"deny","reason":"no links on Sundays"}`)
		case text == "replace":
			io.WriteString(w, `{"action":"replace","body":{"text":"[removed by moderation]"}}`)
		case text == "hang":
			<-r.Context().Done()
		case text == "garbage":
			io.WriteString(w, `{"verdict":"yes"}`)
		default:
			io.WriteString(w, `{"action":"allow"}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestModerationWebhook: the before-send webhook allows, denies with its
// reason (content_refused), replaces the body, and, when it hangs or
// answers garbage, refuses with unavailable (fail closed) or allows (fail
// open) after its timeout [IM-18.2].
func TestModerationWebhook(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		key := []byte("before-send test secret")
		hook := hookReceiver(t, key)
		withHook := func(failOpen bool) func(*server.Config) {
			return func(c *server.Config) {
				c.Moderation = server.Moderation{WebhookURL: hook.URL, WebhookSecret: key,
					WebhookTimeout: 300 * time.Millisecond, WebhookFailOpen: failOpen}
			}
		}
		n := startNode(t, be, withHook(false))
		alice := dl.dial(t, n, "alice")
		bob := dl.dial(t, n, "bob")

		alice.sendOK(text("a1", "bob", "hello"))
		mark := alice.mark()
		r := alice.send(text("d1", "bob", "deny this"))
		alice.expectRefused(mark, r, protocol.CodeContentRefused, "d1")
		if dl.v5() && r.Props["code"] != protocol.CodeContentRefused {
			t.Fatalf("PUBACK %+v", r)
		}
		alice.sendOK(text("p1", "bob", "replace"))
		for _, s := range []string{"hang", "garbage"} {
			mark := alice.mark()
			alice.expectRefused(mark, alice.send(text("f-"+s, "bob", s)), protocol.CodeUnavailable, "f-"+s)
		}
		if a, p := bob.nextMessage(), bob.nextMessage(); a.Msg.Cmid != "a1" || p.Msg.Cmid != "p1" || p.Msg.Body["text"] != "[removed by moderation]" {
			t.Fatalf("bob got %v, %v", a, p)
		}
		// Over HTTP too.
		if status, res := postNotification(t, n, bridgeToken(t, "ci"), map[string]any{"to": "bob", "cmid": "n1", "body": map[string]any{"text": "deny"}}); status != http.StatusUnprocessableEntity {
			t.Fatalf("denied notification: %d %v", status, res)
		}
		conv := protocol.DirectConv("alice", "bob")
		if got := len(bob.historyAll(conv)); got != 2 {
			t.Fatalf("%d messages stored, want the allowed and the replaced one", got)
		}

		// Failing open: what the webhook could not judge is stored as sent.
		open := startNode(t, be, withHook(true))
		carol := dl.dial(t, open, "carol")
		dave := dl.dial(t, open, "dave")
		carol.sendOK(text("h1", "dave", "hang"))
		carol.sendOK(text("g1", "dave", "garbage"))
		if h, g := dave.nextMessage(), dave.nextMessage(); h.Msg.Body["text"] != "hang" || g.Msg.Body["text"] != "garbage" {
			t.Fatalf("dave got %v, %v", h, g)
		}
	})
}

// TestModerationWebhookKeepsOrder [IM-18.2-5]: a connection's webhook calls
// run concurrently — the receiver holds the first answers until it has seen
// every request, which serialized calls would never reach — while its
// PUBACKs come in arrival order and its messages are committed in it.
func TestModerationWebhookKeepsOrder(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		const sends = 20
		key := []byte("before-send test secret")
		var mu sync.Mutex
		seen := 0
		all := make(chan struct{})
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var req moderation.Request
			_ = json.NewDecoder(r.Body).Decode(&req)
			mu.Lock()
			if seen++; seen == sends {
				close(all)
			}
			mu.Unlock()
			if req.Body["text"] == "wait" {
				select {
				case <-all:
				case <-r.Context().Done():
				}
			}
			io.WriteString(w, `{"action":"allow"}`)
		}))
		defer hook.Close()
		n := startNode(t, be, func(c *server.Config) {
			c.Moderation = server.Moderation{WebhookURL: hook.URL, WebhookSecret: key, WebhookTimeout: 20 * time.Second}
		})
		bob := dl.dial(t, n, "bob")
		raw, _ := dialRawOK(t, n, dl, "alice")
		for i := range sends {
			body := "go"
			if i%2 == 0 {
				body = "wait"
			}
			s := text(fmt.Sprintf("o%02d", i), "bob", body)
			raw.publish(uint16(i+1), protocol.SendTopic("alice"), mustEncode(t, protocol.JSON, &s))
		}
		for want := uint16(1); want <= sends; {
			pk := raw.read()
			if pk.FixedHeader.Type != packets.Puback {
				continue
			}
			if pk.PacketID != want || pk.ReasonCode != 0 {
				t.Fatalf("PUBACK for packet %d reason %#x, want packet %d, success", pk.PacketID, pk.ReasonCode, want)
			}
			want++
		}
		msgs := bob.historyAll(protocol.DirectConv("alice", "bob"))
		if len(msgs) != sends {
			t.Fatalf("%d messages stored, want %d", len(msgs), sends)
		}
		for i, m := range msgs {
			if want := fmt.Sprintf("o%02d", i); m.Cmid != want || m.Seq != int64(i+1) {
				t.Fatalf("seq %d is %s, want %s: not in arrival order", m.Seq, m.Cmid, want)
			}
		}
	})
}
