package push

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/mqim/mqim/internal/webhookclient"
	"github.com/mqim/mqim/protocol"
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
		// Keep a connection per worker: the default keeps two idle per
		// host, and over HTTP/1.1 every other post would open a new one.
		cfg.Client = webhookclient.New(64, 15*time.Second)
	}
	return &Webhook{cfg: cfg}
}

// Send posts n. 2xx is sent; 410 Gone removes the registration; anything
// else is retried.
func (w *Webhook) Send(ctx context.Context, n *Notification) error {
	d := n.Device
	body, err := json.Marshal(protocol.WebhookPush{User: d.User, Client: d.Client, Token: d.Token, App: d.App, Locale: d.Locale,
		Title: n.Title, Body: n.Body, CollapseID: n.CollapseID, Conv: n.Conv, Seq: n.Seq, Unread: n.Unread, Badge: n.Badge,
		Kind: n.Kind, Expires: n.Expires.Unix()})
	if err != nil {
		return &SendError{Outcome: Drop, Reason: "encode", Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return &SendError{Outcome: Drop, Reason: "request", Err: err}
	}
	ts, sig := protocol.WebhookSignature(w.cfg.Secret, body, time.Now())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(protocol.WebhookHeaderTimestamp, ts)
	req.Header.Set(protocol.WebhookHeaderSignature, sig)
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
