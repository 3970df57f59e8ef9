package storetest

import (
	"testing"
	"time"
)

func init() { featureTests = append(featureTests, featureTest{"LastSeen", testLastSeen}) }

func testLastSeen(t *testing.T, e *env) {
	before := time.Now().UnixMilli()
	e.users(t, "nodev")
	if err := e.s.EnsureUser(e.ctx, "alice", "alice.1"); err != nil {
		t.Fatal(err)
	}
	if err := e.s.EnsureUser(e.ctx, "alice", "alice.2"); err != nil {
		t.Fatal(err)
	}
	got, err := e.s.LastSeen(e.ctx, []string{"nodev", "alice", "nobody", "alice"})
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now().UnixMilli()
	// Database clocks may differ a little from ours.
	if len(got) != 4 || got[0] != 0 || got[2] != 0 || got[1] != got[3] || got[1] < before-5000 || got[1] > after+5000 {
		t.Fatalf("LastSeen: %v, want [0 ~%d 0 same]", got, before)
	}
	if got, err := e.s.LastSeen(e.ctx, nil); err != nil || len(got) != 0 {
		t.Fatalf("LastSeen(nil): %v %v", got, err)
	}
}
