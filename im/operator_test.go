package im

import (
	"testing"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/protocol/authtoken"
)

// An operator session (the admin API) changes and reads any group through
// the group methods, as no member, and may call nothing else [IM-8.3-9].
func TestOperatorSession(t *testing.T) {
	c := newCore(t, true, "alice", "bob", "carol")
	res := mustOK(t, c.call(t, session("alice"), protocol.MethodGroupCreate, map[string]any{"members": []string{"bob", "carol"}})).(*protocol.GroupChangeResult)
	ops := &Session{User: "ops", Role: authtoken.RoleAdmin, Format: protocol.JSON, Operator: true}

	r := c.call(t, ops, protocol.MethodGroupRemove, map[string]any{"group": res.Group, "user": "carol"})
	if ch := mustOK(t, r).(*protocol.GroupChangeResult); ch.ConvSeq != 2 {
		t.Fatalf("remove by the operator: %+v", ch)
	}
	waitFor(t, "carol's removal event", func() bool {
		evs := c.rec.eventsOf("carol")
		return len(evs) == 2 && evs[1].Actor == "ops"
	})
	info := mustOK(t, c.call(t, ops, protocol.MethodGroupInfo, map[string]any{"group": res.Group})).(*protocol.GroupInfo)
	if info.MemberCount != 2 {
		t.Fatalf("group.info as the operator: %+v", info)
	}
	if r := c.call(t, ops, protocol.MethodGroupRemove, map[string]any{"group": res.Group, "user": "alice"}); code(r) != protocol.CodeBadRequest {
		t.Fatalf("removing the owner: %+v, want bad_request", r.Error)
	}
	for _, m := range []string{protocol.MethodGroupLeave, protocol.MethodSync, protocol.MethodContactList, protocol.MethodGroupCreate} {
		if r := c.call(t, ops, m, map[string]any{"group": res.Group}); code(r) != protocol.CodeNotAuthorized {
			t.Errorf("%s as the operator: %+v, want not_authorized", m, r.Error)
		}
	}
	// The same id as an ordinary session is no member.
	if r := c.call(t, session("ops"), protocol.MethodGroupInfo, map[string]any{"group": res.Group}); code(r) == "" {
		t.Fatal("group.info by a non-member succeeded")
	}
}
