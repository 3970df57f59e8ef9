package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"sort"

	"github.com/mqim/mqim/httpapi"
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/protocol/authtoken"
	"github.com/mqim/mqim/store"
	"github.com/mqim/mqim/web"
)

// routes is the HTTP API [IM-8]; the chat page connects to the WebSocket
// listener on port wsPort. The admin API and /metrics are here unless
// they have listeners of their own (listeners.go).
func (n *Node) routes(wsPort func() int) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", n.healthz) // health.go
	mux.HandleFunc("GET /livez", livez)
	if n.cfg.MetricsAddr == "" {
		mux.Handle("GET /metrics", n.metricsHandler())
	}
	if n.cfg.AdminAddr == "" {
		n.adminRoutes(mux)
	}
	n.mediaRoutes(mux)
	// The chat page [IM-8.1-7].
	mux.Handle("GET /web/", web.Handler(web.Config{WSPort: wsPort}))
	mux.Handle("GET /{$}", http.RedirectHandler("/web/", http.StatusFound))
	return mux
}

// adminRoutes are the endpoints for admin and bridge tokens: the admin API,
// which --admin-addr may move to a listener of its own [IM-8.4].
func (n *Node) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/users", n.createUser)
	mux.HandleFunc("GET /v1/users/{id}/presence", n.presence)
	mux.HandleFunc("GET /v1/nodes", n.nodes)
	mux.HandleFunc("POST /v1/notifications", n.notify)
	for _, p := range httpapi.Patterns { // account control, audit log
		mux.Handle(p, n.adminAPI)
	}
}

// admin checks for an admin token, answering the request if there is none.
func (n *Node) admin(w http.ResponseWriter, r *http.Request) bool {
	_, ok := n.auth.Authorize(w, r, authtoken.RoleAdmin)
	return ok
}

// presence answers a user's online state from the routing table [IM-8.1-3].
func (n *Node) presence(w http.ResponseWriter, r *http.Request) {
	if !n.admin(w, r) {
		return
	}
	user := r.PathValue("id")
	if !protocol.ValidID(user) {
		httpError(w, http.StatusBadRequest, protocol.CodeBadRequest, "invalid user id")
		return
	}
	if n.table == nil {
		httpError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "this node runs without NATS: no routing table")
		return
	}
	type device struct {
		Client string `json:"client"`
		Node   string `json:"node"`
		Since  int64  `json:"since"`
	}
	out := struct {
		User    string   `json:"user"`
		Online  bool     `json:"online"`
		Devices []device `json:"devices"`
	}{User: user, Devices: []device{}}
	for c, e := range n.table.Devices(user) {
		out.Devices = append(out.Devices, device{Client: c, Node: e.Node, Since: e.Since})
	}
	sort.Slice(out.Devices, func(i, j int) bool { return out.Devices[i].Client < out.Devices[j].Client })
	out.Online = len(out.Devices) > 0
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// nodes lists the live nodes of the cluster [IM-8.1-4].
func (n *Node) nodes(w http.ResponseWriter, r *http.Request) {
	if !n.admin(w, r) {
		return
	}
	type node struct {
		Name string `json:"name"`
		Addr string `json:"addr,omitempty"`
	}
	out := struct {
		Self  string `json:"self"`
		Nodes []node `json:"nodes"`
	}{Self: n.cfg.NodeName, Nodes: []node{}}
	if n.table != nil {
		for name, addr := range n.table.Nodes() {
			out.Nodes = append(out.Nodes, node{name, addr})
		}
	}
	sort.Slice(out.Nodes, func(i, j int) bool { return out.Nodes[i].Name < out.Nodes[j].Name })
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

func (n *Node) createUser(w http.ResponseWriter, r *http.Request) {
	claims, ok := n.auth.Authorize(w, r, authtoken.RoleAdmin)
	if !ok {
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
	if errors.Is(err, store.ErrUserDeleted) {
		httpError(w, http.StatusGone, protocol.CodeUnknownUser, "the user was deleted; its id is not used again")
		return
	}
	if err == nil && !existed {
		err = n.accounts.Record(r.Context(), actor(claims, r), store.AuditUserCreated, body.ID, "")
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
	httpapi.Error(w, status, code, msg)
}
