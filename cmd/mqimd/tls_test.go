package main

import (
	"crypto/tls"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqim/mqim/internal/testcerts"
)

// TestTLSReloadOnSIGHUP runs the binary with a certificate: the start-up log
// names the plaintext and the TLS listeners, and SIGHUP makes new TLS
// connections get a replaced certificate (the file poll is off for the
// test, so only the signal can).
func TestTLSReloadOnSIGHUP(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "mqimd test CA")
	crt, key := ca.Server(t).Write(t, dir, "server")
	mqtts := freeAddr(t)
	cmd, lines := startLogged(t, bin, "--data-dir", t.TempDir(), "--mqtt-addr", freeAddr(t), "--ws-addr", freeAddr(t),
		"--http-addr", freeAddr(t), "--tls-cert", crt, "--tls-key", key, "--tls-poll", "1h",
		"--mqtts-addr", mqtts, "--wss-addr", freeAddr(t), "--https-addr", freeAddr(t))
	defer cmd.Process.Kill()
	var listening string
	for l := range lines {
		if strings.Contains(l, "msg=listening") {
			listening = l
		}
		if strings.Contains(l, "mqimd serving") {
			break
		}
	}
	if !strings.Contains(listening, "plaintext=") || !strings.Contains(listening, "mqtts="+mqtts) {
		t.Fatalf("start-up log does not list the plaintext and TLS listeners: %q", listening)
	}
	go func() {
		for range lines { // keep the pipe drained
		}
	}()

	serial := func() *big.Int {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", mqtts, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber
	}
	next := ca.Server(t)
	next.Write(t, dir, "server")
	if serial().Cmp(next.Cert.SerialNumber) == 0 {
		t.Fatal("new certificate served before SIGHUP: is the poll off?")
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for serial().Cmp(next.Cert.SerialNumber) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP did not reload the certificate")
		}
		time.Sleep(20 * time.Millisecond) // a poll interval
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

// TestTLSStartupErrors: bad TLS files are one-line start-up errors.
func TestTLSStartupErrors(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	crt, key := testcerts.NewCA(t, "CA").Server(t).Write(t, dir, "server")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-key", key}, "certificate and a key"},
		{[]string{"--tls-cert", garbage, "--tls-key", key}, "PEM"},
		{[]string{"--tls-cert", crt, "--tls-key", key, "--tls-client-ca", garbage}, "no PEM certificate"},
		{[]string{"--tls-cert", filepath.Join(dir, "missing.crt"), "--tls-key", key}, "no such file"},
		{[]string{"--proxy-protocol-from", "10.0.0.0/99"}, "PROXY protocol"},
	} {
		args := append([]string{"--mqtt-addr", freeAddr(t), "--ws-addr", freeAddr(t), "--http-addr", freeAddr(t)}, c.args...)
		if msg := runFail(t, bin, args...); !strings.Contains(msg, c.want) {
			t.Errorf("mqimd %v: %q, want it to say %q", c.args, msg, c.want)
		}
	}
}

func TestHelpDocumentsTLSFlags(t *testing.T) {
	out, _ := exec.Command(build(t), "--help").CombinedOutput()
	for _, f := range []string{"tls-cert", "tls-key", "tls-client-ca", "tls-client-identity", "tls-poll", "mqtts-addr", "wss-addr",
		"https-addr", "proxy-protocol-from", "metrics-addr", "metrics-token", "admin-addr"} {
		if !strings.Contains(string(out), "-"+f) {
			t.Errorf("--help does not mention --%s", f)
		}
	}
}
