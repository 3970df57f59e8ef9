package jwks

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mqim/mqim/protocol/authtoken"
)

// keyServer serves a JWKS whose keys the test changes.
type keyServer struct {
	mu   sync.Mutex
	keys []map[string]string
	hits int
	fail bool
	*httptest.Server
}

func newKeyServer(t *testing.T) *keyServer {
	ks := &keyServer{}
	ks.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ks.mu.Lock()
		defer ks.mu.Unlock()
		ks.hits++
		if ks.fail {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"keys": ks.keys})
	}))
	t.Cleanup(ks.Close)
	return ks
}

func (ks *keyServer) set(keys ...map[string]string) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.keys = keys
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func edJWK(kid string, pub ed25519.PublicKey) map[string]string {
	return map[string]string{"kty": "OKP", "crv": "Ed25519", "x": b64(pub), "kid": kid, "alg": "EdDSA", "use": "sig"}
}

func ecJWK(kid string, pub *ecdsa.PublicKey) map[string]string {
	return map[string]string{"kty": "EC", "crv": "P-256", "x": b64(pub.X.FillBytes(make([]byte, 32))),
		"y": b64(pub.Y.FillBytes(make([]byte, 32))), "kid": kid, "alg": "ES256", "use": "sig"}
}

func signKID(t *testing.T, m jwt.SigningMethod, kid string, key any, sub string) string {
	t.Helper()
	now := time.Now()
	tok := jwt.NewWithClaims(m, jwt.RegisteredClaims{Subject: sub, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))})
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A JWKS served over HTTP verifies ES256 and EdDSA tokens by kid; a key
// added later (rotation) is fetched when a token names it, and a removed
// key stops verifying after the next refresh [IM-3.1-2].
func TestJWKSRotation(t *testing.T) {
	edPub, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ks := newKeyServer(t)
	ks.set(edJWK("ed-1", edPub), ecJWK("ec-1", &ecKey.PublicKey))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	set, err := New(ctx, Config{URL: ks.URL, Refresh: 200 * time.Millisecond, RefreshUnknown: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	v, err := authtoken.NewVerifier(authtoken.VerifierConfig{KeySet: set.Keyfunc})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{signKID(t, jwt.SigningMethodEdDSA, "ed-1", edKey, "alice"), signKID(t, jwt.SigningMethodES256, "ec-1", ecKey, "alice")} {
		if _, err := v.Verify(tok, "alice"); err != nil {
			t.Fatalf("key of the first set: %v", err)
		}
	}
	// A token signed by ed-1's key but naming ec-1 is refused.
	if _, err := v.Verify(signKID(t, jwt.SigningMethodEdDSA, "ec-1", edKey, "alice"), "alice"); err == nil {
		t.Error("EdDSA token under an ES256 kid verified")
	}

	// Rotation: ed-2 replaces ed-1.
	ed2Pub, ed2Key, _ := ed25519.GenerateKey(rand.Reader)
	ks.set(edJWK("ed-2", ed2Pub), ecJWK("ec-1", &ecKey.PublicKey))
	if _, err := v.Verify(signKID(t, jwt.SigningMethodEdDSA, "ed-2", ed2Key, "alice"), "alice"); err != nil {
		t.Fatalf("new kid after rotation: %v", err)
	}
	old := signKID(t, jwt.SigningMethodEdDSA, "ed-1", edKey, "alice")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := v.Verify(old, "alice"); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the removed key still verifies after refreshes")
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
	// Unknown kid: refused, not a crash.
	if _, err := v.Verify(signKID(t, jwt.SigningMethodEdDSA, "nobody", ed2Key, "alice"), "alice"); err == nil {
		t.Error("unknown kid verified")
	}

	// The server going down keeps the keys fetched before.
	ks.mu.Lock()
	ks.fail = true
	hits := ks.hits
	ks.mu.Unlock()
	for {
		ks.mu.Lock()
		h := ks.hits
		ks.mu.Unlock()
		if h > hits+1 {
			break
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
	if _, err := v.Verify(signKID(t, jwt.SigningMethodES256, "ec-1", ecKey, "alice"), "alice"); err != nil {
		t.Errorf("while the JWKS URL fails: %v", err)
	}
}

// An unreachable, failing or empty JWKS is a start-up error.
func TestJWKSStartupErrors(t *testing.T) {
	ks := newKeyServer(t)
	ks.set()
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>")) }))
	defer garbage.Close()
	for name, url := range map[string]string{"empty set": ks.URL, "unreachable": downURL, "not JSON": garbage.URL, "no URL": ""} {
		_, err := New(context.Background(), Config{URL: url, Timeout: 2 * time.Second})
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		t.Logf("%s: %v", name, err)
	}
}
