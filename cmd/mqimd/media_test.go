package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqim/mqim/internal/testvgw"
	"github.com/mqim/mqim/protocol/authtoken"
)

// runS3Fail runs mqimd with args and env added to its environment (where
// the S3 secret goes, as an operator passes it) and returns its whole
// output; it must fail.
func runS3Fail(t *testing.T, bin string, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(append(os.Environ(), "MQIM_DATA_DIR="+t.TempDir()), env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("mqimd %v succeeded, want failure; output:\n%s", args, out)
	}
	if strings.Contains(string(out), "goroutine ") || strings.Contains(string(out), "panic") {
		t.Fatalf("stack trace in output:\n%s", out)
	}
	// Well within the 15 s bound on the start-up check.
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("mqimd %v took %v to fail", args, d)
	}
	return string(out)
}

// [IM-12.2-4] A wrong S3 configuration stops mqimd at start-up with one
// line that says what is wrong, never with the secret in it.
func TestS3StartupErrors(t *testing.T) {
	bin := build(t)
	srv := testvgw.Start(t)
	good := srv.Config()
	flags, env := testvgw.Flags(good)
	base := []string{"--mqtt-addr", freeAddr(t), "--ws-addr", freeAddr(t), "--http-addr", freeAddr(t), "--jwt-secret", "s"}
	dead := "http://" + freeAddr(t)

	cases := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"unreachable endpoint", append(append(clone(base), flags...), "--media-s3-endpoint", dead), env, "S3 bucket " + good.Bucket + " at " + dead + ": unreachable"},
		{"wrong secret", append(clone(base), flags...), []string{"MQIM_MEDIA_S3_SECRET_KEY=wrong-" + good.SecretKey}, "credentials refused"},
		{"no secret", append(clone(base), flags...), nil, "secret key are required"},
		{"no bucket", append(append(clone(base), flags...), "--media-s3-bucket", ""), env, "bucket is required"},
		{"bucket without endpoint", append(clone(base), "--media-s3-bucket", "b"), env, "need --media-s3-endpoint"},
		{"bad endpoint", append(append(clone(base), flags...), "--media-s3-endpoint", "s3.example.com"), env, "want http://host"},
	}
	for _, c := range cases {
		out := runS3Fail(t, bin, c.env, c.args...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		last := lines[len(lines)-1]
		if !strings.HasPrefix(last, "mqimd: ") || !strings.Contains(last, c.want) {
			t.Errorf("%s: last line %q does not say %q", c.name, last, c.want)
		}
		if strings.Contains(out, good.SecretKey) {
			t.Errorf("%s: the output shows the secret:\n%s", c.name, out)
		}
		t.Logf("%s: %s", c.name, last)
	}
}

// With S3 flags, mqimd keeps uploads in the bucket, says so at start-up and
// logs no secret, even at debug level.
func TestS3Serves(t *testing.T) {
	bin := build(t)
	srv := testvgw.Start(t)
	cfg := srv.Config()
	flags, env := testvgw.Flags(cfg)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	httpAddr := freeAddr(t)
	args := append([]string{"--data-dir", t.TempDir(), "--mqtt-addr", freeAddr(t), "--ws-addr", freeAddr(t),
		"--http-addr", httpAddr, "--jwt-secret", "s", "--log-level", "debug"}, flags...)
	cmd, lines := startLogged(t, bin, args...)
	defer cmd.Process.Kill()
	var log bytes.Buffer
	for serving := false; !serving; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("mqimd exited before serving:\n%s", log.String())
			}
			log.WriteString(l + "\n")
			if strings.Contains(l, "mqimd serving") {
				serving = true
				if want := `media="s3 ` + cfg.Endpoint + ` bucket ` + cfg.Bucket + `"`; !strings.Contains(l, want) {
					t.Errorf("start-up line does not say %s:\n%s", want, l)
				}
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("mqimd did not report serving:\n%s", log.String())
		}
	}
	tok, err := authtoken.Mint([]byte("s"), "alice", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", "http://"+httpAddr+"/v1/media", strings.NewReader("hello"))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("upload: %d", resp.StatusCode)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for l := range lines {
		log.WriteString(l + "\n")
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, log.String())
	}
	if strings.Contains(log.String(), cfg.SecretKey) {
		t.Errorf("the log shows the S3 secret:\n%s", log.String())
	}
}

func clone(s []string) []string { return append([]string(nil), s...) }
