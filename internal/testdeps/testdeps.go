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
