package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/mqim/mqim/store"
)

func init() {
	featureTests = append(featureTests,
		featureTest{"AccountState", testAccountState},
		featureTest{"DeleteUser", testDeleteUser},
		featureTest{"AuditLog", testAuditLog},
	)
}

func (e *env) account(t *testing.T, user, client string) store.Account {
	t.Helper()
	a, err := e.s.Account(e.ctx, user, client)
	if err != nil {
		t.Fatalf("Account(%q): %v", user, err)
	}
	return a
}

// Disable, token and device revocation [IM-3.1-8].
func testAccountState(t *testing.T, e *env) {
	if a := e.account(t, "alice", "phone"); a != (store.Account{}) {
		t.Errorf("unknown user: %+v; want the zero Account", a)
	}
	for name, err := range map[string]error{
		"SetDisabled":  e.s.SetDisabled(e.ctx, "nobody", true),
		"RevokeTokens": e.s.RevokeTokens(e.ctx, "nobody", 100),
		"RevokeDevice": e.s.RevokeDevice(e.ctx, "nobody", "phone", true),
	} {
		if !errors.Is(err, store.ErrUnknownUser) {
			t.Errorf("%s of an unknown user: %v; want ErrUnknownUser", name, err)
		}
	}
	e.users(t, "alice")
	if a := e.account(t, "alice", "phone"); a != (store.Account{Exists: true}) {
		t.Errorf("new user: %+v", a)
	}
	if err := e.s.SetDisabled(e.ctx, "alice", true); err != nil {
		t.Fatal(err)
	}
	if !e.account(t, "alice", "").Disabled {
		t.Error("disabled user not Disabled")
	}
	if err := e.s.SetDisabled(e.ctx, "alice", false); err != nil {
		t.Fatal(err)
	}
	if e.account(t, "alice", "").Disabled {
		t.Error("enabled user still Disabled")
	}
	// Not-before never moves back.
	for _, nb := range []int64{200, 100} {
		if err := e.s.RevokeTokens(e.ctx, "alice", nb); err != nil {
			t.Fatal(err)
		}
	}
	if a := e.account(t, "alice", ""); a.NotBefore != 200 {
		t.Errorf("NotBefore = %d; want 200", a.NotBefore)
	}
	for _, c := range []string{"phone", "laptop", "phone"} {
		if err := e.s.RevokeDevice(e.ctx, "alice", c, true); err != nil {
			t.Fatal(err)
		}
	}
	if !e.account(t, "alice", "phone").DeviceRevoked || e.account(t, "alice", "tablet").DeviceRevoked {
		t.Error("DeviceRevoked wrong for phone (revoked) or tablet (not)")
	}
	if err := e.s.RevokeDevice(e.ctx, "alice", "laptop", false); err != nil {
		t.Fatal(err)
	}
	if ids, err := e.s.RevokedDevices(e.ctx, "alice"); err != nil || !slices.Equal(ids, []string{"phone"}) {
		t.Errorf("RevokedDevices = %v, %v; want [phone]", ids, err)
	}
}

// Deleting a user leaves nothing of it where the spec says nothing stays
// [IM-8.3-5]: every table is walked (UserRows), so a table added later
// that keeps a user's data fails here until DeleteUser erases it.
func testDeleteUser(t *testing.T, e *env) {
	e.users(t, "bob", "carol")
	if err := e.s.EnsureUser(e.ctx, "alice", "alice.phone"); err != nil {
		t.Fatal(err)
	}
	direct := e.send(t, e.req("alice", "bob", "a1", "secret one"), e.req("bob", "alice", "b1", "hi alice"), e.req("alice", "bob", "a2", "secret two"))
	conv := direct[0].Msg.Conv
	if _, _, err := e.s.MarkRead(e.ctx, "alice", conv, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.DeleteForMe(e.ctx, "alice", direct[1].Msg.ID, tsBase); err != nil {
		t.Fatal(err)
	}
	e.contact(t, "alice", "bob", store.ContactAdd, 10)
	e.contact(t, "bob", "alice", store.ContactBlock, 11)
	e.contact(t, "carol", "alice", store.ContactAdd, 12)
	yes := true
	if _, _, err := e.s.UpdateSettings(e.ctx, "alice", conv, store.SettingsChange{Pinned: &yes}, 13); err != nil {
		t.Fatal(err)
	}
	e.change(t, store.GroupChange{Group: "g:1", Actor: "carol", Op: store.OpCreate, Users: []string{"alice", "bob"}})
	gmsg := e.gsend(t, e.greq("alice", "g:1", "a3", "group secret", "bob"))
	if gmsg[0].Err != nil {
		t.Fatal(gmsg[0].Err)
	}
	e.register(t, "alice", "alice.phone", "tok-alice")
	e.register(t, "bob", "bob.phone", "tok-bob")
	if res := e.send(t, e.req("bob", "alice", "b9", "hi alice")); res[0].Err != nil { // a push candidate for alice
		t.Fatal(res[0].Err)
	}
	if err := e.s.RevokeDevice(e.ctx, "alice", "alice.old", true); err != nil {
		t.Fatal(err)
	}
	if err := e.s.SetDisabled(e.ctx, "alice", true); err != nil {
		t.Fatal(err)
	}

	if err := e.s.DeleteUser(e.ctx, "alice", tsBase+1000); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	counter, ok := e.s.(store.UserRowCounter)
	if !ok {
		t.Fatalf("%T does not count a user's rows (store.UserRowCounter)", e.s)
	}
	rows, err := counter.UserRows(e.ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	// What stays: the tombstone, the recalled markers of alice's messages
	// (their seqs stay taken), the other members' inbox rows that point at
	// them, and the audit log.
	keep := map[string]bool{"deleted_users.id": true, "messages.sender": true, "inbox.actor": true,
		"audit_log.actor": true, "audit_log.target": true}
	for _, col := range []string{"users.id", "devices.user_id", "members.user_id", "contacts.owner_id", "contacts.peer_id",
		"inbox.user_id", "hidden.user_id", "conv_settings.user_id", "revoked_devices.user_id",
		"push_devices.user_id", "push_outbox.user_id", "push_claims.user_id"} {
		if _, ok := rows[col]; !ok {
			t.Errorf("UserRows did not walk %s (walked %v)", col, rows)
		}
	}
	for col, n := range rows {
		if n > 0 && !keep[col] {
			t.Errorf("%d rows of alice remain in %s", n, col)
		}
	}
	if rows["deleted_users.id"] != 1 {
		t.Errorf("no tombstone: %v", rows)
	}
	for _, conv := range []string{conv, "g:1"} {
		for _, m := range e.history(t, "bob", conv, store.HistoryQuery{}).Messages {
			if m.From == "alice" && (m.Type != store.TypeRecalled || string(m.Body) != string(store.RecalledBody) || len(m.Mentions) > 0) {
				t.Errorf("alice's message %d in %s kept: type %q body %q", m.Seq, conv, m.Type, m.Body)
			}
			if m.From == "bob" && string(m.Body) != "hi alice" {
				t.Errorf("bob's own message changed: %+v", m)
			}
		}
	}
	if c := e.conversation(t, "bob", conv); c.Peer != "alice" {
		t.Errorf("bob's conversation with the deleted alice: peer %q; want alice", c.Peer)
	}
	// The id stays dead: not created again, not a recipient.
	if err := e.s.EnsureUser(e.ctx, "alice", "alice.phone"); !errors.Is(err, store.ErrUserDeleted) {
		t.Errorf("EnsureUser of a deleted user: %v; want ErrUserDeleted", err)
	}
	if ok, err := e.s.UserExists(e.ctx, "alice"); err != nil || ok {
		t.Errorf("UserExists(deleted) = %v, %v", ok, err)
	}
	if a := e.account(t, "alice", "alice.phone"); !a.Deleted || a.Exists {
		t.Errorf("Account of a deleted user: %+v", a)
	}
	if res := e.append(t, e.req("bob", "alice", "b2", "are you there")); !errors.Is(res[0].Err, store.ErrUnknownUser) {
		t.Errorf("send to a deleted user: %v; want ErrUnknownUser", res[0].Err)
	}
	if err := e.s.DeleteUser(e.ctx, "alice", tsBase+2000); err != nil {
		t.Errorf("deleting again: %v", err)
	}
	if err := e.s.DeleteUser(e.ctx, "nobody", tsBase); !errors.Is(err, store.ErrUnknownUser) {
		t.Errorf("DeleteUser(nobody): %v; want ErrUnknownUser", err)
	}
	e.reopen()
	if err := e.s.EnsureUser(e.ctx, "alice", ""); !errors.Is(err, store.ErrUserDeleted) {
		t.Errorf("after reopen, EnsureUser of a deleted user: %v", err)
	}
}

// The audit log keeps every field and pages newest first [IM-8.3-6].
func testAuditLog(t *testing.T, e *env) {
	var ids []int64
	for i := range 7 {
		target := "alice"
		if i%2 == 1 {
			target = "bob"
		}
		id, err := e.s.AppendAudit(e.ctx, store.AuditEntry{TS: int64(100 + i), Actor: "root", Role: "admin",
			Action: store.AuditUserDisabled, Target: target, Detail: fmt.Sprint("n=", i), Remote: "127.0.0.1:5000"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	var got []int64
	q := store.AuditQuery{Limit: 3}
	for pages := 0; ; pages++ {
		p, err := e.s.Audit(e.ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Entries) > 3 || pages > 3 {
			t.Fatalf("page %d: %d entries", pages, len(p.Entries))
		}
		for _, en := range p.Entries {
			got = append(got, en.ID)
		}
		if p.Next == 0 {
			break
		}
		q.Before = p.Next
	}
	want := slices.Clone(ids)
	slices.Reverse(want)
	if !slices.Equal(got, want) {
		t.Errorf("paged ids %v; want %v", got, want)
	}
	p, err := e.s.Audit(e.ctx, store.AuditQuery{Target: "bob", Limit: 10})
	if err != nil || len(p.Entries) != 3 || p.Next != 0 {
		t.Fatalf("target bob: %+v, %v; want 3 entries", p, err)
	}
	if en := p.Entries[0]; en != (store.AuditEntry{ID: ids[5], TS: 105, Actor: "root", Role: "admin", Action: store.AuditUserDisabled,
		Target: "bob", Detail: "n=5", Remote: "127.0.0.1:5000"}) {
		t.Errorf("entry read back: %+v", en)
	}
	if p, err := e.s.Audit(e.ctx, store.AuditQuery{Action: store.AuditUserDeleted}); err != nil || len(p.Entries) != 0 {
		t.Errorf("action filter: %+v, %v", p, err)
	}
}
