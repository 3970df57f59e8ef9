package httpapi

import (
	"context"
	"net/http"
)

// Healthz is readiness, what a load balancer routes by [IM-8.1-1]: 200
// while ready says so, else 503 with ready's reason.
func Healthz(ready func(ctx context.Context) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := ready(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	}
}

// Livez is liveness: 200 while the process serves HTTP [IM-8.1-1].
func Livez(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) }
