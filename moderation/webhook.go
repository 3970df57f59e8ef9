package moderation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mqim/mqim/im"
	"github.com/mqim/mqim/internal/webhookclient"
	"github.com/mqim/mqim/protocol"
)

// Defaults of WebhookConfig.
const (
	DefaultWebhookTimeout = time.Second
	// maxVerdictBytes bounds the answer read; a longer one is garbage.
	maxVerdictBytes = 1 << 20
)

// WebhookConfig configures the before-send webhook client [IM-18.2].
type WebhookConfig struct {
	URL    string // http or https
	Secret []byte // signs every request (protocol.WebhookSignature); at least 16 bytes
	// Timeout bounds one call, connection included; zero: 1 s.
	Timeout time.Duration
	// FailOpen allows what the webhook could not judge (timeout, an
	// error, an answer that is not a verdict); otherwise it is refused
	// with unavailable, which devices retry.
	FailOpen   bool
	Client     *http.Client // nil: one for this webhook, without redirects
	Log        *slog.Logger
	Registerer prometheus.Registerer
}

// Webhook asks an external service about each send, notification and
// edit before it is stored. It implements im.BeforeSend.
type Webhook struct {
	cfg      WebhookConfig
	seconds  prometheus.Histogram
	results  *prometheus.CounterVec
	lastWarn atomic.Int64 // unix nanoseconds of the last failure logged
}

// NewWebhook checks the configuration.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("moderation: webhook URL %q is not an http(s) URL", cfg.URL)
	}
	if len(cfg.Secret) < 16 {
		return nil, errors.New("moderation: the webhook secret must be at least 16 bytes")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultWebhookTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Client == nil {
		cfg.Client = webhookclient.New(256, 0) // calls run concurrently; keep their connections
	}
	w := &Webhook{cfg: cfg,
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "mqim_moderation_webhook_seconds",
			Help:    "Duration of before-send webhook calls, answered or not.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mqim_moderation_webhook_requests_total",
			Help: "Before-send webhook calls by result (allow, deny, replace; timeout, error, invalid: no verdict)."}, []string{"result"}),
	}
	for _, r := range []string{ActionAllow, ActionDeny, ActionReplace, "timeout", "error", "invalid"} {
		w.results.WithLabelValues(r) // served from the start, at 0
	}
	if cfg.Registerer != nil {
		if err := errors.Join(cfg.Registerer.Register(w.seconds), cfg.Registerer.Register(w.results)); err != nil {
			return nil, fmt.Errorf("moderation: register metrics: %w", err)
		}
	}
	return w, nil
}

// Request is the document posted to the webhook [IM-18.2-2].
type Request struct {
	Kind     string         `json:"kind"`
	From     string         `json:"from"`
	Client   string         `json:"client,omitempty"`
	Cmid     string         `json:"cmid,omitempty"`
	To       string         `json:"to,omitempty"`
	Group    string         `json:"group,omitempty"`
	MsgID    string         `json:"msg_id,omitempty"` // edits, decimal
	Type     string         `json:"type,omitempty"`
	Body     map[string]any `json:"body"`
	Mentions []string       `json:"mentions,omitempty"`
	TS       int64          `json:"ts"` // unix milliseconds
}

// Verdict is the webhook's answer [IM-18.2-3].
type Verdict struct {
	Action string          `json:"action"` // allow, deny or replace
	Reason string          `json:"reason,omitempty"`
	Body   json.RawMessage `json:"body,omitempty"`
}

// Actions of a Verdict.
const (
	ActionAllow   = "allow"
	ActionDeny    = "deny"
	ActionReplace = "replace"
)

// errNoVerdict wraps every failure to get a verdict.
var errNoVerdict = errors.New("before-send webhook gave no verdict")

// BeforeSend asks the webhook about req. Without a verdict it allows when
// failing open, and returns an error otherwise.
func (w *Webhook) BeforeSend(ctx context.Context, req *im.HookRequest) (im.HookVerdict, error) {
	start := time.Now()
	v, result, err := w.ask(ctx, req)
	w.seconds.Observe(time.Since(start).Seconds())
	w.results.WithLabelValues(result).Inc()
	if err == nil {
		return v, nil
	}
	w.warn(result, err)
	if w.cfg.FailOpen {
		return im.HookVerdict{}, nil
	}
	return im.HookVerdict{}, err
}

// warn logs a failure, at most once a second: a webhook that is down fails
// every send. Never the body.
func (w *Webhook) warn(result string, err error) {
	now := time.Now().UnixNano()
	last := w.lastWarn.Load()
	if now-last < int64(time.Second) || !w.lastWarn.CompareAndSwap(last, now) {
		return
	}
	policy := "refused with unavailable (fail closed)"
	if w.cfg.FailOpen {
		policy = "allowed (fail open)"
	}
	w.cfg.Log.Warn("before-send webhook failed; "+policy, "result", result, "error", err)
}

func (w *Webhook) ask(ctx context.Context, req *im.HookRequest) (im.HookVerdict, string, error) {
	doc := Request{Kind: req.Kind, From: req.From, Client: req.Client, Cmid: req.Cmid, To: req.To, Group: req.Group,
		Type: req.Type, Body: req.Body, Mentions: req.Mentions, TS: time.Now().UnixMilli()}
	if req.MsgID != 0 {
		doc.MsgID = strconv.FormatInt(req.MsgID, 10)
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return im.HookVerdict{}, "error", fmt.Errorf("%w: encode the request: %v", errNoVerdict, err)
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return im.HookVerdict{}, "error", fmt.Errorf("%w: %v", errNoVerdict, err)
	}
	hr.Header.Set("Content-Type", "application/json")
	ts, sig := protocol.WebhookSignature(w.cfg.Secret, body, time.Now())
	hr.Header.Set(protocol.WebhookHeaderTimestamp, ts)
	hr.Header.Set(protocol.WebhookHeaderSignature, sig)
	resp, err := w.cfg.Client.Do(hr)
	if err != nil {
		if ctx.Err() != nil {
			return im.HookVerdict{}, "timeout", fmt.Errorf("%w: no answer within %v", errNoVerdict, w.cfg.Timeout)
		}
		return im.HookVerdict{}, "error", fmt.Errorf("%w: %v", errNoVerdict, webhookclient.Redact(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxVerdictBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			return im.HookVerdict{}, "timeout", fmt.Errorf("%w: no answer within %v", errNoVerdict, w.cfg.Timeout)
		}
		return im.HookVerdict{}, "error", fmt.Errorf("%w: read the answer: %v", errNoVerdict, err)
	}
	if resp.StatusCode != http.StatusOK {
		return im.HookVerdict{}, "error", fmt.Errorf("%w: HTTP status %d", errNoVerdict, resp.StatusCode)
	}
	v, err := parseVerdict(data)
	if err != nil {
		return im.HookVerdict{}, "invalid", fmt.Errorf("%w: %v", errNoVerdict, err)
	}
	return v, verdictResult(v), nil
}

func verdictResult(v im.HookVerdict) string {
	switch {
	case v.Deny:
		return ActionDeny
	case v.Body != nil:
		return ActionReplace
	}
	return ActionAllow
}

// parseVerdict reads an answer; anything but a verdict is an error.
func parseVerdict(data []byte) (im.HookVerdict, error) {
	if len(data) > maxVerdictBytes {
		return im.HookVerdict{}, fmt.Errorf("the answer is over %d bytes", maxVerdictBytes)
	}
	var v Verdict
	if err := protocol.Decode(protocol.JSON, data, &v); err != nil {
		return im.HookVerdict{}, fmt.Errorf("the answer is not a verdict object: %v", err)
	}
	switch v.Action {
	case ActionAllow:
		return im.HookVerdict{}, nil
	case ActionDeny:
		return im.HookVerdict{Deny: true, Reason: v.Reason}, nil
	case ActionReplace:
		var body map[string]any
		if err := protocol.Decode(protocol.JSON, v.Body, &body); err != nil || body == nil {
			return im.HookVerdict{}, errors.New("replace without a body object")
		}
		return im.HookVerdict{Body: body}, nil
	}
	return im.HookVerdict{}, fmt.Errorf("unknown action %q", v.Action)
}
