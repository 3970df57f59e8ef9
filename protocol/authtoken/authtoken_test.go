package authtoken

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// [IM-3.1-2]
func TestVerify(t *testing.T) {
	secret := []byte("k")
	good, err := Mint(secret, "alice", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(secret, good, "alice"); err != nil {
		t.Fatalf("good token: %v", err)
	}
	sign := func(m jwt.SigningMethod, key any, c jwt.Claims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	exp := jwt.NewNumericDate(time.Now().Add(time.Hour))
	bad := map[string]string{
		"expired":      sign(jwt.SigningMethodHS256, secret, jwt.RegisteredClaims{Subject: "alice", ExpiresAt: jwt.NewNumericDate(time.Now().Add(-time.Minute))}),
		"no expiry":    sign(jwt.SigningMethodHS256, secret, jwt.RegisteredClaims{Subject: "alice"}),
		"other user":   sign(jwt.SigningMethodHS256, secret, jwt.RegisteredClaims{Subject: "bob", ExpiresAt: exp}),
		"HS512":        sign(jwt.SigningMethodHS512, secret, jwt.RegisteredClaims{Subject: "alice", ExpiresAt: exp}),
		"alg none":     sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.RegisteredClaims{Subject: "alice", ExpiresAt: exp}),
		"other secret": sign(jwt.SigningMethodHS256, []byte("x"), jwt.RegisteredClaims{Subject: "alice", ExpiresAt: exp}),
		"garbage":      "not.a.token",
	}
	for name, tok := range bad {
		if _, err := Verify(secret, tok, "alice"); err == nil {
			t.Errorf("%s: verified, want refused", name)
		}
	}
}
