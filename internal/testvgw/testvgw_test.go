package testvgw

import (
	"net/http"
	"testing"

	"github.com/mqim/mqim/internal/testdeps"
)

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
		failed, skipped := testdeps.Outcome(t, func(tb testing.TB) { Start(tb) })
		if failed != c.failed || skipped != c.skipped {
			t.Errorf("%s=%s %s=%s: failed %v, skipped %v", EnvBinary, c.bin, testdeps.EnvRequire, c.require, failed, skipped)
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
