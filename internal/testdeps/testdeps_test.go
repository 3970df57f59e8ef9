package testdeps

import (
	"testing"
)

func TestMissing(t *testing.T) {
	for _, c := range []struct {
		require, ci string
		fail        bool
	}{
		{"", "", false},
		{"0", "false", false},
		{"1", "", true},
		{"true", "", true},
		{"", "true", true},
		{"", "1", true},
	} {
		t.Setenv(EnvRequire, c.require)
		t.Setenv("CI", c.ci)
		if Required() != c.fail {
			t.Errorf("%s=%q CI=%q: Required() = %v", EnvRequire, c.require, c.ci, !c.fail)
		}
		failed, skipped := Outcome(t, func(tb testing.TB) { Missing(tb, "x not installed") })
		if failed != c.fail || skipped == c.fail {
			t.Errorf("%s=%q CI=%q: failed %v, skipped %v", EnvRequire, c.require, c.ci, failed, skipped)
		}
	}
}
