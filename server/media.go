package server

import (
	"context"
	"fmt"
	"time"

	"github.com/mqim/mqim/httpapi"
	"github.com/mqim/mqim/media"
)

// Media configures attachments [IM-12.2]: on local disk (Dir), or in an
// S3-compatible bucket (S3.Endpoint set) that every node of a cluster
// shares [IM-12.2-4]. With none of Dir, S3 and Backend set, the media
// endpoints answer 503 unavailable.
type Media struct {
	Dir      string         // local directory of the Disk backend
	S3       media.S3Config // with Endpoint set: the S3 backend, instead of Dir
	Backend  media.Backend  // another backend; wins over S3 and Dir
	MaxBytes int64          // upload limit; zero: media.DefaultMaxBytes
	Allowed  []string       // allowed media types ("image/*", "application/pdf"); zero: media.DefaultAllowed
}

// mediaConnectTimeout bounds the S3 backend's start-up check (New has no
// context): an endpoint that does not answer is a start-up error.
const mediaConnectTimeout = 15 * time.Second

func newMedia(cfg Config, auth *httpapi.Auth) (*media.Handler, error) {
	b := cfg.Media.Backend
	if b == nil && cfg.Media.S3.Endpoint != "" {
		ctx, cancel := context.WithTimeout(context.Background(), mediaConnectTimeout)
		defer cancel()
		s, err := media.NewS3(ctx, cfg.Media.S3)
		if err != nil {
			return nil, fmt.Errorf("media: %w", err)
		}
		b = s
	}
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
		Backend: b, MaxBytes: cfg.Media.MaxBytes, Allowed: cfg.Media.Allowed, Log: cfg.Log, Registerer: cfg.Registry,
		Auth: auth.User,
	}), nil
}
