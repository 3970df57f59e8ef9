// Package pushtest has fakes of the push providers that speak their real
// HTTP APIs, for tests: APNs (HTTP/2 over TLS only, ES256 provider tokens
// checked against the key), FCM HTTP v1 (the OAuth2 JWT-bearer token
// endpoint and messages:send, bearer checked) and a webhook receiver
// checking the signature. Each answers with the provider's real error
// JSON and counts what it accepted.
package pushtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// Notification is what a fake accepted.
type Notification struct {
	Token      string
	CollapseID string
	Title      string
	Body       string
	Conv       string
	Seq        int64
	Unread     int64
	Badge      int64
}

// Answer is a programmed answer: HTTP status and the provider's reason
// (APNs reason, FCM errorCode/status), and a Retry-After in seconds.
type Answer struct {
	Status     int
	Reason     string
	RetryAfter string
}

// recorder is what the fakes share: accepted notifications, programmed
// answers per token and for all (an outage).
type recorder struct {
	mu       sync.Mutex
	accepted []Notification
	tokens   map[string]Answer
	all      *Answer
	refused  int
	changed  chan struct{}
}

func newRecorder() *recorder {
	return &recorder{tokens: map[string]Answer{}, changed: make(chan struct{})}
}

// answerFor returns the programmed answer for a token, if any.
func (r *recorder) answerFor(token string) (Answer, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.all != nil {
		r.refused++
		return *r.all, true
	}
	a, ok := r.tokens[token]
	if ok {
		r.refused++
	}
	return a, ok
}

func (r *recorder) accept(n Notification) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.accepted = append(r.accepted, n)
	close(r.changed)
	r.changed = make(chan struct{})
}

// Down makes every request fail with a (nil: up again).
func (r *recorder) Down(a *Answer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = a
}

// Refuse answers a for token from now on (a zero Answer: accept again).
func (r *recorder) Refuse(token string, a Answer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a.Status == 0 {
		delete(r.tokens, token)
		return
	}
	r.tokens[token] = a
}

// Accepted returns the notifications accepted so far.
func (r *recorder) Accepted() []Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.accepted)
}

// Refused says how many requests got a programmed failure.
func (r *recorder) Refused() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.refused
}

// Shown returns, per token and collapse id, the last notification: what
// the phone shows (a notification replaces the one with its collapse id).
func (r *recorder) Shown(token string) map[string]Notification {
	out := map[string]Notification{}
	for _, n := range r.Accepted() {
		if n.Token == token {
			out[n.CollapseID] = n
		}
	}
	return out
}

// Count returns how many notifications were accepted for token.
func (r *recorder) Count(token string) int {
	n := 0
	for _, a := range r.Accepted() {
		if a.Token == token {
			n++
		}
	}
	return n
}

// Changed returns a channel closed at the next accepted notification.
func (r *recorder) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeFile writes data to a new file in t's temp dir.
func writeFile(t testing.TB, name string, data []byte) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// newECKey returns a P-256 key and its .p8 (PKCS #8 PEM) file.
func newECKey(t testing.TB) (*ecdsa.PrivateKey, []byte) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return k, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// newRSAKey returns an RSA key and its PKCS #8 PEM (as in a service
// account key file).
func newRSAKey(t testing.TB) (*rsa.PrivateKey, []byte) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return k, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// client returns an HTTP client of s (trusting its certificate).
func client(s *httptest.Server) *http.Client { return s.Client() }
