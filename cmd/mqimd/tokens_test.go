package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Bad token configuration is a one-line start-up error naming the flag
// [IM-3.1-2]: a missing or malformed PEM file, an unreachable JWKS URL,
// a skew above 5 minutes, no way left to verify tokens.
func TestTokenFlagErrors(t *testing.T) {
	bin := build(t)
	out, _ := exec.Command(bin, "--help").CombinedOutput()
	for _, f := range []string{"jwt-hs256", "jwt-public-keys", "jwks-url", "jwt-issuer", "jwt-audience", "jwt-skew"} {
		if !strings.Contains(string(out), f) {
			t.Errorf("--help does not mention --%s", f)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.pem")
	if err := os.WriteFile(bad, []byte("-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/jwks.json"
	ln.Close()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--jwt-public-keys", bad}, "--jwt-public-keys"},
		{[]string{"--jwt-public-keys", filepath.Join(t.TempDir(), "missing.pem")}, "--jwt-public-keys"},
		{[]string{"--jwks-url", closed}, "--jwks-url"},
		{[]string{"--jwt-skew", "1h"}, "skew"},
		{[]string{"--jwt-hs256=false"}, "--jwt-public-keys"},
	} {
		if msg := runFail(t, bin, tc.args...); !strings.Contains(msg, tc.want) {
			t.Errorf("mqimd %v: %q does not name %s", tc.args, msg, tc.want)
		}
	}
}
