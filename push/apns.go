package push

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// APNs endpoints by environment (Apple's provider API).
const (
	APNsProduction = "https://api.push.apple.com"
	APNsSandbox    = "https://api.sandbox.push.apple.com"
)

// apnsTokenLife is how long one provider token is used: Apple accepts a
// token for an hour and refuses one refreshed more often than every 20
// minutes, so it is renewed after 40.
const apnsTokenLife = 40 * time.Minute

// APNsConfig configures token-based APNs.
type APNsConfig struct {
	KeyFile string // the .p8 signing key (PEM, PKCS #8 EC P-256)
	KeyID   string
	TeamID  string
	// Production and Sandbox are the endpoints (default Apple's); tests
	// point them at a fake.
	Production, Sandbox string
	Client              *http.Client // nil: HTTP/2 over TLS (net/http)
}

// APNs sends over Apple's HTTP/2 provider API with an ES256 provider token.
type APNs struct {
	cfg APNsConfig
	key *ecdsa.PrivateKey

	mu     sync.Mutex
	token  string
	issued time.Time
}

// NewAPNs reads the key and returns the provider.
func NewAPNs(cfg APNsConfig) (*APNs, error) {
	pem, err := os.ReadFile(cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("apns: read key: %w", err)
	}
	key, err := jwt.ParseECPrivateKeyFromPEM(pem)
	if err != nil {
		return nil, fmt.Errorf("apns: parse key %s: %w", cfg.KeyFile, err)
	}
	if cfg.KeyID == "" || cfg.TeamID == "" {
		return nil, fmt.Errorf("apns: key id and team id are required")
	}
	if cfg.Production == "" {
		cfg.Production = APNsProduction
	}
	if cfg.Sandbox == "" {
		cfg.Sandbox = APNsSandbox
	}
	if cfg.Client == nil {
		// net/http negotiates HTTP/2 by ALPN on TLS; APNs speaks nothing else.
		cfg.Client = &http.Client{Transport: &http.Transport{ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 4}, Timeout: 15 * time.Second}
	}
	return &APNs{cfg: cfg, key: key}, nil
}

// providerToken returns the current JWT, signing a new one when the old
// one is due (or refresh asks: APNs said it expired).
func (a *APNs) providerToken(now time.Time, refresh bool) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.token != "" && !refresh && now.Sub(a.issued) < apnsTokenLife {
		return a.token, nil
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": a.cfg.TeamID, "iat": now.Unix()})
	t.Header["kid"] = a.cfg.KeyID
	s, err := t.SignedString(a.key)
	if err != nil {
		return "", fmt.Errorf("apns: sign provider token: %w", err)
	}
	a.token, a.issued = s, now
	return s, nil
}

type apnsAlert struct {
	Title string `json:"title,omitempty"`
	Body  string `json:"body,omitempty"`
}

type apnsAps struct {
	Alert    apnsAlert `json:"alert"`
	Badge    int64     `json:"badge"`
	Sound    string    `json:"sound,omitempty"`
	ThreadID string    `json:"thread-id,omitempty"`
}

// APNsPayload is the JSON body of an APNs request.
type APNsPayload struct {
	Aps    apnsAps `json:"aps"`
	Conv   string  `json:"conv"`
	Seq    int64   `json:"seq"`
	Unread int64   `json:"unread"`
}

// Send posts n to the device's environment.
func (a *APNs) Send(ctx context.Context, n *Notification) error {
	body, err := json.Marshal(APNsPayload{
		Aps:  apnsAps{Alert: apnsAlert{Title: n.Title, Body: n.Body}, Badge: n.Badge, Sound: "default", ThreadID: n.Conv},
		Conv: n.Conv, Seq: n.Seq, Unread: n.Unread,
	})
	if err != nil {
		return &SendError{Outcome: Drop, Reason: "encode", Err: err}
	}
	for attempt := 0; ; attempt++ {
		err := a.post(ctx, n, body, attempt > 0)
		if se, ok := err.(*SendError); ok && se.Reason == "ExpiredProviderToken" && attempt == 0 {
			continue // sign a new token and try once more
		}
		return err
	}
}

func (a *APNs) post(ctx context.Context, n *Notification, body []byte, refresh bool) error {
	base := a.cfg.Production
	if n.Device.Env == "sandbox" {
		base = a.cfg.Sandbox
	}
	tok, err := a.providerToken(time.Now(), refresh)
	if err != nil {
		return &SendError{Outcome: Retry, Reason: "sign", Err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/3/device/"+url.PathEscape(n.Device.Token), bytes.NewReader(body))
	if err != nil {
		return &SendError{Outcome: Drop, Reason: "request", Err: err}
	}
	req.Header.Set("authorization", "bearer "+tok)
	req.Header.Set("apns-topic", n.Device.App)
	req.Header.Set("apns-push-type", "alert")
	req.Header.Set("apns-priority", "10")
	req.Header.Set("apns-expiration", strconv.FormatInt(n.Expires.Unix(), 10))
	req.Header.Set("apns-collapse-id", apnsCollapseID(n.CollapseID))
	req.Header.Set("content-type", "application/json")
	resp, err := a.cfg.Client.Do(req)
	if err != nil {
		return transportError(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var e struct {
		Reason string `json:"reason"`
	}
	_ = json.Unmarshal(data, &e)
	se := statusError(resp.StatusCode, apnsReason(e.Reason), resp.Header)
	if resp.StatusCode == http.StatusGone || e.Reason == "BadDeviceToken" || e.Reason == "Unregistered" || e.Reason == "DeviceTokenNotForTopic" {
		se.Outcome = Remove
	}
	return se
}

// apnsReasons are the reasons Apple documents; anything else is "other",
// so that the metrics label stays bounded.
var apnsReasons = map[string]bool{
	"BadCollapseId": true, "BadDeviceToken": true, "BadExpirationDate": true, "BadMessageId": true, "BadPriority": true,
	"BadTopic": true, "DeviceTokenNotForTopic": true, "DuplicateHeaders": true, "IdleTimeout": true, "InvalidPushType": true,
	"MissingDeviceToken": true, "MissingTopic": true, "PayloadEmpty": true, "TopicDisallowed": true, "BadCertificate": true,
	"BadCertificateEnvironment": true, "ExpiredProviderToken": true, "Forbidden": true, "InvalidProviderToken": true,
	"MissingProviderToken": true, "BadPath": true, "MethodNotAllowed": true, "ExpiredToken": true, "Unregistered": true,
	"PayloadTooLarge": true, "TooManyProviderTokenUpdates": true, "TooManyRequests": true, "InternalServerError": true,
	"ServiceUnavailable": true, "Shutdown": true,
}

func apnsReason(r string) string {
	if r == "" || apnsReasons[r] {
		return r
	}
	return "other"
}

// apnsCollapseID fits a collapse id into APNs' 64 bytes: a longer one is
// replaced by its hash.
func apnsCollapseID(id string) string {
	if len(id) <= 64 {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}
