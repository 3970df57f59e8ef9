package im

import (
	"context"
	"testing"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// A policy refusal stores nothing, but never refuses the retry of a send
// that is already stored [IM-4.5]: the retry gets the stored message back.
func TestPolicyLetsStoredRetriesThrough(t *testing.T) {
	c := newCore(t, true, "alice", "bob")
	refuse := false
	c.checks = []check{func(ctx context.Context, sess *Session, req *store.SendRequest) *protocol.Error {
		if refuse {
			return protocol.Errorf(protocol.CodeUnavailable, "refused by the test's policy")
		}
		return nil
	}}
	first := c.send(t, session("alice"), text("c1", "bob", "hi"))
	if first.Err != nil {
		t.Fatalf("first send: %v", first.Err)
	}
	refuse = true
	retry := c.send(t, session("alice"), text("c1", "bob", "hi"))
	if retry.Err != nil || !retry.Duplicate || retry.Msg.ID != first.Msg.ID {
		t.Fatalf("retry under a refusing policy: %+v; want the stored message as a duplicate", retry)
	}
	other := c.send(t, session("alice"), text("c2", "bob", "hi again"))
	if other.Err == nil || other.Err.Code != protocol.CodeUnavailable || other.Cmid != "c2" {
		t.Fatalf("new send under a refusing policy: %+v; want the policy's refusal", other)
	}
	if ok, err := c.store.Stored(context.Background(), "alice", "c2"); err != nil || ok {
		t.Fatalf("refused send stored: %v, %v", ok, err)
	}
}
