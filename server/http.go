package server

import (
	"net/http"

	"github.com/mqim/mqim/httpapi"
	"github.com/mqim/mqim/web"
)

// routes is the HTTP API [IM-8]; the chat page connects to the WebSocket
// listener on port wsPort. The admin API and /metrics are here unless
// they have listeners of their own (listeners.go).
func (n *Node) routes(wsPort func() int) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", httpapi.Healthz(n.ready)) // readiness: health.go
	mux.HandleFunc("GET /livez", httpapi.Livez)
	if n.cfg.MetricsAddr == "" {
		mux.Handle("GET /metrics", httpapi.Metrics(n.cfg.Registry, n.cfg.MetricsToken))
	}
	if n.cfg.AdminAddr == "" {
		n.adminRoutes(mux)
	}
	if n.media != nil {
		n.media.Register(mux)
	} else {
		httpapi.MediaUnavailable(mux)
	}
	// The chat page [IM-8.1-7].
	mux.Handle("GET /web/", web.Handler(web.Config{WSPort: wsPort}))
	mux.Handle("GET /{$}", http.RedirectHandler("/web/", http.StatusFound))
	return mux
}

// adminRoutes are the endpoints for admin and bridge tokens: the admin API,
// which --admin-addr may move to a listener of its own [IM-8.4].
func (n *Node) adminRoutes(mux *http.ServeMux) {
	n.api.Register(mux)                  // users, presence, nodes, notifications
	for _, p := range httpapi.Patterns { // account control, audit log
		mux.Handle(p, n.adminAPI)
	}
}
