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
