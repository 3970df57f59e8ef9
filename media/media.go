// Package media keeps message attachments [IM-12.2]: devices upload a file
// over HTTP, get back its URL and metadata, and send a message that carries
// the URL. Files are immutable once stored and named by a random id.
//
// Backend is where the bytes go, a small blob store the Handler depends on:
// Disk (a directory on local disk, the default) and S3 (a bucket on an
// S3-compatible server, which every node of a cluster shares).
//
// A Handler is safe for concurrent use.
package media

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned by Backend.Open for an unknown id.
var ErrNotFound = errors.New("media not found")

// Meta describes a stored file.
type Meta struct {
	ID      string `json:"id"`
	Owner   string `json:"owner"` // the uploading user
	Mime    string `json:"mime"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"` // hex
	Name    string `json:"name,omitempty"`
	Created int64  `json:"created"` // unix ms
}

// Object is an opened stored file.
type Object interface {
	io.ReadSeekCloser
}

// Backend stores files: Disk or S3. Authorization, limits and the HTTP
// answers are the Handler's; a Backend only keeps bytes and metadata.
type Backend interface {
	// Put stores the content of r under meta.ID. It is called with a file
	// whose size and hash are already known and checked.
	Put(ctx context.Context, meta Meta, r io.Reader) error
	// Open returns a stored file and its metadata, or ErrNotFound.
	Open(ctx context.Context, id string) (Object, Meta, error)
}

// NewID returns a fresh random media id: 32 lowercase hex characters.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ValidID reports whether id has the form NewID produces, so that it is
// safe as a file name.
func ValidID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func nowMillis() int64 { return time.Now().UnixMilli() }

func msTime(ms int64) time.Time { return time.UnixMilli(ms) }
