package bridge_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mqim/mqim/clients/bridge"
	"github.com/mqim/mqim/clients/sdk"
	"github.com/mqim/mqim/internal/testnode"
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/protocol/authtoken"
)

var secret = []byte("bridge-test-secret")

func mint(t *testing.T, user, role string) string {
	t.Helper()
	tok, err := authtoken.Mint(secret, user, role, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// next waits for the next message event of c.
func next(t *testing.T, c *sdk.Client) sdk.Event {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev := <-c.Events():
			if ev.Kind == sdk.KindMessage {
				return ev
			}
		case <-timeout:
			t.Fatal("no message event")
		}
	}
}

// [IM-4.6] A bridge account notifies a user over MQTT; the notification is
// stored in their direct conversation, pushed live, synced, deduplicated
// by cmid; other users may not publish notifications.
func TestNotifyMQTT(t *testing.T) {
	testnode.ForEachBackend(t, testNotifyMQTT)
}

func testNotifyMQTT(t *testing.T, backend testnode.Backend) {
	ctx := context.Background()
	n := testnode.Start(t, testnode.NewDB(t, backend), secret, slog.New(slog.NewTextHandler(io.Discard, nil)))
	alice, err := sdk.Dial(ctx, sdk.Config{Server: n.MQTTAddr(), User: "alice", Token: mint(t, "alice", "")})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	<-alice.CaughtUp()

	b, err := bridge.Dial(ctx, bridge.Config{Server: n.MQTTAddr(), User: "sys.alerts", Token: mint(t, "sys.alerts", authtoken.RoleBridge)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	body := map[string]any{"text": "disk almost full", "severity": "warn"}
	sent, err := b.Notify(ctx, "alice", "n-1", body)
	if err != nil {
		t.Fatal(err)
	}
	if sent.Conv != protocol.DirectConv("alice", "sys.alerts") || sent.Seq != 1 {
		t.Errorf("sent %+v", sent)
	}
	ev := next(t, alice)
	if ev.Msg == nil || ev.Msg.Type != protocol.TypeSystem || ev.Msg.From != "sys.alerts" || ev.Msg.Body["text"] != "disk almost full" {
		t.Fatalf("event %+v", ev)
	}
	// A retry stores nothing new.
	again, err := b.Notify(ctx, "alice", "n-1", body)
	if err != nil || again.ID != sent.ID || again.Seq != sent.Seq {
		t.Errorf("retry: %+v, %v; want %+v", again, err, sent)
	}
	res, err := alice.Sync(ctx, 0, 100)
	if err != nil || len(res.Events) != 1 || res.Events[0].Msg.Type != protocol.TypeSystem {
		t.Errorf("sync: %+v, %v", res, err)
	}

	refused := func(name string, err error, code string) {
		t.Helper()
		var be *bridge.Error
		if !errors.As(err, &be) || be.Code != code {
			t.Errorf("%s: %v, want %s", name, err, code)
		}
	}
	_, err = b.Notify(ctx, "nobody", "n-2", body)
	refused("unknown user", err, protocol.CodeUnknownUser)
	// A user's token is not a bridge's.
	u, err := bridge.Dial(ctx, bridge.Config{Server: n.MQTTAddr(), User: "mallory", Token: mint(t, "mallory", "")})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	_, err = u.Notify(ctx, "alice", "n-3", body)
	refused("user on the notify topic", err, protocol.CodeNotAuthorized)
	// Nor may a user send type system on its send topic.
	_, err = alice.Send(ctx, "sys.alerts", protocol.TypeSystem, body)
	var se *sdk.Error
	if !errors.As(err, &se) || se.Code != protocol.CodeUnknownType {
		t.Errorf("user sending type system: %v", err)
	}
}

// [IM-8.1-6] POST /v1/notifications with a bridge or admin token.
func TestNotifyHTTP(t *testing.T) {
	testnode.ForEachBackend(t, testNotifyHTTP)
}

func testNotifyHTTP(t *testing.T, backend testnode.Backend) {
	ctx := context.Background()
	n := testnode.Start(t, testnode.NewDB(t, backend), secret, slog.New(slog.NewTextHandler(io.Discard, nil)))
	bob, err := sdk.Dial(ctx, sdk.Config{Server: n.MQTTAddr(), User: "bob", Token: mint(t, "bob", "")})
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	<-bob.CaughtUp()

	post := func(token, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+n.HTTPAddr()+"/v1/notifications", strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	br, admin := mint(t, "ci.bot", authtoken.RoleBridge), mint(t, "ops", authtoken.RoleAdmin)
	status, out := post(br, `{"to":"bob","cmid":"build-42","body":{"text":"build 42 passed"}}`)
	if status != 201 || out["conv"] != "d:bob:ci.bot" || out["seq"] != 1.0 {
		t.Fatalf("bridge: %d %v", status, out)
	}
	ev := next(t, bob)
	if ev.Msg.Type != protocol.TypeSystem || ev.Msg.From != "ci.bot" || ev.Msg.Body["text"] != "build 42 passed" {
		t.Errorf("event %+v", ev)
	}
	if status, out := post(br, `{"to":"bob","cmid":"build-42","body":{"text":"build 42 passed"}}`); status != 200 || out["duplicate"] != true {
		t.Errorf("retry: %d %v", status, out)
	}
	if status, out := post(admin, `{"from":"system","to":"bob","body":{"text":"maintenance at 22:00"}}`); status != 201 || out["conv"] != "d:bob:system" {
		t.Errorf("admin: %d %v", status, out)
	}
	if ev := next(t, bob); ev.Msg.From != "system" {
		t.Errorf("admin's notification: %+v", ev)
	}
	for _, c := range []struct {
		name, token, body string
		status            int
		code              string
	}{
		{"no token", "", `{"to":"bob","body":{}}`, 401, "not_authorized"},
		{"user token", mint(t, "bob", ""), `{"to":"ci.bot","body":{}}`, 403, "not_authorized"},
		{"bridge as another", br, `{"from":"system","to":"bob","body":{}}`, 403, "not_authorized"},
		{"unknown user", br, `{"to":"nobody","body":{}}`, 404, "unknown_user"},
		{"cmid reused", br, `{"to":"bob","cmid":"build-42","body":{"text":"other"}}`, 409, "cmid_conflict"},
		{"not system", br, `{"to":"bob","type":"text","body":{"text":"x"}}`, 400, "bad_request"},
		{"no body", br, `{"to":"bob"}`, 400, "bad_request"},
		{"not json", br, `hello`, 400, "bad_payload"},
	} {
		status, out := post(c.token, c.body)
		e, _ := out["error"].(map[string]any)
		if status != c.status || e["code"] != c.code {
			t.Errorf("%s: %d %v, want %d %s", c.name, status, out, c.status, c.code)
		}
	}
}

// [IM-4.6-5] A bridge that is no member notifies a group: every member
// gets a system message from the bridge in the group's timeline; a retry
// stores nothing new; an unknown group and a mention of a non-member are
// refused.
func TestNotifyGroup(t *testing.T) {
	testnode.ForEachBackend(t, testNotifyGroup)
}

func testNotifyGroup(t *testing.T, backend testnode.Backend) {
	ctx := context.Background()
	n := testnode.Start(t, testnode.NewDB(t, backend), secret, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var users []*sdk.Client
	for _, u := range []string{"alice", "bob"} {
		c, err := sdk.Dial(ctx, sdk.Config{Server: n.MQTTAddr(), User: u, Token: mint(t, u, "")})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		<-c.CaughtUp()
		users = append(users, c)
	}
	g, err := users[0].CreateGroup(ctx, "ops", []string{"bob"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := bridge.Dial(ctx, bridge.Config{Server: n.MQTTAddr(), User: "ci.bot", Token: mint(t, "ci.bot", authtoken.RoleBridge)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	body := map[string]any{"text": "v1.7 deployed"}
	sent, err := b.NotifyGroup(ctx, g.Group, "deploy-7", body, "*")
	if err != nil {
		t.Fatal(err)
	}
	if sent.Conv != g.Group || sent.Seq != 2 || sent.ID == 0 {
		t.Errorf("sent %+v", sent)
	}
	for _, c := range users {
		ev := next(t, c)
		for ev.Msg != nil && ev.Msg.Type == protocol.TypeGroup {
			ev = next(t, c) // the create event
		}
		if ev.Conv != g.Group || ev.Msg == nil || ev.Msg.Type != protocol.TypeSystem || ev.Msg.From != "ci.bot" ||
			ev.Msg.Body["text"] != "v1.7 deployed" || len(ev.Msg.Mentions) != 1 {
			t.Fatalf("%s: event %+v", c.User(), ev)
		}
	}
	if again, err := b.NotifyGroup(ctx, g.Group, "deploy-7", body, "*"); err != nil || again != sent {
		t.Errorf("retry: %+v, %v; want %+v", again, err, sent)
	}
	var be *bridge.Error
	if _, err := b.NotifyGroup(ctx, "g:404", "deploy-8", body); !errors.As(err, &be) || be.Code != protocol.CodeUnknownGroup {
		t.Errorf("unknown group: %v", err)
	}
	if _, err := b.NotifyGroup(ctx, g.Group, "deploy-9", body, "carol"); !errors.As(err, &be) || be.Code != protocol.CodeBadRequest {
		t.Errorf("mention of a non-member: %v", err)
	}
}
