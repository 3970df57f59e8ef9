// Package httpapi is mqim's HTTP API [IM-8]: the bearer-token check every
// endpoint shares (auth.go), the admin API of account control and the audit
// log [IM-8.3] (admin.go), users, presence, the node list and notifications
// (api.go; a notification goes through the core, im.Service, like a
// bridge's MQTT publish), the media endpoints' credentials, readiness and
// liveness, and /metrics. The server mounts them on the HTTP listener, or
// the admin ones on a separate admin listener.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/protocol/authtoken"
	"github.com/mqim/mqim/store"
)

// Errors of Bearer.
var (
	ErrNoBearer = errors.New("no bearer token")                   // no Authorization: Bearer header
	ErrInvalid  = errors.New("invalid token")                     // bad signature, expired, …
	ErrRevoked  = errors.New("token revoked or account disabled") // valid, but refused for the account's state
)

// Accounts reads the account state a token is checked against.
type Accounts interface {
	Account(ctx context.Context, user, client string) (store.Account, error)
}

// Auth checks the bearer tokens of HTTP requests [IM-8.3-8].
type Auth struct {
	Tokens *authtoken.Verifier
	// Users, when set, refuses the tokens of deleted or disabled users
	// and tokens issued before the user's not-before, as CONNECT does.
	Users Accounts
}

// Bearer verifies the request's bearer token: the one parser of every
// endpoint's credentials. Its errors wrap ErrNoBearer, ErrInvalid or
// ErrRevoked, or are a store failure.
func (a *Auth) Bearer(r *http.Request) (*authtoken.Claims, error) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return nil, ErrNoBearer
	}
	c, err := a.Tokens.Verify(tok, "")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if a.Users == nil {
		return c, nil
	}
	acc, err := a.Users.Account(r.Context(), c.Subject, "")
	switch {
	case err != nil:
		return nil, fmt.Errorf("check token: %w", err)
	case acc.Deleted || acc.Disabled || c.IssuedAt.Unix() < acc.NotBefore:
		return nil, ErrRevoked
	}
	return c, nil
}

// Authorize checks for a token with one of roles, answering the request
// (401 or 403) if there is none.
func (a *Auth) Authorize(w http.ResponseWriter, r *http.Request, roles ...string) (*authtoken.Claims, bool) {
	claims, err := a.Bearer(r)
	switch {
	case errors.Is(err, ErrNoBearer):
		Error(w, http.StatusUnauthorized, protocol.CodeNotAuthorized, "send a token with role "+strings.Join(roles, " or ")+" as Authorization: Bearer <token>")
		return nil, false
	case errors.Is(err, ErrRevoked):
		Error(w, http.StatusUnauthorized, protocol.CodeNotAuthorized, "token revoked or account disabled")
		return nil, false
	case errors.Is(err, ErrInvalid):
		Error(w, http.StatusUnauthorized, protocol.CodeNotAuthorized, "invalid token")
		return nil, false
	case err != nil:
		Error(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "store unavailable, retry")
		return nil, false
	}
	for _, role := range roles {
		if claims.Role == role {
			return claims, true
		}
	}
	Error(w, http.StatusForbidden, protocol.CodeNotAuthorized, "a token with role "+strings.Join(roles, " or ")+" is required")
	return nil, false
}

// Error answers an error object [IM-8.2-1].
func Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]*protocol.Error{"error": {Code: code, Message: msg}})
}
