package server

import (
	"errors"
	"net/http"

	"github.com/mqim/mqim/httpapi"
	"github.com/mqim/mqim/media"
	"github.com/mqim/mqim/protocol"
)

// Media configures attachments [IM-12.2]. With neither Dir nor Backend set,
// the media endpoints answer 503 unavailable.
type Media struct {
	Dir      string        // local directory of the Disk backend
	Backend  media.Backend // another backend (S3-compatible, …); wins over Dir
	MaxBytes int64         // upload limit; zero: media.DefaultMaxBytes
	Allowed  []string      // allowed media types ("image/*", "application/pdf"); zero: media.DefaultAllowed
}

func newMedia(cfg Config, auth *httpapi.Auth) (*media.Handler, error) {
	b := cfg.Media.Backend
	if b == nil && cfg.Media.Dir != "" {
		d, err := media.NewDisk(cfg.Media.Dir)
		if err != nil {
			return nil, err
		}
		b = d
	}
	if b == nil {
		return nil, nil
	}
	return media.NewHandler(media.Config{
		Backend: b, MaxBytes: cfg.Media.MaxBytes, Allowed: cfg.Media.Allowed, Log: cfg.Log,
		Auth: func(r *http.Request) (string, error) { return userOf(auth, r) },
	}), nil
}

// userOf returns the user of a request's bearer token.
func userOf(auth *httpapi.Auth, r *http.Request) (string, error) {
	c, err := auth.Bearer(r)
	if err != nil {
		return "", err
	}
	if !protocol.ValidID(c.Subject) {
		return "", errors.New("token subject is not a user id")
	}
	return c.Subject, nil
}

func (n *Node) mediaRoutes(mux *http.ServeMux) {
	if n.media != nil {
		n.media.Register(mux)
		return
	}
	off := func(w http.ResponseWriter, r *http.Request) {
		httpError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "attachments are not configured on this node")
	}
	mux.HandleFunc("POST /v1/media", off)
	mux.HandleFunc("GET /v1/media/{id}", off)
}
