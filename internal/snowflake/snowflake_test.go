package snowflake

import (
	"testing"
	"time"
)

func TestNextUniqueAndIncreasing(t *testing.T) {
	g, err := New(7)
	if err != nil {
		t.Fatal(err)
	}
	fixed := time.Now()
	g.now = func() time.Time { return fixed } // force counter overflow into the next ms
	prev := int64(-1)
	for i := 0; i < 3*maxSeq; i++ {
		id := g.Next()
		if id <= prev {
			t.Fatalf("id %d after %d: not increasing", id, prev)
		}
		if node := id >> seqBits & MaxNode; node != 7 {
			t.Fatalf("node bits = %d, want 7", node)
		}
		prev = id
	}
	g.now = func() time.Time { return fixed.Add(-time.Hour) } // clock goes back
	if id := g.Next(); id <= prev {
		t.Fatalf("id %d after clock went back is not above %d", id, prev)
	}
}

func TestNewRejectsBadNode(t *testing.T) {
	if _, err := New(MaxNode + 1); err == nil {
		t.Fatal("want error for node id above MaxNode")
	}
}
