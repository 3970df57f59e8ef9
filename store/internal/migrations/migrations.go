// Package migrations picks the schema migrations a store has not applied
// yet: the files of its embedded migrations directory, in name order,
// recorded by name once applied (in schema_migrations).
package migrations

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
)

// File is one migration: a file of SQL statements.
type File struct {
	Name string
	SQL  string
}

// Pending returns the files of dir in fsys whose names are not among
// applied, in name order.
func Pending(fsys fs.FS, dir string, applied []string) ([]File, error) {
	entries, err := fs.ReadDir(fsys, dir) // sorted by name
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []File
	for _, e := range entries {
		if e.IsDir() || slices.Contains(applied, e.Name()) {
			continue
		}
		text, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		out = append(out, File{Name: e.Name(), SQL: string(text)})
	}
	return out, nil
}

// Apply runs apply on each pending file of dir in fsys (Pending), in name
// order; apply runs the file and records it as applied.
func Apply(fsys fs.FS, dir string, applied []string, apply func(File) error) error {
	pending, err := Pending(fsys, dir, applied)
	if err != nil {
		return err
	}
	for _, f := range pending {
		if err := apply(f); err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
	}
	return nil
}
