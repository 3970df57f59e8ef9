package ratelimit

import (
	"strconv"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

func TestBucketBurstThenRate(t *testing.T) {
	b := NewBucket(Limit{Rate: 10, Burst: 3})
	for i := range 3 {
		if ok, _ := b.Take(t0); !ok {
			t.Fatalf("token %d of the burst refused", i)
		}
	}
	ok, wait := b.Take(t0)
	if ok || wait != 100*time.Millisecond {
		t.Fatalf("past the burst: %v, wait %v; want refused, 100ms", ok, wait)
	}
	if ok, _ := b.Take(t0.Add(50 * time.Millisecond)); ok {
		t.Fatal("half a token taken")
	}
	if ok, _ := b.Take(t0.Add(100 * time.Millisecond)); !ok {
		t.Fatal("the refilled token refused")
	}
	var off *Bucket = NewBucket(Limit{})
	if off != nil {
		t.Fatal("a zero rate made a bucket")
	}
	if ok, _ := off.Take(t0); !ok {
		t.Fatal("no limit refused")
	}
}

func TestLimitValidate(t *testing.T) {
	for _, l := range []Limit{{Rate: -1, Burst: 1}, {Rate: 1}, {Rate: 1, Burst: -2}} {
		if l.Validate() == nil {
			t.Errorf("%+v accepted", l)
		}
	}
	for _, l := range []Limit{{}, {Burst: 5}, {Rate: 0.5, Burst: 1}} {
		if err := l.Validate(); err != nil {
			t.Errorf("%+v: %v", l, err)
		}
	}
}

func TestKeyedIsPerKey(t *testing.T) {
	k := NewKeyed(Limit{Rate: 1, Burst: 2}, 0)
	for range 2 {
		if ok, _ := k.Take("a", t0); !ok {
			t.Fatal("a refused within its burst")
		}
	}
	if ok, _ := k.Take("a", t0); ok {
		t.Fatal("a past its burst")
	}
	if ok, _ := k.Take("b", t0); !ok {
		t.Fatal("b throttled by a")
	}
}

// Memory stays bounded: idle keys (a full bucket, no failure left) are
// forgotten, and past the bound arbitrary ones.
func TestKeysAreForgotten(t *testing.T) {
	const bound = 4096
	k := NewKeyed(Limit{Rate: 1, Burst: 5}, bound)
	b := NewBackoff(BackoffConfig{Free: 1, Base: time.Millisecond, Max: time.Second, Decay: time.Second, Keys: bound})
	for name, c := range map[string]struct {
		use func(key string, now time.Time)
		len func() int
	}{
		"keyed":   {func(key string, now time.Time) { k.Take(key, now) }, k.Len},
		"backoff": {func(key string, now time.Time) { b.Fail(key, now) }, b.Len},
	} {
		// Each key used once, then idle a second later.
		for i := range 3 * bound {
			c.use(strconv.Itoa(i), t0.Add(time.Duration(i)*time.Second))
			if n := c.len(); n > bound {
				t.Fatalf("%s: %d keys kept, bound %d", name, n, bound)
			}
		}
		if n := c.len(); n > 2*minSweep {
			t.Errorf("%s: %d idle keys kept", name, n)
		}
		// All busy at once: still bounded.
		for i := range 3 * bound {
			for range 5 {
				c.use("busy"+strconv.Itoa(i), t0)
			}
			if n := c.len(); n > bound {
				t.Fatalf("%s: %d keys kept, bound %d", name, n, bound)
			}
		}
	}
}

func TestBackoffGrowsAndDecays(t *testing.T) {
	b := NewBackoff(BackoffConfig{Free: 2, Base: 100 * time.Millisecond, Max: time.Second, Decay: 10 * time.Second})
	var got []time.Duration
	for range 8 {
		got = append(got, b.Fail("k", t0))
	}
	want := []time.Duration{0, 0, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays %v, want %v", got, want)
		}
	}
	if d := b.Fail("other", t0); d != 0 {
		t.Fatalf("another key delayed %v", d)
	}
	// However long it failed, the count is capped: after ceil×Decay the
	// key is back to no delay.
	for range 1000 {
		b.Fail("k", t0)
	}
	back := t0.Add(time.Duration(b.ceil) * 10 * time.Second)
	if d := b.Fail("k", back); d != 0 {
		t.Fatalf("after %v without failures: delay %v", back.Sub(t0), d)
	}
	if NewBackoff(BackoffConfig{}) != nil || (*Backoff)(nil).Fail("k", t0) != 0 {
		t.Fatal("a zero Max delays")
	}
}

func TestBackoffValidate(t *testing.T) {
	for _, c := range []BackoffConfig{
		{Max: -1},
		{Max: time.Second, Base: 0, Decay: time.Second},
		{Max: time.Second, Base: 2 * time.Second, Decay: time.Second},
		{Max: time.Second, Base: time.Millisecond},
		{Max: time.Second, Base: time.Millisecond, Decay: time.Second, Free: -1},
	} {
		if c.Validate() == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if err := (BackoffConfig{}).Validate(); err != nil {
		t.Error(err)
	}
}
