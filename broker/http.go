package broker

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mqim/mqim/hooks/auth"
	"github.com/mqim/mqim/protocol"
)

// routes is the HTTP API [IM-8].
func (n *Node) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if n.draining.Load() {
			http.Error(w, "draining", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.cfg.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("POST /v1/users", n.createUser)
	return mux
}

func (n *Node) createUser(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		httpError(w, http.StatusUnauthorized, protocol.CodeNotAuthorized, "send an admin token as Authorization: Bearer <token>")
		return
	}
	claims, err := auth.Verify(n.cfg.Secret, tok, "")
	if err != nil {
		httpError(w, http.StatusUnauthorized, protocol.CodeNotAuthorized, "invalid token")
		return
	}
	if claims.Role != auth.RoleAdmin {
		httpError(w, http.StatusForbidden, protocol.CodeNotAuthorized, "an admin token is required")
		return
	}
	var body struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&body); err != nil {
		httpError(w, http.StatusBadRequest, protocol.CodeBadPayload, "body must be JSON {\"id\": \"user id\"}")
		return
	}
	if !protocol.ValidID(body.ID) {
		httpError(w, http.StatusBadRequest, protocol.CodeBadRequest, "id must be 1 to 64 characters of A-Z a-z 0-9 _ . - @")
		return
	}
	existed, err := n.cfg.Store.UserExists(r.Context(), body.ID)
	if err == nil && !existed {
		err = n.cfg.Store.EnsureUser(r.Context(), body.ID, "")
	}
	if err != nil {
		n.log.Warn("create user failed", "user", body.ID, "error", err)
		httpError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "store unavailable, retry")
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

func httpError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]*protocol.Error{"error": {Code: code, Message: msg}})
}
