package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/protocol/authtoken"
	"github.com/mqim/mqim/store"
)

// createUser is POST /v1/users [IM-8.1-2]: 201 for a new user, 200 for
// one that exists.
func (a *API) createUser(w http.ResponseWriter, r *http.Request) {
	claims, ok := a.cfg.Auth.Authorize(w, r, authtoken.RoleAdmin)
	if !ok {
		return
	}
	var body struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&body); err != nil {
		Error(w, http.StatusBadRequest, protocol.CodeBadPayload, "body must be JSON {\"id\": \"user id\"}")
		return
	}
	if !protocol.ValidID(body.ID) {
		Error(w, http.StatusBadRequest, protocol.CodeBadRequest, "id must be 1 to 64 characters of A-Z a-z 0-9 _ . - @")
		return
	}
	existed, err := a.cfg.Users.UserExists(r.Context(), body.ID)
	if err == nil && !existed {
		err = a.cfg.Users.EnsureUser(r.Context(), body.ID, "")
	}
	if errors.Is(err, store.ErrUserDeleted) {
		Error(w, http.StatusGone, protocol.CodeUnknownUser, "the user was deleted; its id is not used again")
		return
	}
	if err == nil && !existed {
		err = a.cfg.Accounts.Record(r.Context(), actor(claims, r), store.AuditUserCreated, body.ID, "")
	}
	if err != nil {
		a.cfg.Log.Warn("create user failed", "user", body.ID, "error", err)
		Error(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "store unavailable, retry")
		return
	}
	status := http.StatusCreated
	if existed {
		status = http.StatusOK
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"id": body.ID})
}
