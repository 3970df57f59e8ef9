// Package testvgw runs a real S3-compatible server for tests: versitygw
// (github.com/versity/versitygw) with its posix backend in a temporary
// directory, on a free loopback port. The binary is built from its Go module
// once per machine and kept in the user's cache directory (Binary); MinIO's
// server module does not resolve from the module proxy, versitygw's does.
//
// Without a binary, and when it cannot be built, a test is skipped, or
// failed under scripts/test and CI (internal/testdeps).
package testvgw

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mqim/mqim/internal/testdeps"
	"github.com/mqim/mqim/internal/testpg"
	"github.com/mqim/mqim/media"
)

// Version is the versitygw release the tests run.
const Version = "v1.8.0"

const pkg = "github.com/versity/versitygw/cmd/versitygw"

// EnvBinary names a versitygw binary to use instead of the cached build.
const EnvBinary = "MQIM_VERSITYGW"

// Binary returns the versitygw binary: $MQIM_VERSITYGW, else
// <user cache dir>/mqim/versitygw-<Version>/versitygw, built there with
// go install (about two minutes, once) if it is missing.
func Binary(ctx context.Context) (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s: %w", EnvBinary, err)
		}
		return p, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("versitygw: %w", err)
	}
	dir := filepath.Join(cache, "mqim", "versitygw-"+Version)
	bin := filepath.Join(dir, "versitygw")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("versitygw: %w", err)
	}
	// Test packages run in parallel: one builds, the others wait for it.
	unlock, err := lock(filepath.Join(dir, ".lock"))
	if err != nil {
		return "", fmt.Errorf("versitygw: lock: %w", err)
	}
	defer unlock()
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	tmp, err := os.MkdirTemp(dir, ".build-")
	if err != nil {
		return "", fmt.Errorf("versitygw: %w", err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "go", "install", pkg+"@"+Version)
	// Outside this module, with nothing of its settings: the release as its
	// own go.mod pins it.
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=-buildvcs=false", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %v\n%s", pkg, Version, err, out)
	}
	// Renamed into place whole: a reader never finds half a binary.
	if err := os.Rename(filepath.Join(tmp, "versitygw"), bin); err != nil {
		return "", fmt.Errorf("versitygw: %w", err)
	}
	return bin, nil
}

var built struct {
	once sync.Once
	bin  string
	err  error
}

// binary is Binary, built at most once per test binary.
func binary() (string, error) {
	if os.Getenv(EnvBinary) != "" {
		return Binary(context.Background())
	}
	built.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		built.bin, built.err = Binary(ctx)
	})
	return built.bin, built.err
}

// BinaryOrMissing returns the versitygw binary, or ends tb through
// testdeps.Missing when there is none and it cannot be built.
func BinaryOrMissing(tb testing.TB) string {
	tb.Helper()
	bin, err := binary()
	if err != nil {
		testdeps.Missing(tb, "versitygw (S3 server) not available: "+err.Error())
	}
	return bin
}

// Server is a running versitygw.
type Server struct {
	URL                  string // http://127.0.0.1:PORT
	AccessKey, SecretKey string

	bin, addr, root string
	cmd             *exec.Cmd
	done            chan struct{}
	log             string
	stop            sync.Once
}

// Start starts versitygw on a fresh directory; the test's cleanup stops it.
// A server that does not come up fails tb.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin := BinaryOrMissing(tb)
	root := tb.TempDir()
	s := &Server{AccessKey: "mqimtest", SecretKey: randomHex(16), log: filepath.Join(tb.TempDir(), "versitygw.log")}
	for attempt := 1; ; attempt++ {
		s.bin, s.addr, s.root = bin, "127.0.0.1:"+strconv.Itoa(testpg.FreePort(tb)), root
		s.URL = "http://" + s.addr
		err := s.start()
		if err == nil {
			break
		}
		// Most likely someone took the port between the check and the start.
		if attempt == 3 {
			b, _ := os.ReadFile(s.log)
			tb.Fatalf("versitygw did not start: %v\n%s", err, b)
		}
	}
	tb.Cleanup(s.Stop)
	return s
}

// Restart starts a stopped server again, on the same address and data.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		b, _ := os.ReadFile(s.log)
		tb.Fatalf("versitygw did not restart: %v\n%s", err, b)
	}
}

func (s *Server) start() error {
	bin, addr, root := s.bin, s.addr, s.root
	f, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	// The secret goes by environment, as an operator would pass it.
	cmd := exec.Command(bin, "--port", addr, "--health", "/health", "--quiet", "posix", root)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
	s.cmd, s.done, s.stop = cmd, done, sync.Once{}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		select {
		case <-done:
			return errors.New("versitygw exited")
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("not answering on %s: %v", s.URL, err)
		}
	}
}

// Stop kills the server and waits for it to exit.
func (s *Server) Stop() {
	s.stop.Do(func() {
		_ = s.cmd.Process.Kill()
		<-s.done
	})
}

// Config is the media configuration of a fresh bucket on s (NewS3 creates
// it).
func (s *Server) Config() media.S3Config {
	return media.S3Config{Endpoint: s.URL, Bucket: "mqim-" + randomHex(6), AccessKey: s.AccessKey, SecretKey: s.SecretKey, PathStyle: true}
}

// Flags are mqimd's flags for cfg; the secret goes in env (the
// MQIM_MEDIA_S3_SECRET_KEY variable), so that it is not on a command line.
func Flags(cfg media.S3Config) (flags, env []string) {
	flags = []string{"--media-s3-endpoint", cfg.Endpoint, "--media-s3-bucket", cfg.Bucket,
		"--media-s3-access-key", cfg.AccessKey, "--media-s3-path-style=" + strconv.FormatBool(cfg.PathStyle)}
	return flags, []string{"MQIM_MEDIA_S3_SECRET_KEY=" + cfg.SecretKey}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
