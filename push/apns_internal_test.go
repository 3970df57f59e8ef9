package push

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestAPNsTokenRefresh: the provider token is reused while young and
// signed again before Apple's hour is over, or when APNs says it expired.
func TestAPNsTokenRefresh(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	file := filepath.Join(t.TempDir(), "AuthKey.p8")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := NewAPNs(APNsConfig{KeyFile: file, KeyID: "KID", TeamID: "TEAM"})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	first, _ := a.providerToken(t0, false)
	if again, _ := a.providerToken(t0.Add(39*time.Minute), false); again != first {
		t.Fatal("token not reused within its life")
	}
	later, _ := a.providerToken(t0.Add(41*time.Minute), false)
	if later == first {
		t.Fatal("token not renewed after 40 minutes")
	}
	if forced, _ := a.providerToken(t0.Add(42*time.Minute), true); forced == later {
		t.Fatal("token not renewed on ExpiredProviderToken")
	}
	parsed, _, err := jwt.NewParser().ParseUnverified(later, jwt.MapClaims{})
	if err != nil || parsed.Header["kid"] != "KID" || parsed.Header["alg"] != "ES256" {
		t.Fatalf("token header %v %v", parsed, err)
	}
	if iat, _ := parsed.Claims.GetIssuedAt(); iat == nil || iat.Unix() != t0.Add(41*time.Minute).Unix() {
		t.Fatalf("iat %v", iat)
	}
}
