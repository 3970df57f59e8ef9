package authtoken

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func sign(t *testing.T, m jwt.SigningMethod, key any, c jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims(sub string) Claims {
	now := time.Now()
	return Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: sub, IssuedAt: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}}
}

func verifier(t *testing.T, cfg VerifierConfig) *Verifier {
	t.Helper()
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// [IM-3.1-2]
func TestVerifyHS256(t *testing.T) {
	secret := []byte("k")
	v := verifier(t, VerifierConfig{Secret: secret})
	good, err := Mint(secret, "alice", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(good, "alice"); err != nil {
		t.Fatalf("good token: %v", err)
	}
	exp := jwt.NewNumericDate(time.Now().Add(time.Hour))
	iat := jwt.NewNumericDate(time.Now())
	bad := map[string]string{
		"expired":      sign(t, jwt.SigningMethodHS256, secret, jwt.RegisteredClaims{Subject: "alice", IssuedAt: iat, ExpiresAt: jwt.NewNumericDate(time.Now().Add(-time.Minute))}),
		"no expiry":    sign(t, jwt.SigningMethodHS256, secret, jwt.RegisteredClaims{Subject: "alice", IssuedAt: iat}),
		"no iat":       sign(t, jwt.SigningMethodHS256, secret, jwt.RegisteredClaims{Subject: "alice", ExpiresAt: exp}),
		"other user":   sign(t, jwt.SigningMethodHS256, secret, jwt.RegisteredClaims{Subject: "bob", IssuedAt: iat, ExpiresAt: exp}),
		"HS512":        sign(t, jwt.SigningMethodHS512, secret, jwt.RegisteredClaims{Subject: "alice", IssuedAt: iat, ExpiresAt: exp}),
		"alg none":     sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.RegisteredClaims{Subject: "alice", IssuedAt: iat, ExpiresAt: exp}),
		"other secret": sign(t, jwt.SigningMethodHS256, []byte("x"), jwt.RegisteredClaims{Subject: "alice", IssuedAt: iat, ExpiresAt: exp}),
		"garbage":      "not.a.token",
	}
	for name, tok := range bad {
		if _, err := v.Verify(tok, "alice"); err == nil {
			t.Errorf("%s: verified, want refused", name)
		}
	}
}

func pemOf(t *testing.T, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// Each asymmetric algorithm verifies with its PEM public key, and only
// with it; an asymmetric key never verifies an HS256 token (the
// RS256→HS256 confusion) [IM-3.1-2].
func TestVerifyPublicKeys(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, edKey, _ := ed25519.GenerateKey(rand.Reader)
	otherEC, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pems := append(append(pemOf(t, &rsaKey.PublicKey), pemOf(t, &ecKey.PublicKey)...), pemOf(t, edPub)...)
	keys, err := ParsePublicKeys(pems)
	if err != nil || len(keys) != 3 {
		t.Fatalf("ParsePublicKeys: %d keys, %v", len(keys), err)
	}
	v := verifier(t, VerifierConfig{Keys: keys})
	for _, tc := range []struct {
		name string
		m    jwt.SigningMethod
		key  any
	}{{"RS256", jwt.SigningMethodRS256, rsaKey}, {"ES256", jwt.SigningMethodES256, ecKey}, {"EdDSA", jwt.SigningMethodEdDSA, edKey}} {
		if _, err := v.Verify(sign(t, tc.m, tc.key, claims("alice")), "alice"); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	for name, tok := range map[string]string{
		"ES256 other key":           sign(t, jwt.SigningMethodES256, otherEC, claims("alice")),
		"HS256 without secret":      sign(t, jwt.SigningMethodHS256, []byte("k"), claims("alice")),
		"HS256 keyed with RSA PEM":  sign(t, jwt.SigningMethodHS256, pemOf(t, &rsaKey.PublicKey), claims("alice")),
		"RS512 (not accepted)":      sign(t, jwt.SigningMethodRS512, rsaKey, claims("alice")),
		"PS256 (not accepted)":      sign(t, jwt.SigningMethodPS256, rsaKey, claims("alice")),
		"ES256 token for other sub": sign(t, jwt.SigningMethodES256, ecKey, claims("bob")),
	} {
		if _, err := v.Verify(tok, "alice"); err == nil {
			t.Errorf("%s: verified, want refused", name)
		}
	}
}

// Issuer, audience and clock skew [IM-3.1-2].
func TestVerifyIssuerAudienceSkew(t *testing.T) {
	secret := []byte("k")
	v := verifier(t, VerifierConfig{Secret: secret, Issuer: "https://idp.example", Audience: "mqim", Leeway: 30 * time.Second})
	with := func(f func(*Claims)) string {
		c := claims("alice")
		c.Issuer, c.Audience = "https://idp.example", jwt.ClaimStrings{"other", "mqim"}
		f(&c)
		return sign(t, jwt.SigningMethodHS256, secret, c)
	}
	now := time.Now()
	if _, err := v.Verify(with(func(*Claims) {}), "alice"); err != nil {
		t.Fatalf("good token: %v", err)
	}
	// Within the skew: issued 20 s in the future, expired 20 s ago.
	if _, err := v.Verify(with(func(c *Claims) { c.IssuedAt = jwt.NewNumericDate(now.Add(20 * time.Second)) }), "alice"); err != nil {
		t.Errorf("iat 20 s ahead with 30 s skew: %v", err)
	}
	if _, err := v.Verify(with(func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-20 * time.Second)) }), "alice"); err != nil {
		t.Errorf("exp 20 s ago with 30 s skew: %v", err)
	}
	for name, tok := range map[string]string{
		"other issuer":    with(func(c *Claims) { c.Issuer = "https://evil.example" }),
		"no issuer":       with(func(c *Claims) { c.Issuer = "" }),
		"other audience":  with(func(c *Claims) { c.Audience = jwt.ClaimStrings{"other"} }),
		"no audience":     with(func(c *Claims) { c.Audience = nil }),
		"iat 2 min ahead": with(func(c *Claims) { c.IssuedAt = jwt.NewNumericDate(now.Add(2 * time.Minute)) }),
		"expired 2 min":   with(func(c *Claims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-2 * time.Minute)) }),
		"nbf in 2 min":    with(func(c *Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(2 * time.Minute)) }),
	} {
		if _, err := v.Verify(tok, "alice"); err == nil {
			t.Errorf("%s: verified, want refused", name)
		}
	}
}

// Bad configuration is an error naming what is wrong.
func TestVerifierConfigErrors(t *testing.T) {
	if _, err := NewVerifier(VerifierConfig{}); err == nil {
		t.Error("no key: accepted")
	}
	if _, err := NewVerifier(VerifierConfig{Secret: []byte("k"), Leeway: time.Hour}); err == nil || !strings.Contains(err.Error(), "skew") {
		t.Errorf("1 h skew: %v", err)
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	priv, _ := x509.MarshalPKCS8PrivateKey(p384)
	for name, data := range map[string][]byte{
		"empty":         nil,
		"not PEM":       []byte("hello"),
		"broken block":  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("junk")}),
		"private key":   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv}),
		"RSA 1024 bits": pemOf(t, &small.PublicKey),
		"P-384":         pemOf(t, &p384.PublicKey),
	} {
		if _, err := ParsePublicKeys(data); err == nil {
			t.Errorf("%s: parsed, want an error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}
