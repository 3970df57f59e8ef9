package media

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Disk is a Backend on a local directory: the file <dir>/<id[:2]>/<id> and
// its metadata beside it in <id>.json. Several nodes may share the directory
// (a network file system); files are written under a temporary name and
// renamed, so a reader never sees half a file.
type Disk struct {
	dir string
}

var _ Backend = (*Disk)(nil)

// NewDisk returns a Disk on dir, creating it if missing.
func NewDisk(dir string) (*Disk, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("media directory: %w", err)
	}
	return &Disk{dir: dir}, nil
}

func (d *Disk) path(id string) string { return filepath.Join(d.dir, id[:2], id) }

// Put writes the file, then its metadata; the metadata is what makes it
// visible to Open.
func (d *Disk) Put(ctx context.Context, meta Meta, r io.Reader) error {
	if !ValidID(meta.ID) {
		return fmt.Errorf("put media: invalid id %q", meta.ID)
	}
	p := d.path(meta.ID)
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return fmt.Errorf("put media %s: %w", meta.ID, err)
	}
	if err := writeAtomic(p, func(w io.Writer) error {
		_, err := io.Copy(w, r)
		return err
	}); err != nil {
		return fmt.Errorf("put media %s: %w", meta.ID, err)
	}
	if err := writeAtomic(p+".json", func(w io.Writer) error { return json.NewEncoder(w).Encode(meta) }); err != nil {
		os.Remove(p)
		return fmt.Errorf("put media %s metadata: %w", meta.ID, err)
	}
	return ctx.Err()
}

// Open opens a stored file.
func (d *Disk) Open(ctx context.Context, id string) (Object, Meta, error) {
	var meta Meta
	if !ValidID(id) {
		return nil, meta, ErrNotFound
	}
	p := d.path(id)
	b, err := os.ReadFile(p + ".json")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, meta, ErrNotFound
	}
	if err != nil {
		return nil, meta, fmt.Errorf("open media %s: %w", id, err)
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return nil, meta, fmt.Errorf("open media %s: metadata: %w", id, err)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, meta, fmt.Errorf("open media %s: %w", id, err)
	}
	return f, meta, nil
}

// writeAtomic writes a file under a temporary name, syncs it and renames it
// to path.
func writeAtomic(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = write(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
