package media

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/minio/minio-go/v7"
)

// OwnerEraser is a Backend that can delete every file of one owner, which
// deleting a user needs [IM-8.3-5].
type OwnerEraser interface {
	DeleteOwner(ctx context.Context, owner string) (int, error)
}

var _ OwnerEraser = (*Disk)(nil)

// DeleteOwner deletes every file uploaded by owner and returns how many.
// It reads every metadata file: deleting a user is rare, and the
// directory keeps no index by owner. The metadata goes first, so that a
// file is never visible without its owner's consent.
func (d *Disk) DeleteOwner(ctx context.Context, owner string) (int, error) {
	n := 0
	err := filepath.WalkDir(d.dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if e.IsDir() || !strings.HasSuffix(p, ".json") || !ValidID(strings.TrimSuffix(e.Name(), ".json")) {
			return nil
		}
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		var meta Meta
		if json.Unmarshal(b, &meta) != nil || meta.Owner != owner {
			return nil
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := os.Remove(strings.TrimSuffix(p, ".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("delete media of %q: %w", owner, err)
	}
	return n, nil
}

// Eraser returns the handler's backend as an OwnerEraser, or nil if it
// cannot delete by owner.
func (h *Handler) Eraser() OwnerEraser {
	if h == nil {
		return nil
	}
	er, _ := h.cfg.Backend.(OwnerEraser)
	return er
}

var _ OwnerEraser = (*S3)(nil)

// DeleteOwner deletes every object uploaded by owner and returns how many.
// Listings carry no user metadata in plain S3, so each object's metadata
// is read with a HEAD request: deleting a user is rare, the bucket keeps
// no index by owner.
func (s *S3) DeleteOwner(ctx context.Context, owner string) (int, error) {
	n := 0
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			return n, fmt.Errorf("delete media of %q: list %s: %w", owner, s.desc, obj.Err)
		}
		if !ValidID(obj.Key) {
			continue
		}
		info, err := s.client.StatObject(ctx, s.bucket, obj.Key, minio.StatObjectOptions{})
		if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("delete media of %q: stat %s: %w", owner, obj.Key, err)
		}
		if userMeta(info.UserMetadata, metaOwner) != owner {
			continue
		}
		if err := s.client.RemoveObject(ctx, s.bucket, obj.Key, minio.RemoveObjectOptions{}); err != nil {
			return n, fmt.Errorf("delete media of %q: remove %s: %w", owner, obj.Key, err)
		}
		n++
	}
	return n, nil
}
