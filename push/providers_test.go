package push_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/mqim/mqim/push"
	"github.com/mqim/mqim/push/pushtest"
	"github.com/mqim/mqim/store"
)

func note(platform, token, app string) *push.Notification {
	return &push.Notification{
		Device: store.PushDevice{User: "bob", Client: "bob-phone", Platform: platform, Token: token, App: app, Env: "sandbox"},
		Title:  "alice", Body: "hi", CollapseID: "d:alice:bob", Conv: "d:alice:bob", Seq: 3, Unread: 2, Badge: 5,
		Kind: "message", Expires: time.Now().Add(time.Hour),
	}
}

func outcome(t *testing.T, err error, want push.Outcome, reason string) *push.SendError {
	t.Helper()
	var se *push.SendError
	if !errors.As(err, &se) || se.Outcome != want || se.Reason != reason {
		t.Fatalf("send: %v, want outcome %d reason %q", err, want, reason)
	}
	return se
}

func TestAPNs(t *testing.T) {
	fake := pushtest.NewAPNs(t)
	p, err := push.NewAPNs(fake.Config())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for i := range 2 {
		if err := p.Send(ctx, note("apns", "tok1", fake.Topic)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	got := fake.Accepted()
	if len(got) != 2 || got[0] != (pushtest.Notification{Token: "tok1", CollapseID: "d:alice:bob", Title: "alice", Body: "hi",
		Conv: "d:alice:bob", Seq: 3, Unread: 2, Badge: 5}) {
		t.Fatalf("accepted %+v", got)
	}
	if n := fake.ProviderTokens(); n != 1 {
		t.Fatalf("%d provider tokens for two sends, want one (reused)", n)
	}
	// The provider's errors, as Apple sends them.
	fake.Refuse("gone", pushtest.Answer{Status: 410, Reason: "Unregistered"})
	fake.Refuse("bad", pushtest.Answer{Status: 400, Reason: "BadDeviceToken"})
	fake.Refuse("busy", pushtest.Answer{Status: 429, Reason: "TooManyRequests", RetryAfter: "3"})
	fake.Refuse("down", pushtest.Answer{Status: 500, Reason: "InternalServerError"})
	outcome(t, p.Send(ctx, note("apns", "gone", fake.Topic)), push.Remove, "Unregistered")
	outcome(t, p.Send(ctx, note("apns", "bad", fake.Topic)), push.Remove, "BadDeviceToken")
	if se := outcome(t, p.Send(ctx, note("apns", "busy", fake.Topic)), push.Retry, "TooManyRequests"); se.RetryAfter != 3*time.Second {
		t.Fatalf("Retry-After %v", se.RetryAfter)
	}
	outcome(t, p.Send(ctx, note("apns", "down", fake.Topic)), push.Retry, "InternalServerError")
	outcome(t, p.Send(ctx, note("apns", "tok1", "com.other")), push.Drop, "BadTopic")
	if errs := fake.Errors(); len(errs) != 1 {
		t.Fatalf("fake saw %v, want only the bad topic", errs)
	}
	// The fake speaks HTTP/2 only.
	h1 := fake.Server.Client().Transport.(*http.Transport).Clone()
	h1.ForceAttemptHTTP2 = false
	h1.TLSClientConfig.NextProtos = []string{"http/1.1"}
	if resp, err := (&http.Client{Transport: h1}).Post(fake.Server.URL+"/3/device/x", "application/json", nil); err == nil {
		resp.Body.Close()
		t.Fatalf("HTTP/1.1 request answered %s", resp.Status)
	}
}

func TestAPNsBadKey(t *testing.T) {
	fake := pushtest.NewAPNs(t)
	cfg := fake.Config()
	cfg.KeyFile = pushtest.NewFCM(t).KeyFile // JSON, not a .p8
	if _, err := push.NewAPNs(cfg); err == nil {
		t.Fatal("a key file that is no .p8 was taken")
	}
	// A token signed by another key is refused by the fake (it checks).
	other := pushtest.NewAPNs(t)
	cfg = fake.Config()
	cfg.KeyFile = other.KeyFile
	p, err := push.NewAPNs(cfg)
	if err != nil {
		t.Fatal(err)
	}
	outcome(t, p.Send(t.Context(), note("apns", "t", fake.Topic)), push.Drop, "InvalidProviderToken")
}

func TestFCM(t *testing.T) {
	fake := pushtest.NewFCM(t)
	p, err := push.NewFCM(fake.Config())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for i := range 2 {
		if err := p.Send(ctx, note("fcm", "ftok", "")); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if got := fake.Accepted(); len(got) != 2 || got[1] != (pushtest.Notification{Token: "ftok", CollapseID: "d:alice:bob",
		Title: "alice", Body: "hi", Conv: "d:alice:bob", Seq: 3, Unread: 2, Badge: 5}) {
		t.Fatalf("accepted %+v", got)
	}
	if n := fake.Exchanges(); n != 1 {
		t.Fatalf("%d token exchanges for two sends, want one (cached)", n)
	}
	fake.Refuse("gone", pushtest.Answer{Status: 404, Reason: "UNREGISTERED"})
	fake.Refuse("busy", pushtest.Answer{Status: 429, Reason: "QUOTA_EXCEEDED", RetryAfter: "7"})
	fake.Refuse("down", pushtest.Answer{Status: 500})
	fake.Refuse("bad", pushtest.Answer{Status: 400, Reason: "INVALID_ARGUMENT"})
	outcome(t, p.Send(ctx, note("fcm", "gone", "")), push.Remove, "UNREGISTERED")
	if se := outcome(t, p.Send(ctx, note("fcm", "busy", "")), push.Retry, "QUOTA_EXCEEDED"); se.RetryAfter != 7*time.Second {
		t.Fatalf("Retry-After %v", se.RetryAfter)
	}
	outcome(t, p.Send(ctx, note("fcm", "down", "")), push.Retry, "INTERNAL")
	outcome(t, p.Send(ctx, note("fcm", "bad", "")), push.Drop, "INVALID_ARGUMENT")
	if errs := fake.Errors(); len(errs) != 0 {
		t.Fatalf("fake saw %v", errs)
	}
}

func TestFCMTokenEndpointRefuses(t *testing.T) {
	fake := pushtest.NewFCM(t)
	cfg := fake.Config()
	cfg.KeyFile = pushtest.NewFCM(t).KeyFile // another account's key: its token_uri is another fake
	p, err := push.NewFCM(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The other fake issues the token, this one does not know it.
	outcome(t, p.Send(t.Context(), note("fcm", "t", "")), push.Drop, "UNAUTHENTICATED")
}

func TestWebhook(t *testing.T) {
	recv := pushtest.NewWebhook(t)
	p := push.NewWebhook(recv.Config())
	ctx := t.Context()
	if err := p.Send(ctx, note("webhook", "hook-1", "huawei")); err != nil {
		t.Fatal(err)
	}
	if got := recv.Accepted(); len(got) != 1 || got[0].Token != "hook-1" || got[0].Unread != 2 || got[0].Badge != 5 {
		t.Fatalf("accepted %+v", got)
	}
	recv.Refuse("gone", pushtest.Answer{Status: 410, Reason: "gone"})
	recv.Refuse("down", pushtest.Answer{Status: 502, Reason: "bad gateway"})
	outcome(t, p.Send(ctx, note("webhook", "gone", "")), push.Remove, "410")
	outcome(t, p.Send(ctx, note("webhook", "down", "")), push.Retry, "502")
	// A wrong secret is refused by the receiver (it checks), and retried.
	cfg := recv.Config()
	cfg.Secret = []byte("wrong")
	outcome(t, push.NewWebhook(cfg).Send(ctx, note("webhook", "hook-1", "")), push.Retry, "401")
	if errs := recv.Errors(); len(errs) != 1 {
		t.Fatalf("receiver saw %v", errs)
	}
}
