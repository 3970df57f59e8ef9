package sdk

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// CursorStore keeps a device's inbox cursor: the highest inbox seq up to
// which the application has been handed every event [IM-5.2-3]. The client
// loads it once in Dial and saves it after handing events to the
// application. Implementations must be safe for use by one goroutine at a
// time; the client never calls them concurrently.
type CursorStore interface {
	// Load returns the saved cursor, or 0 when none was saved (a new device).
	Load(ctx context.Context) (int64, error)
	// Save records seq as the cursor.
	Save(ctx context.Context, seq int64) error
}

// MemoryCursor is a CursorStore in memory; its zero value holds cursor 0.
// It is safe for concurrent use, so a test or an application may read it
// while the client runs.
type MemoryCursor struct {
	mu  sync.Mutex
	seq int64
}

// NewMemoryCursor returns a MemoryCursor holding seq.
func NewMemoryCursor(seq int64) *MemoryCursor { return &MemoryCursor{seq: seq} }

// Load implements CursorStore.
func (m *MemoryCursor) Load(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seq, nil
}

// Save implements CursorStore.
func (m *MemoryCursor) Save(_ context.Context, seq int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq = seq
	return nil
}

// Seq returns the current cursor.
func (m *MemoryCursor) Seq() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seq
}

// FileCursor is a CursorStore in a file holding the seq in decimal. Save
// writes a temporary file beside it and renames it over the old one, so the
// file always holds a whole value. A missing file is cursor 0.
type FileCursor struct {
	Path string
}

// Load implements CursorStore.
func (f FileCursor) Load(context.Context) (int64, error) {
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("load cursor: %w", err)
	}
	seq, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || seq < 0 {
		return 0, fmt.Errorf("load cursor: %s does not hold a seq: %q", f.Path, b)
	}
	return seq, nil
}

// Save implements CursorStore.
func (f FileCursor) Save(_ context.Context, seq int64) error {
	tmp, err := os.CreateTemp(filepath.Dir(f.Path), filepath.Base(f.Path)+".tmp*")
	if err != nil {
		return fmt.Errorf("save cursor: %w", err)
	}
	_, err = tmp.WriteString(strconv.FormatInt(seq, 10) + "\n")
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), f.Path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save cursor: %w", err)
	}
	return nil
}
