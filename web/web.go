// Package web is mqimd's chat page: a client in the browser built on the
// TypeScript SDK (clients/js), which speaks the mqim protocol over
// MQTT-over-WebSocket. Its source is web/src; the bundle static/app.js is
// built from it and the SDK by clients/js/scripts/bundle-web.mjs (esbuild)
// and committed, so building mqimd needs no npm (scripts/test checks that
// the committed bundle equals a fresh build). mqimd serves it under /web/
// on its HTTP port, which is also the page's media API (uploads, downloads).
package web

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Config is what the page needs to know about the node, served as
// /web/config.json.
type Config struct {
	// WSPort is the port of the MQTT-over-WebSocket listener; the page
	// connects to ws://<its own host>:WSPort/mqtt (or to its ?ws= URL).
	WSPort func() int
}

// Handler serves the page and its assets under /web/.
func Handler(cfg Config) http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	mux := http.NewServeMux()
	mux.Handle("GET /web/", http.StripPrefix("/web/", http.FileServerFS(sub)))
	mux.HandleFunc("GET /web/config.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(map[string]any{"ws_port": cfg.WSPort(), "ws_path": "/mqtt"})
	})
	return mux
}
