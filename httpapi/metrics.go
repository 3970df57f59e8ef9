package httpapi

import (
	"crypto/subtle"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mqim/mqim/protocol"
)

// Metrics serves GET /metrics from reg, behind token when it is not empty
// [IM-8.1-3].
func Metrics(reg *prometheus.Registry, token string) http.Handler {
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	if token == "" {
		return h
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			Error(w, http.StatusUnauthorized, protocol.CodeNotAuthorized, "send the metrics token as Authorization: Bearer <token>")
			return
		}
		h.ServeHTTP(w, r)
	})
}
