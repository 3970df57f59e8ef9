package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/mqim/mqim/protocol"
)

// TestOperatorGroupChanges: the operator changes a group over the admin API
// as no member — removes a member (who gets the event and loses the group
// topic's history), hands ownership on, reads the members — each change a
// group event with the operator as actor and an audit entry; the owner
// cannot be removed; only admin tokens may [IM-8.3-9].
func TestOperatorGroupChanges(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		alice := dl.dial(t, n, "alice")
		bob := dl.dial(t, n, "bob")
		carol := dl.dial(t, n, "carol")
		g := call[protocol.GroupChangeResult](alice, protocol.MethodGroupCreate,
			protocol.GroupRequest{Members: []string{"bob", "carol"}}).Group
		carol.waitInbox(g, 1)
		base := "/v1/admin/groups/" + g

		res := admin(t, n, "POST", base+"/remove", map[string]any{"user": "carol"})
		if res["group"] != g || res["conv_seq"] != float64(2) {
			t.Fatalf("remove: %v", res)
		}
		for _, d := range []*device{alice, bob, carol} {
			if ev := d.waitInbox(g, 2); ev.Msg.From != "ops" {
				t.Errorf("%s: the removal's actor is %q; want the operator, ops", d.id, ev.Msg.From)
			}
		}
		carol.rpcErr(protocol.MethodHistory, protocol.HistoryRequest{Conv: g}, protocol.CodeNotMember)

		admin(t, n, "POST", base+"/transfer", map[string]any{"user": "bob"})
		info := admin(t, n, "GET", base, nil)
		roles := map[string]any{}
		for _, m := range info["members"].([]any) {
			m := m.(map[string]any)
			roles[m["user"].(string)] = m["role"]
		}
		if fmt.Sprint(roles) != "map[alice:admin bob:owner]" {
			t.Fatalf("members after the operator's changes: %v", info)
		}
		bob.sendOK(gtext("b1", g, "the group goes on"))
		alice.waitInbox(g, 4)

		for _, c := range []struct {
			tok, method, path string
			body              any
			status            int
		}{
			{adminToken(t), "POST", base + "/remove", map[string]any{"user": "bob"}, http.StatusBadRequest}, // the owner
			{adminToken(t), "POST", base + "/explode", nil, http.StatusNotFound},
			{adminToken(t), "POST", "/v1/admin/groups/g:404/remove", map[string]any{"user": "bob"}, http.StatusNotFound},
			{adminToken(t), "GET", "/v1/admin/groups/nogroup", nil, http.StatusBadRequest},
			{token(t, "bob"), "POST", base + "/remove", map[string]any{"user": "alice"}, http.StatusForbidden},
			{"", "GET", base, nil, http.StatusUnauthorized},
		} {
			if status, res := httpDo(t, n, c.tok, c.method, c.path, c.body); status != c.status {
				t.Errorf("%s %s: %d %v; want %d", c.method, c.path, status, res, c.status)
			}
		}

		audit := admin(t, n, "GET", "/v1/admin/audit?action=group.changed", nil)
		var details []string
		for _, e := range audit["entries"].([]any) {
			e := e.(map[string]any)
			if e["target"] != g || e["actor"] != "ops" {
				t.Errorf("audit entry %v", e)
			}
			details = append(details, e["detail"].(string))
		}
		if got := strings.Join(details, "; "); got != "op=transfer users=bob conv_seq=3; op=remove users=carol conv_seq=2" {
			t.Errorf("group.changed entries: %q", got)
		}
	})
}
