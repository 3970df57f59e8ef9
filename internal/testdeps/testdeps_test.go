package testdeps

import (
	"runtime"
	"testing"
)

// fakeTB records whether Missing failed or skipped; both end the calling
// goroutine, as testing's do.
type fakeTB struct {
	testing.TB
	failed, skipped bool
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Fatalf(string, ...any) { f.failed = true; runtime.Goexit() }
func (f *fakeTB) Skip(...any)           { f.skipped = true; runtime.Goexit() }

func missing(t *testing.T) *fakeTB {
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Missing(f, "x not installed")
	}()
	<-done
	return f
}

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
		f := missing(t)
		if f.failed != c.fail || f.skipped == c.fail {
			t.Errorf("%s=%q CI=%q: failed %v, skipped %v", EnvRequire, c.require, c.ci, f.failed, f.skipped)
		}
	}
}
