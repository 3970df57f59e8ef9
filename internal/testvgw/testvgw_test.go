package testvgw

import (
	"net/http"
	"runtime"
	"testing"

	"github.com/mqim/mqim/internal/testdeps"
)

// fakeTB records whether a helper failed or skipped; both end the calling
// goroutine, as testing's do.
type fakeTB struct {
	testing.TB
	failed, skipped bool
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Fatalf(string, ...any) { f.failed = true; runtime.Goexit() }
func (f *fakeTB) Skip(...any)           { f.skipped = true; runtime.Goexit() }

func start(t *testing.T) *fakeTB {
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(f)
	}()
	<-done
	return f
}

// No versitygw: skipped by a plain go test, failed under scripts/test and
// CI. One that does not start fails either way.
func TestStartWithoutServer(t *testing.T) {
	for _, c := range []struct {
		bin, require    string
		failed, skipped bool
	}{
		{"/nonexistent/versitygw", "1", true, false},
		{"/nonexistent/versitygw", "0", false, true},
		{"/bin/false", "0", true, false},
	} {
		t.Setenv(EnvBinary, c.bin)
		t.Setenv(testdeps.EnvRequire, c.require)
		t.Setenv("CI", "")
		if f := start(t); f.failed != c.failed || f.skipped != c.skipped {
			t.Errorf("%s=%s %s=%s: failed %v, skipped %v", EnvBinary, c.bin, testdeps.EnvRequire, c.require, f.failed, f.skipped)
		}
	}
}

// A started server answers S3 requests (an unsigned one is refused).
func TestStart(t *testing.T) {
	s := Start(t)
	resp, err := http.Get(s.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("unsigned request: %s, want 403", resp.Status)
	}
}
