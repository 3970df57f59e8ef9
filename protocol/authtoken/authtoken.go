// Package authtoken mints and verifies the JWTs devices connect with
// [IM-3.1]. It imports nothing of the server, so clients (the CLI, the SDK,
// bridges) mint development tokens without linking the broker.
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
	jwt.RegisteredClaims
}

// Mint signs a token for user, valid for ttl.
func Mint(secret []byte, user, role string, ttl time.Duration) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("mint token: empty secret")
	}
	now := time.Now()
	c := Claims{Role: role, RegisteredClaims: jwt.RegisteredClaims{
		Subject:   user,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	return s, nil
}

// Verify checks an HS256 token's signature and expiry (which is required)
// and that its subject is user [IM-3.1-2]; user "" accepts any subject.
func Verify(secret []byte, token, user string) (*Claims, error) {
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return secret, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithLeeway(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("verify token: %w", err)
	}
	if user != "" && c.Subject != user {
		return nil, fmt.Errorf("verify token: subject %q is not user %q", c.Subject, user)
	}
	return &c, nil
}
