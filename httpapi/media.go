package httpapi

import (
	"errors"
	"net/http"

	"github.com/mqim/mqim/protocol"
)

// User returns the user of a request's bearer token: the media endpoints'
// credentials [IM-12.2].
func (a *Auth) User(r *http.Request) (string, error) {
	c, err := a.Bearer(r)
	if err != nil {
		return "", err
	}
	if !protocol.ValidID(c.Subject) {
		return "", errors.New("token subject is not a user id")
	}
	return c.Subject, nil
}

// MediaUnavailable mounts the media endpoints of a node without
// attachments: 503 unavailable [IM-12.2].
func MediaUnavailable(mux *http.ServeMux) {
	off := func(w http.ResponseWriter, r *http.Request) {
		Error(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "attachments are not configured on this node")
	}
	mux.HandleFunc("POST /v1/media", off)
	mux.HandleFunc("GET /v1/media/{id}", off)
}
