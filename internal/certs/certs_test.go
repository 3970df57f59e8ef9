package certs_test

import (
	"crypto/tls"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqim/mqim/internal/certs"
	"github.com/mqim/mqim/internal/testcerts"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestBadFiles: each bad file is a start-up error naming the problem.
func TestBadFiles(t *testing.T) {
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "test CA")
	crt, key := ca.Server(t).Write(t, dir, "server")
	other := testcerts.NewCA(t, "other").Server(t)
	_, otherKey := other.Write(t, dir, "other")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		cfg  certs.Config
		want string
	}{
		{"no key", certs.Config{CertFile: crt}, "both required"},
		{"missing cert", certs.Config{CertFile: filepath.Join(dir, "nope.crt"), KeyFile: key}, "no such file"},
		{"malformed cert", certs.Config{CertFile: garbage, KeyFile: key}, "failed to find any PEM data"},
		{"malformed key", certs.Config{CertFile: crt, KeyFile: garbage}, "failed to find any PEM data"},
		{"key of another cert", certs.Config{CertFile: crt, KeyFile: otherKey}, "does not match"},
		{"CA without certs", certs.Config{CertFile: crt, KeyFile: key, ClientCAFile: garbage}, "holds no PEM certificate"},
		{"missing CA", certs.Config{CertFile: crt, KeyFile: key, ClientCAFile: filepath.Join(dir, "nope.pem")}, "no such file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Log = quiet
			_, err := certs.New(c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New: %v, want an error containing %q", err, c.want)
			}
		})
	}
	if _, err := certs.New(certs.Config{CertFile: crt, KeyFile: key, ClientCAFile: ca.WriteCA(t, dir, "ca.pem"), Log: quiet}); err != nil {
		t.Fatalf("good files: %v", err)
	}
}

// TestReloadKeepsOldOnError: a reload of broken files fails and the
// previous certificate stays in use; a good one replaces it.
func TestReloadKeepsOldOnError(t *testing.T) {
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "test CA")
	first := ca.Server(t)
	crt, key := first.Write(t, dir, "server")
	r, err := certs.New(certs.Config{CertFile: crt, KeyFile: key, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	served := func() string {
		c, err := r.TLSConfig().GetConfigForClient(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		return string(c.Certificates[0].Leaf.Raw)
	}
	if err := os.WriteFile(key, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(); err == nil {
		t.Fatal("reload of a broken key succeeded")
	}
	if served() != string(first.Cert.Raw) {
		t.Fatal("a failed reload replaced the certificate")
	}
	second := ca.Server(t)
	second.Write(t, dir, "server")
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if served() != string(second.Cert.Raw) {
		t.Fatal("reload did not take the new certificate")
	}
}
