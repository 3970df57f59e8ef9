package push

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/mqim/mqim/internal/webhooksig"
)

// Webhook signature headers [IM-17.5-3].
const (
	HeaderTimestamp = webhooksig.HeaderTimestamp
	HeaderSignature = webhooksig.HeaderSignature
)

// WebhookConfig configures the webhook provider.
type WebhookConfig struct {
	URL    string
	Secret []byte
	Client *http.Client // nil: a client with a 15 s timeout
}

// Webhook posts a signed JSON document per notification, for vendor
// channels (Huawei, Xiaomi, OPPO, vivo) and custom gateways.
type Webhook struct {
	cfg WebhookConfig
}

// NewWebhook returns the provider.
func NewWebhook(cfg WebhookConfig) *Webhook {
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 15 * time.Second}
	}
	return &Webhook{cfg: cfg}
}

// WebhookPayload is the document posted.
type WebhookPayload struct {
	User       string `json:"user"`
	Client     string `json:"client"`
	Token      string `json:"token"`
	App        string `json:"app,omitempty"`
	Locale     string `json:"locale,omitempty"`
	Title      string `json:"title,omitempty"`
	Body       string `json:"body,omitempty"`
	CollapseID string `json:"collapse_id"`
	Conv       string `json:"conv"`
	Seq        int64  `json:"seq"`
	Unread     int64  `json:"unread"`
	Badge      int64  `json:"badge"`
	Kind       string `json:"kind"`
	Expires    int64  `json:"expires"` // unix seconds
}

// Sign returns the signature of body at ts (unix seconds): hex
// HMAC-SHA256 over "ts.body", prefixed "v1=". Receivers compute the same
// and refuse an old timestamp.
func Sign(secret []byte, ts int64, body []byte) string { return webhooksig.Sign(secret, ts, body) }

// Send posts n. 2xx is sent; 410 Gone removes the registration; anything
// else is retried.
func (w *Webhook) Send(ctx context.Context, n *Notification) error {
	d := n.Device
	body, err := json.Marshal(WebhookPayload{User: d.User, Client: d.Client, Token: d.Token, App: d.App, Locale: d.Locale,
		Title: n.Title, Body: n.Body, CollapseID: n.CollapseID, Conv: n.Conv, Seq: n.Seq, Unread: n.Unread, Badge: n.Badge,
		Kind: n.Kind, Expires: n.Expires.Unix()})
	if err != nil {
		return &SendError{Outcome: Drop, Reason: "encode", Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return &SendError{Outcome: Drop, Reason: "request", Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	webhooksig.SetHeaders(req.Header, w.cfg.Secret, body, time.Now())
	resp, err := w.cfg.Client.Do(req)
	if err != nil {
		return transportError(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusGone:
		return &SendError{Outcome: Remove, Reason: "410"}
	}
	se := statusError(resp.StatusCode, "", resp.Header)
	se.Outcome = Retry // non-2xx is retried [IM-17.5-3]
	return se
}
