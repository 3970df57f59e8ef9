package im

import (
	"context"
	"errors"
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

// storedFails is a store that cannot answer Stored.
type storedFails struct{ store.Store }

func (storedFails) Stored(context.Context, string, string) (bool, error) {
	return false, errors.New("database is locked")
}

// When a check refuses and the store cannot say whether the send is
// stored, the answer is unavailable (retry), never the refusal, which
// could be final for a stored message [IM-4.5-5].
func TestPolicyUnsureIsUnavailable(t *testing.T) {
	c := newCore(t, true, "alice", "bob")
	c.cfg.Store = storedFails{c.store}
	c.checks = []check{func(ctx context.Context, sess *Session, req *store.SendRequest) *protocol.Error {
		return protocol.Errorf(protocol.CodeContentRefused, "refused by the test's policy")
	}}
	if o := c.send(t, session("alice"), text("c1", "bob", "hi")); o.Err == nil || o.Err.Code != protocol.CodeUnavailable {
		t.Fatalf("outcome %+v; want unavailable", o)
	}
}
