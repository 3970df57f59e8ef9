// Package authtoken mints and verifies the JWTs devices connect with
// [IM-3.1]. It imports nothing of the server, so clients (the CLI, the SDK,
// bridges) mint development tokens without linking the broker. Fetching
// keys from a JWKS URL is the server's (internal/jwks): a Verifier takes
// its key function.
package authtoken

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Roles a token may carry [IM-3.1].
const (
	RoleUser   = ""
	RoleAdmin  = "admin"
	RoleBridge = "bridge"
)

// Claims are the JWT claims mqim reads.
type Claims struct {
	Role   string `json:"role,omitempty"`
	Format string `json:"fmt,omitempty"`
	// Client binds the token to one MQTT client id [IM-3.1-7]; empty: any.
	Client string `json:"cid,omitempty"`
	jwt.RegisteredClaims
}

// Mint signs an HS256 token for user, valid for ttl.
func Mint(secret []byte, user, role string, ttl time.Duration) (string, error) {
	return MintClaims(secret, Claims{Role: role, RegisteredClaims: jwt.RegisteredClaims{Subject: user}}, ttl)
}

// MintClaims signs c with HS256, setting iat to now and exp to now+ttl.
func MintClaims(secret []byte, c Claims, ttl time.Duration) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("mint token: empty secret")
	}
	now := time.Now()
	c.IssuedAt = jwt.NewNumericDate(now)
	c.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	return s, nil
}
