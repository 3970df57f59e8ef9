package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/mqim/mqim/account"
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/protocol/authtoken"
	"github.com/mqim/mqim/store"
)

// AdminConfig configures the admin API.
type AdminConfig struct {
	Auth     *Auth              // required
	Accounts *account.Service   // required
	Store    store.AccountStore // required: account state, audit log
	Core     Core               // the groups endpoints [IM-8.3-9]; nil: they answer 503
	Log      *slog.Logger       // zero: slog.Default()
}

// Admin serves account control and the audit log under /v1/admin/, for
// admin tokens only [IM-8.3].
type Admin struct {
	cfg AdminConfig
	mux *http.ServeMux
}

// NewAdmin returns the admin API handler.
func NewAdmin(cfg AdminConfig) *Admin {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	a := &Admin{cfg: cfg, mux: http.NewServeMux()}
	a.handle("GET /v1/admin/users/{id}", a.user)
	a.handle("DELETE /v1/admin/users/{id}", a.deleteUser)
	a.handle("POST /v1/admin/users/{id}/disable", a.disable)
	a.handle("POST /v1/admin/users/{id}/enable", a.enable)
	a.handle("POST /v1/admin/users/{id}/kick", a.kick)
	a.handle("POST /v1/admin/users/{id}/revoke-tokens", a.revokeTokens)
	a.handle("PUT /v1/admin/users/{id}/revoked-devices/{client}", a.revokeDevice)
	a.handle("DELETE /v1/admin/users/{id}/revoked-devices/{client}", a.restoreDevice)
	a.handle("GET /v1/admin/audit", a.audit)
	a.handle("GET /v1/admin/groups/{gid}", a.groupInfo)
	a.handle("POST /v1/admin/groups/{gid}/{op}", a.changeGroup)
	return a
}

// Patterns are the routes the server mounts the handler on.
var Patterns = []string{"/v1/admin/"}

func (a *Admin) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// request is an authorized admin request on user {id}.
type request struct {
	actor account.Actor
	user  string
	ctx   context.Context
}

// handle registers h behind the admin-token check and the user id check.
func (a *Admin) handle(pattern string, h func(http.ResponseWriter, *http.Request, request)) {
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		claims, ok := a.cfg.Auth.Authorize(w, r, authtoken.RoleAdmin)
		if !ok {
			return
		}
		req := request{actor: actor(claims, r), user: r.PathValue("id")}
		if r.PathValue("id") != "" && !protocol.ValidID(req.user) {
			Error(w, http.StatusBadRequest, protocol.CodeBadRequest, "invalid user id")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		req.ctx = ctx
		h(w, r, req)
	})
}

// done answers the outcome of an action on req.user.
func (a *Admin) done(w http.ResponseWriter, req request, err error, body any) {
	switch {
	case errors.Is(err, store.ErrUnknownUser):
		Error(w, http.StatusNotFound, protocol.CodeUnknownUser, "no user "+strconv.Quote(req.user))
	case err != nil:
		a.cfg.Log.Warn("admin action failed", "user", req.user, "actor", req.actor.Subject, "error", err)
		Error(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "store unavailable, retry (the action is idempotent)")
	default:
		if body == nil {
			body = map[string]string{"id": req.user}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(body)
	}
}

// userState is the body of GET /v1/admin/users/{id} [IM-8.3-1].
type userState struct {
	ID             string   `json:"id"`
	Exists         bool     `json:"exists"`
	Disabled       bool     `json:"disabled"`
	Deleted        bool     `json:"deleted"`
	NotBefore      int64    `json:"not_before"`
	RevokedDevices []string `json:"revoked_devices"`
}

func (a *Admin) user(w http.ResponseWriter, r *http.Request, req request) {
	acc, err := a.cfg.Store.Account(req.ctx, req.user, "")
	var revoked []string
	if err == nil {
		revoked, err = a.cfg.Store.RevokedDevices(req.ctx, req.user)
	}
	if err == nil && !acc.Exists && !acc.Deleted {
		err = store.UnknownUserError(req.user)
	}
	a.done(w, req, err, userState{ID: req.user, Exists: acc.Exists, Disabled: acc.Disabled, Deleted: acc.Deleted,
		NotBefore: acc.NotBefore, RevokedDevices: append([]string{}, revoked...)})
}

func (a *Admin) disable(w http.ResponseWriter, r *http.Request, req request) {
	a.done(w, req, a.cfg.Accounts.Disable(req.ctx, req.actor, req.user), nil)
}

func (a *Admin) enable(w http.ResponseWriter, r *http.Request, req request) {
	a.done(w, req, a.cfg.Accounts.Enable(req.ctx, req.actor, req.user), nil)
}

func (a *Admin) kick(w http.ResponseWriter, r *http.Request, req request) {
	var body struct {
		Client string `json:"client"`
	}
	if !readJSON(w, r, &body) {
		return
	}
	if body.Client != "" && !validClientID(body.Client) {
		Error(w, http.StatusBadRequest, protocol.CodeBadRequest, "client must be an MQTT client id of 1 to 256 bytes")
		return
	}
	a.done(w, req, a.cfg.Accounts.Kick(req.ctx, req.actor, req.user, body.Client), nil)
}

func (a *Admin) revokeTokens(w http.ResponseWriter, r *http.Request, req request) {
	nb, err := a.cfg.Accounts.RevokeTokens(req.ctx, req.actor, req.user)
	a.done(w, req, err, map[string]any{"id": req.user, "not_before": nb})
}

func (a *Admin) revokeDevice(w http.ResponseWriter, r *http.Request, req request) {
	a.device(w, r, req, true)
}

func (a *Admin) restoreDevice(w http.ResponseWriter, r *http.Request, req request) {
	a.device(w, r, req, false)
}

func (a *Admin) device(w http.ResponseWriter, r *http.Request, req request, revoked bool) {
	client := r.PathValue("client")
	if !validClientID(client) {
		Error(w, http.StatusBadRequest, protocol.CodeBadRequest, "client must be an MQTT client id of 1 to 256 bytes")
		return
	}
	a.done(w, req, a.cfg.Accounts.RevokeDevice(req.ctx, req.actor, req.user, client, revoked),
		map[string]any{"id": req.user, "client": client, "revoked": revoked})
}

func (a *Admin) deleteUser(w http.ResponseWriter, r *http.Request, req request) {
	a.done(w, req, a.cfg.Accounts.Delete(req.ctx, req.actor, req.user), map[string]any{"id": req.user, "deleted": true})
}

// auditEntry is one entry of GET /v1/admin/audit [IM-8.3-6].
type auditEntry struct {
	ID     int64  `json:"id"`
	TS     int64  `json:"ts"`
	Actor  string `json:"actor"`
	Role   string `json:"role"`
	Action string `json:"action"`
	Target string `json:"target,omitempty"`
	Detail string `json:"detail,omitempty"`
	Remote string `json:"remote,omitempty"`
}

func (a *Admin) audit(w http.ResponseWriter, r *http.Request, req request) {
	q := r.URL.Query()
	var aq store.AuditQuery
	var err error
	if v := q.Get("before"); v != "" {
		if aq.Before, err = strconv.ParseInt(v, 10, 64); err != nil || aq.Before < 0 {
			Error(w, http.StatusBadRequest, protocol.CodeBadRequest, "before must be an entry id")
			return
		}
	}
	if v := q.Get("limit"); v != "" {
		if aq.Limit, err = strconv.Atoi(v); err != nil || aq.Limit < 1 || aq.Limit > store.AuditMaxPage {
			Error(w, http.StatusBadRequest, protocol.CodeBadRequest, "limit must be 1 to "+strconv.Itoa(store.AuditMaxPage))
			return
		}
	}
	aq.Target, aq.Action = q.Get("target"), q.Get("action")
	page, err := a.cfg.Store.Audit(req.ctx, aq)
	if err != nil {
		a.done(w, req, err, nil)
		return
	}
	out := struct {
		Entries []auditEntry `json:"entries"`
		Next    int64        `json:"next,omitempty"`
	}{Entries: []auditEntry{}, Next: page.Next}
	for _, e := range page.Entries {
		out.Entries = append(out.Entries, auditEntry(e))
	}
	a.done(w, req, nil, out)
}

// readJSON decodes an optional small JSON body into v.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(v)
	if err != nil && !errors.Is(err, io.EOF) {
		Error(w, http.StatusBadRequest, protocol.CodeBadPayload, "body must be a JSON object")
		return false
	}
	return true
}

// validClientID: MQTT client ids are UTF-8 strings; mqim bounds them to
// 256 bytes and refuses control characters.
func validClientID(s string) bool {
	if len(s) == 0 || len(s) > 256 {
		return false
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f || c == 0xfffd {
			return false
		}
	}
	return true
}
