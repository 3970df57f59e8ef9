// Package filewatch reloads what a node reads from files — its TLS
// certificate, its word lists — when the files change (polled: size and
// modification time) or when asked (SIGHUP). A version that does not load
// leaves the loaded one in use, is retried at every check and is reported
// once.
package filewatch

import (
	"context"
	"fmt"
	"os"
	"strings"
	gosync "sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Stamp identifies a version of some files without reading them.
type Stamp string

// Stat returns the files' stamp.
func Stat(files []string) (Stamp, error) {
	var b strings.Builder
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%s\x00%d\x00%d\x00", f, fi.ModTime().UnixNano(), fi.Size())
	}
	return Stamp(b.String()), nil
}

// Watcher watches Files. Load reads them and, if they are good, makes them
// current; it is called with the watcher's lock held, so loads never
// overlap.
type Watcher struct {
	Name  string // what the files are, prefixed to Stat's errors
	Files []string
	Load  func() error
	// Settle waits, before loading a changed version, until it stayed the
	// same for one check: for files that are valid when half written (a
	// word list truncated and being rewritten is a shorter list).
	Settle bool
	// Result is told the outcome of each reload: Reload's, and the first
	// failure of each version found changed (Failed is then logged).
	Result func(err error)
	Failed func(err error)

	mu     gosync.Mutex
	loaded Stamp // the files as of the last load
	seen   Stamp // the files as of the last check
	failed Stamp // the files as of the last failed load, reported once
}

// Init loads the files the first time.
func (w *Watcher) Init() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.load()
}

func (w *Watcher) load() error {
	s, err := Stat(w.Files)
	if err != nil {
		return fmt.Errorf("%s: %w", w.Name, err)
	}
	if err := w.Load(); err != nil {
		return err
	}
	w.loaded = s
	return nil
}

// Reload reads the files again (SIGHUP). On an error the loaded version
// stays.
func (w *Watcher) Reload() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.load()
	w.Result(err)
	return err
}

// Check reloads when the files changed since the last load.
func (w *Watcher) Check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	s, err := Stat(w.Files)
	if err != nil {
		err = fmt.Errorf("%s: %w", w.Name, err)
	}
	settled := !w.Settle || s == w.seen
	w.seen = s
	if err == nil && (s == w.loaded || !settled) {
		return
	}
	if err == nil {
		if err = w.load(); err == nil {
			w.Result(nil)
			return
		}
	}
	if s != w.failed {
		w.failed = s
		w.Result(err)
		w.Failed(err)
	}
}

// Run checks the files every poll until ctx ends.
func (w *Watcher) Run(ctx context.Context, poll time.Duration) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.Check()
		}
	}
}

// Counter is a Result that counts reloads in c by its label result: ok or
// error.
func Counter(c *prometheus.CounterVec) func(error) {
	return func(err error) {
		if err != nil {
			c.WithLabelValues("error").Inc()
			return
		}
		c.WithLabelValues("ok").Inc()
	}
}
