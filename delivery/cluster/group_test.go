package cluster

import (
	"slices"
	"testing"

	"github.com/mqim/mqim/delivery"
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// TestBusCarriesEveryKind: read-fan-out group messages and membership
// changes reach the other nodes in the order they were committed, among
// inbox events [IM-11.3]; signals too, on their own subject; each envelope
// encoded by the dispatcher once, on first use, and shared by both sinks.
func TestBusCarriesEveryKind(t *testing.T) {
	a, _, ra, rb := twoNodes(t)
	d := delivery.NewDispatcher(ra, a) // node a's local sink, then the bus
	d.Broadcast(&store.Message{Conv: "g:1", Seq: 1})
	d.MembersChanged("g:1", nil, []string{"carol"})
	d.Deliver([]store.InboxEvent{{User: "carol", Seq: 7, Kind: protocol.KindRead}})
	d.Broadcast(&store.Message{Conv: "g:1", Seq: 2})
	d.Signal("carol", &protocol.Event{Kind: protocol.KindTyping, User: "dave"})

	waitFor(t, "group traffic on node b", func() bool { return rb.count("g:1") == 3 && rb.count("carol") == 2 })
	rb.mu.Lock()
	got, carol := slices.Clone(rb.events["g:1"]), slices.Clone(rb.events["carol"])
	rb.mu.Unlock()
	ra.mu.Lock()
	local := slices.Clone(ra.events["g:1"])
	ra.mu.Unlock()
	if !slices.Equal(got, local) || len(got) != 3 || got[1] != "members +[] -[carol]" {
		t.Fatalf("node b got %q, node a's local sink %q: want the same three, membership change second", got, local)
	}
	// Signals take their own subject: no order with stored events.
	slices.Sort(carol)
	if carol[0][:6] != "inbox " || carol[1][:7] != "signal " {
		t.Fatalf("carol's envelopes on node b: %q", carol)
	}
	if ra.n.Load() != 5 {
		t.Fatalf("node a's local sink got %d envelopes, want its own 5 and nothing back from the bus", ra.n.Load())
	}
}
