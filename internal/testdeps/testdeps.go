// Package testdeps decides what a test does when something it needs outside
// Go is missing (PostgreSQL, Mosquitto, Chromium, …): skip, so that a
// developer's plain go test ./... passes politely, or fail, so that a run of
// the project's runner never passes by skipping.
//
// A missing dependency fails the test when MQIM_TEST_REQUIRE_DEPS is true
// (scripts/test exports MQIM_TEST_REQUIRE_DEPS=1) or CI is true.
package testdeps

import (
	"os"
	"runtime"
	"strconv"
	"testing"
)

// EnvRequire is the environment variable that makes missing dependencies
// fail tests instead of skipping them.
const EnvRequire = "MQIM_TEST_REQUIRE_DEPS"

// Required reports whether a missing dependency must fail the test.
func Required() bool {
	for _, v := range []string{EnvRequire, "CI"} {
		if b, _ := strconv.ParseBool(os.Getenv(v)); b {
			return true
		}
	}
	return false
}

// Missing ends t because a dependency is missing: why says what and how to
// get it. It fails t if dependencies are required (Required), else skips it.
func Missing(tb testing.TB, why string) {
	tb.Helper()
	if Required() {
		tb.Fatalf("%s (%s=1 or CI=true: missing dependencies fail the test)", why, EnvRequire)
	}
	tb.Skip(why)
}

// Outcome runs f with a testing.TB that records instead of ending t, and
// reports whether f failed (Fatalf) or skipped (Skip): for tests of helpers
// that must fail or skip, such as Missing.
func Outcome(t *testing.T, f func(tb testing.TB)) (failed, skipped bool) {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r.failed, r.skipped
}

// recorder records a failure or a skip; both end the calling goroutine, as
// testing's do.
type recorder struct {
	testing.TB
	failed, skipped bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Fatalf(string, ...any) { r.failed = true; runtime.Goexit() }
func (r *recorder) Skip(...any)           { r.skipped = true; runtime.Goexit() }
