package local

import (
	"context"
	"fmt"
	"slices"
	gosync "sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/mqim/mqim/delivery"
)

// publisher records what the sink publishes; block, if set, holds every
// publish until it is closed.
type publisher struct {
	mu         gosync.Mutex
	log        []string
	subscribed map[string]bool
	block      chan struct{}
}

func (p *publisher) record(s string) {
	if p.block != nil {
		<-p.block
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = append(p.log, s)
}

func (p *publisher) PublishInbox(user string, payload []byte, _ time.Time) {
	p.record(user + " " + string(payload))
}
func (p *publisher) PublishGroup(conv string, payload []byte, _ time.Time) {
	p.record(conv + " " + string(payload))
}
func (p *publisher) InboxSubscribed(user string) bool { return p.subscribed[user] }
func (p *publisher) ForgetMembers(conv string, added, removed []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = append(p.log, fmt.Sprintf("%s members -%v", conv, removed))
}

func (p *publisher) snapshot() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.log)
}

func env(kind delivery.Kind, key, payload string) *delivery.Envelope {
	if kind == delivery.Group {
		return delivery.Received(kind, "", key, []byte(payload), nil, nil)
	}
	return delivery.Received(kind, key, "", []byte(payload), nil, nil)
}

// Envelopes of one key keep their order; inbox events and signals for a
// user with no device here are skipped; a membership change is applied
// before Take returns.
func TestFanoutOrderSkipAndMembers(t *testing.T) {
	pub := &publisher{subscribed: map[string]bool{"bob": true}}
	f := New(pub, Config{})
	_ = f.Start(context.Background())
	f.Take([]*delivery.Envelope{delivery.Received(delivery.Members, "", "g:1", nil, nil, []string{"carol"})})
	if got := pub.snapshot(); len(got) != 1 || got[0] != "g:1 members -[carol]" {
		t.Fatalf("membership change not applied at once: %q", got)
	}
	for i := range 100 {
		f.Take([]*delivery.Envelope{env(delivery.Inbox, "bob", fmt.Sprint(i)), env(delivery.Inbox, "nobody", "x"), env(delivery.Group, "g:1", fmt.Sprint(i))})
	}
	f.Take([]*delivery.Envelope{env(delivery.Signal, "bob", "typing"), env(delivery.Signal, "nobody", "typing")})
	_ = f.Shutdown(context.Background()) // delivers what is queued
	var bob, group []string
	for _, s := range pub.snapshot()[1:] {
		switch s[:3] {
		case "bob":
			bob = append(bob, s)
		case "g:1":
			group = append(group, s)
		default:
			t.Errorf("published %q for a user with no device here", s)
		}
	}
	if len(bob) != 101 || len(group) != 100 || bob[100] != "bob typing" {
		t.Fatalf("bob %d, group %d published", len(bob), len(group))
	}
	for i := range 100 {
		if bob[i] != fmt.Sprintf("bob %d", i) || group[i] != fmt.Sprintf("g:1 %d", i) {
			t.Fatalf("out of order at %d: %q %q", i, bob[i], group[i])
		}
	}
}

// A full shard drops (counted) and never blocks the caller.
func TestFanoutFullShardDrops(t *testing.T) {
	pub := &publisher{subscribed: map[string]bool{"bob": true}, block: make(chan struct{})}
	f := New(pub, Config{Shards: 1, ShardQueue: 2})
	_ = f.Start(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 10 {
			f.Take([]*delivery.Envelope{env(delivery.Inbox, "bob", fmt.Sprint(i))})
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Take blocked on a full shard")
	}
	var m dto.Metric
	if err := f.dropped.Write(&m); err != nil {
		t.Fatal(err)
	}
	if d := m.GetCounter().GetValue(); d < 7 { // one being published, two queued
		t.Fatalf("dropped %v of 10, want at least 7", d)
	}
	close(pub.block)
	_ = f.Shutdown(context.Background())
}
