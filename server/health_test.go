package server_test

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mqim/mqim/internal/testnode"
	"github.com/mqim/mqim/internal/testpg"
)

// [IM-8.1-1]: /healthz is readiness, 503 once the store has not answered
// for a while, 200 again when it is back; /livez stays 200.
func TestReadinessFollowsTheStore(t *testing.T) {
	pg := testpg.StartServer(t)
	n := testnode.Start(t, testnode.DB{Backend: testnode.Postgres, URL: pg.URL()}, []byte("health-test"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + n.HTTPAddr() + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	waitFor := func(path string, status int) string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, body := get(path)
			if code == status {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s: %d %q, want %d", path, code, body, status)
			}
			time.Sleep(50 * time.Millisecond) // a poll interval
		}
	}
	waitFor("/healthz", 200)
	pg.Stop(true)
	if body := waitFor("/healthz", 503); body != "store unreachable" {
		t.Fatalf("/healthz while PostgreSQL is down: %q", body)
	}
	if code, _ := get("/livez"); code != 200 {
		t.Fatalf("/livez while PostgreSQL is down: %d", code)
	}
	pg.Start()
	waitFor("/healthz", 200)
}
