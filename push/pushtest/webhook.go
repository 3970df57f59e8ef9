package pushtest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/push"
)

// Webhook is a receiver of the webhook provider's posts: it checks the
// signature and the timestamp (at most 5 minutes old).
type Webhook struct {
	*recorder
	Server *httptest.Server
	Secret []byte

	mu   sync.Mutex
	errs []string
}

// NewWebhook starts the receiver; the test's cleanup stops it.
func NewWebhook(t testing.TB) *Webhook {
	h := &Webhook{recorder: newRecorder(), Secret: []byte("pushtest-webhook-secret")} // mqimd wants at least 16 bytes
	h.Server = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.Server.Close)
	return h
}

// Config is the provider's configuration for this receiver.
func (h *Webhook) Config() push.WebhookConfig {
	return push.WebhookConfig{URL: h.Server.URL + "/push", Secret: h.Secret}
}

// Errors returns the bad requests the receiver saw.
func (h *Webhook) Errors() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.errs...)
}

func (h *Webhook) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 8192))
	if err == nil {
		err = protocol.VerifyWebhook(h.Secret, r.Header.Get(protocol.WebhookHeaderTimestamp), r.Header.Get(protocol.WebhookHeaderSignature), body, time.Now())
	}
	if err != nil {
		h.mu.Lock()
		h.errs = append(h.errs, "bad signature")
		h.mu.Unlock()
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var p protocol.WebhookPush
	if err := json.Unmarshal(body, &p); err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	if ans, ok := h.answerFor(p.Token); ok {
		http.Error(w, ans.Reason, ans.Status)
		return
	}
	h.accept(Notification{Token: p.Token, CollapseID: p.CollapseID, Title: p.Title, Body: p.Body, Conv: p.Conv, Seq: p.Seq,
		Unread: p.Unread, Badge: p.Badge})
	w.WriteHeader(http.StatusNoContent)
}
