package protocol

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"time"
)

// Push registration RPC methods [IM-17.1].
const (
	MethodPushRegister   = "push.register"
	MethodPushUnregister = "push.unregister"
	MethodPushList       = "push.list"
)

// PushRegisterRequest registers the requesting device (its MQTT client id)
// for offline push [IM-17.1-1].
type PushRegisterRequest struct {
	Platform string `json:"platform" msgpack:"platform"`                 // apns, fcm or webhook
	Token    string `json:"token" msgpack:"token"`                       // the provider's device token
	App      string `json:"app,omitempty" msgpack:"app,omitempty"`       // APNs topic (bundle id); FCM/webhook: the app or channel
	Env      string `json:"env,omitempty" msgpack:"env,omitempty"`       // APNs: sandbox or production (default)
	Locale   string `json:"locale,omitempty" msgpack:"locale,omitempty"` // e.g. en-GB
}

// PushDevice describes a registration (push.register's result, push.list).
// The token is not returned, only its last characters.
type PushDevice struct {
	Client    string `json:"client" msgpack:"client"`
	Platform  string `json:"platform" msgpack:"platform"`
	TokenHint string `json:"token_hint" msgpack:"token_hint"`
	App       string `json:"app,omitempty" msgpack:"app,omitempty"`
	Env       string `json:"env,omitempty" msgpack:"env,omitempty"`
	Locale    string `json:"locale,omitempty" msgpack:"locale,omitempty"`
	Created   int64  `json:"created" msgpack:"created"` // unix ms
}

// PushUnregisterResult answers push.unregister.
type PushUnregisterResult struct {
	Removed bool `json:"removed" msgpack:"removed"`
}

// PushListResult answers push.list.
type PushListResult struct {
	Devices []PushDevice `json:"devices" msgpack:"devices"`
}

// The webhook requests mqimd makes — the push provider's [IM-17.5-3], a
// POST of a WebhookPush, and the before-send webhook's [IM-18.2-2] — are
// signed with these headers. Here (not in push/) so that receivers — gateways,
// the benchmark — check it without the server's packages.
const (
	WebhookHeaderTimestamp = "X-Mqim-Timestamp" // unix seconds
	WebhookHeaderSignature = "X-Mqim-Signature" // "v1=" hex HMAC-SHA256 of timestamp "." body
	// WebhookMaxAge is how old (or how far ahead) a timestamp a receiver
	// accepts.
	WebhookMaxAge = 5 * time.Minute
)

// WebhookPush is the document the webhook provider posts.
type WebhookPush struct {
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

// SignWebhook returns the signature of body at ts (unix seconds): "v1="
// and the hex HMAC-SHA256 under secret of ts "." body.
func SignWebhook(secret []byte, ts int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// WebhookSignature returns the values of the two headers that sign body
// as of now.
func WebhookSignature(secret, body []byte, now time.Time) (timestamp, signature string) {
	ts := now.Unix()
	return strconv.FormatInt(ts, 10), SignWebhook(secret, ts, body)
}

// ErrWebhookSignature is VerifyWebhook's refusal.
var ErrWebhookSignature = errors.New("webhook: bad or stale signature")

// VerifyWebhook is a receiver's check of a request: the signature of body
// under secret for the timestamp header, which must be within
// WebhookMaxAge of now.
func VerifyWebhook(secret []byte, timestamp, signature string, body []byte, now time.Time) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || now.Sub(time.Unix(ts, 0)).Abs() > WebhookMaxAge ||
		!hmac.Equal([]byte(signature), []byte(SignWebhook(secret, ts, body))) {
		return ErrWebhookSignature
	}
	return nil
}
