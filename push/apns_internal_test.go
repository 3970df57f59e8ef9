package push

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mqim/mqim/push/pushtest"
)

// TestAPNsTokenRefresh: the provider token is reused while young and
// signed again before Apple's hour is over, or when APNs says it expired.
func TestAPNsTokenRefresh(t *testing.T) {
	fake := pushtest.NewAPNs(t)
	a, err := NewAPNs(fake.Config())
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
	if err != nil || parsed.Header["kid"] != fake.KeyID || parsed.Header["alg"] != "ES256" {
		t.Fatalf("token header %v %v", parsed, err)
	}
	if iat, _ := parsed.Claims.GetIssuedAt(); iat == nil || iat.Unix() != t0.Add(41*time.Minute).Unix() {
		t.Fatalf("iat %v", iat)
	}
}
