package webhookclient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A redirect is answered as it is, not followed; an error names no URL.
func TestNoRedirectsNoURLs(t *testing.T) {
	followed := false
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { followed = true }))
	defer target.Close()
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusPermanentRedirect)
	}))
	defer hook.Close()
	c := New(4, 0)
	resp, err := c.Post(hook.URL, "application/json", strings.NewReader(`{"token":"secret"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPermanentRedirect || followed {
		t.Fatalf("status %d, followed %v; want the 308 itself, not followed", resp.StatusCode, followed)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL+"/?key=hunter2", nil)
	_, err = c.Do(req)
	if err == nil || strings.Contains(Redact(err).Error(), "hunter2") || !strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error %v, redacted %v; want the key only in the unredacted one", err, Redact(err))
	}
}
