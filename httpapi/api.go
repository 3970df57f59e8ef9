package httpapi

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/mqim/mqim/account"
	"github.com/mqim/mqim/delivery/routes"
	"github.com/mqim/mqim/im"
	"github.com/mqim/mqim/protocol/authtoken"
)

// Users is what the user endpoints read and write in the store.
type Users interface {
	UserExists(ctx context.Context, user string) (bool, error)
	EnsureUser(ctx context.Context, user, device string) error
}

// Routing is the cluster's routing table, which presence and the node list
// are read from.
type Routing interface {
	Devices(user string) map[string]routes.Entry
	Nodes() map[string]string
}

// APIConfig configures the API.
type APIConfig struct {
	Auth     *Auth            // required
	Core     *im.Service      // required: notifications go through the send pipeline
	Users    Users            // required
	Accounts *account.Service // required: the audit log
	Routing  Routing          // nil: a node without NATS
	NodeName string           // this node's name in GET /v1/nodes
	MaxBody  int              // the encoded message body limit, which bounds a notification's request
	Log      *slog.Logger     // zero: slog.Default()
}

// API is the HTTP API for admin and bridge tokens beside the admin API
// [IM-8.1]: users, presence, the cluster's nodes and notifications.
type API struct {
	cfg APIConfig
}

// NewAPI returns the API; Register mounts it.
func NewAPI(cfg APIConfig) *API {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &API{cfg: cfg}
}

// Register mounts the API's endpoints on mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/users", a.createUser)
	mux.HandleFunc("GET /v1/users/{id}/presence", a.presence)
	mux.HandleFunc("GET /v1/nodes", a.nodes)
	mux.HandleFunc("POST /v1/notifications", a.notify)
}

// admin checks for an admin token, answering the request if there is none.
func (a *API) admin(w http.ResponseWriter, r *http.Request) bool {
	_, ok := a.cfg.Auth.Authorize(w, r, authtoken.RoleAdmin)
	return ok
}

// actor is the audit log's who and from where of a request.
func actor(c *authtoken.Claims, r *http.Request) account.Actor {
	return account.Actor{Subject: c.Subject, Role: c.Role, Remote: r.RemoteAddr}
}
