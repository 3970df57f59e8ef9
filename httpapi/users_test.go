package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mqim/mqim/internal/testnode"
	"github.com/mqim/mqim/protocol/authtoken"
)

// [IM-8] POST /v1/users with an admin token, on both stores.
func TestCreateUser(t *testing.T) {
	testnode.ForEachBackend(t, testCreateUser)
}

func testCreateUser(t *testing.T, be testnode.Backend) {
	secret := []byte("http-test")
	n := testnode.Start(t, testnode.NewDB(t, be), secret, slog.New(slog.NewTextHandler(io.Discard, nil)))
	mint := func(user, role string) string {
		tok, err := authtoken.Mint(secret, user, role, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	admin, user := mint("ops", authtoken.RoleAdmin), mint("alice", "")
	other, _ := authtoken.Mint([]byte("other secret"), "ops", authtoken.RoleAdmin, time.Hour)
	cases := []struct {
		name, token, body string
		status            int
		code              string
	}{
		{"created", admin, `{"id":"bob"}`, 201, ""},
		{"exists", admin, `{"id":"bob"}`, 200, ""},
		{"no token", "", `{"id":"carol"}`, 401, "not_authorized"},
		{"bad signature", other, `{"id":"carol"}`, 401, "not_authorized"},
		{"not admin", user, `{"id":"carol"}`, 403, "not_authorized"},
		{"invalid id", admin, `{"id":"bob/1"}`, 400, "bad_request"},
		{"not json", admin, `bob`, 400, "bad_payload"},
	}
	for _, c := range cases {
		req, _ := http.NewRequest("POST", "http://"+n.HTTPAddr()+"/v1/users", strings.NewReader(c.body))
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			ID    string                `json:"id"`
			Error struct{ Code string } `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != c.status || body.Error.Code != c.code {
			t.Errorf("%s: status %d code %q, want %d %q", c.name, resp.StatusCode, body.Error.Code, c.status, c.code)
		}
	}
	for user, want := range map[string]bool{"bob": true, "carol": false} {
		if ok, err := n.Store.UserExists(context.Background(), user); err != nil || ok != want {
			t.Errorf("UserExists(%s) = %v, %v; want %v", user, ok, err, want)
		}
	}
	resp, err := http.Get("http://" + n.HTTPAddr() + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = http.Get("http://" + n.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "mqim_sends_total") && !strings.Contains(string(b), "mqim_commit_batch_size") {
		t.Errorf("/metrics lacks mqim metrics:\n%.500s", b)
	}
}
