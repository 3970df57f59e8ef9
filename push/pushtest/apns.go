package pushtest

import (
	"crypto/ecdsa"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mqim/mqim/push"
)

// APNs is a fake of Apple's provider API: HTTP/2 over TLS with ALPN h2
// only (an HTTP/1.1 client fails the handshake), checking the ES256
// provider token against the key it made, the topic and the headers.
type APNs struct {
	*recorder
	Server  *httptest.Server
	KeyFile string // the .p8 the provider signs with
	KeyID   string
	TeamID  string
	Topic   string

	key    *ecdsa.PrivateKey
	mu     sync.Mutex
	tokens map[string]bool // provider tokens seen
	errs   []string
}

// NewAPNs starts the fake; the test's cleanup stops it.
func NewAPNs(t testing.TB) *APNs {
	a := &APNs{recorder: newRecorder(), KeyID: "ABC123DEFG", TeamID: "DEF123GHIJ", Topic: "com.example.im", tokens: map[string]bool{}}
	var p8 []byte
	a.key, p8 = newECKey(t)
	a.KeyFile = writeFile(t, "AuthKey.p8", p8)
	a.Server = httptest.NewUnstartedServer(http.HandlerFunc(a.serve))
	a.Server.EnableHTTP2 = true
	// ALPN h2 only: net/http would add http/1.1, so a handshake that did
	// not pick h2 fails here, as Apple's servers refuse HTTP/1.1.
	a.Server.TLS = &tls.Config{NextProtos: []string{"h2"}, VerifyConnection: func(cs tls.ConnectionState) error {
		if cs.NegotiatedProtocol != "h2" {
			return errors.New("apns fake: ALPN h2 required")
		}
		return nil
	}}
	a.Server.StartTLS()
	t.Cleanup(a.Server.Close)
	return a
}

// Config is the provider's configuration for this fake.
func (a *APNs) Config() push.APNsConfig {
	return push.APNsConfig{KeyFile: a.KeyFile, KeyID: a.KeyID, TeamID: a.TeamID,
		Production: a.Server.URL, Sandbox: a.Server.URL, Client: client(a.Server)}
}

// ProviderTokens says how many distinct provider tokens were used.
func (a *APNs) ProviderTokens() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.tokens)
}

// Errors returns the protocol violations the fake saw (a test expects none).
func (a *APNs) Errors() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.errs...)
}

func (a *APNs) fail(w http.ResponseWriter, status int, reason string) {
	a.mu.Lock()
	a.errs = append(a.errs, strconv.Itoa(status)+" "+reason)
	a.mu.Unlock()
	writeJSON(w, status, map[string]any{"reason": reason})
}

func (a *APNs) serve(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor != 2 {
		a.fail(w, http.StatusHTTPVersionNotSupported, "HTTP/2 required")
		return
	}
	if r.Method != http.MethodPost {
		a.fail(w, http.StatusMethodNotAllowed, "MethodNotAllowed")
		return
	}
	token, ok := strings.CutPrefix(r.URL.Path, "/3/device/")
	if !ok || token == "" {
		a.fail(w, http.StatusNotFound, "BadPath")
		return
	}
	auth, ok := strings.CutPrefix(r.Header.Get("authorization"), "bearer ")
	if !ok {
		a.fail(w, http.StatusForbidden, "MissingProviderToken")
		return
	}
	parsed, err := jwt.Parse(auth, func(tk *jwt.Token) (any, error) {
		if tk.Header["kid"] != a.KeyID {
			return nil, jwt.ErrTokenInvalidId
		}
		return &a.key.PublicKey, nil
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(a.TeamID), jwt.WithIssuedAt())
	if err != nil {
		a.fail(w, http.StatusForbidden, "InvalidProviderToken")
		return
	}
	if iat, _ := parsed.Claims.GetIssuedAt(); iat == nil || time.Since(iat.Time) > time.Hour {
		a.fail(w, http.StatusForbidden, "ExpiredProviderToken")
		return
	}
	a.mu.Lock()
	a.tokens[auth] = true
	a.mu.Unlock()
	switch {
	case r.Header.Get("apns-topic") != a.Topic:
		a.fail(w, http.StatusBadRequest, "BadTopic")
		return
	case r.Header.Get("apns-push-type") != "alert":
		a.fail(w, http.StatusBadRequest, "InvalidPushType")
		return
	case r.Header.Get("apns-priority") != "10" && r.Header.Get("apns-priority") != "5":
		a.fail(w, http.StatusBadRequest, "BadPriority")
		return
	case len(r.Header.Get("apns-collapse-id")) > 64 || r.Header.Get("apns-collapse-id") == "":
		a.fail(w, http.StatusBadRequest, "BadCollapseId")
		return
	}
	if _, err := strconv.ParseInt(r.Header.Get("apns-expiration"), 10, 64); err != nil {
		a.fail(w, http.StatusBadRequest, "BadExpirationDate")
		return
	}
	var p push.APNsPayload
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&p); err != nil {
		a.fail(w, http.StatusBadRequest, "PayloadEmpty")
		return
	}
	if ans, ok := a.answerFor(token); ok {
		if ans.RetryAfter != "" {
			w.Header().Set("Retry-After", ans.RetryAfter)
		}
		body := map[string]any{"reason": ans.Reason}
		if ans.Status == http.StatusGone {
			body["timestamp"] = time.Now().UnixMilli()
		}
		writeJSON(w, ans.Status, body)
		return
	}
	w.Header().Set("apns-id", "00000000-0000-0000-0000-000000000001")
	a.accept(Notification{Token: token, CollapseID: r.Header.Get("apns-collapse-id"), Title: p.Aps.Alert.Title, Body: p.Aps.Alert.Body,
		Conv: p.Conv, Seq: p.Seq, Unread: p.Unread, Badge: p.Aps.Badge})
	w.WriteHeader(http.StatusOK)
}
