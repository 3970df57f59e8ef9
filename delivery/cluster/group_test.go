package cluster

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mqim/mqim/store"
)

// groupRecorder is a node's group delivery.
type groupRecorder struct {
	mu  sync.Mutex
	log []string
}

func (r *groupRecorder) DeliverGroupEncoded(conv string, payload []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, conv+" "+string(payload))
}

func (r *groupRecorder) ForgetMembers(conv string, added, removed []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, fmt.Sprintf("%s +%v -%v", conv, added, removed))
}

func (r *groupRecorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log)
}

// TestBusCarriesGroups: read-fan-out group messages and membership changes
// reach the other nodes, in the order they were committed, among inbox
// events [IM-11.3].
func TestBusCarriesGroups(t *testing.T) {
	n := embedded(t)
	var ra, rb recorder
	var ga, gb groupRecorder
	encodeGroup := func(m *store.Message) ([]byte, error) { return fmt.Appendf(nil, "#%d", m.Seq), nil }
	start := func(local *recorder, groups *groupRecorder) *Bus {
		b, err := New(n.Conn, Config{Local: local, Encode: encodeSeq, Groups: groups, EncodeGroup: encodeGroup})
		if err != nil {
			t.Fatal(err)
		}
		b.Start()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := b.Stop(ctx); err != nil {
				t.Error(err)
			}
		})
		return b
	}
	a := start(&ra, &ga)
	start(&rb, &gb)
	consuming(t, a, &rb)

	a.DeliverGroup(&store.Message{Conv: "g:1", Seq: 1})
	a.MembersChanged("g:1", nil, []string{"carol"})
	a.Deliver([]store.InboxEvent{{User: "carol", Seq: 7}})
	a.DeliverGroup(&store.Message{Conv: "g:1", Seq: 2})
	want := []string{"g:1 #1", "g:1 +[] -[carol]", "g:1 #2"}
	waitFor(t, "group traffic on node b", func() bool { return len(gb.snapshot()) == len(want) })
	if got := gb.snapshot(); !slices.Equal(got, want) {
		t.Fatalf("node b got %q, want %q", got, want)
	}
	waitFor(t, "inbox event on node b", func() bool { return rb.n.Load() == 1 })
	if got := ga.snapshot(); len(got) != 0 {
		t.Fatalf("node a got its own group traffic back: %q", got)
	}
	if _, err := New(n.Conn, Config{Local: &ra, Encode: encodeSeq, Groups: &ga}); err == nil {
		t.Fatal("New accepted Groups without EncodeGroup")
	}
}
