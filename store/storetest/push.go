package storetest

import (
	"errors"
	"slices"
	"testing"

	"github.com/mqim/mqim/store"
)

func init() {
	featureTests = append(featureTests,
		featureTest{"PushRegistration", testPushRegistration},
		featureTest{"PushOutbox", testPushOutbox},
		featureTest{"PushOutboxGroups", testPushOutboxGroups},
		featureTest{"PushClaims", testPushClaims},
		featureTest{"PushReads", testPushReads},
	)
}

func (e *env) register(t *testing.T, user, client, token string) {
	t.Helper()
	d := store.PushDevice{User: user, Client: client, Platform: store.PlatformAPNs, Token: token, App: "com.example.im", Env: "sandbox", Locale: "en", Created: 100}
	if err := e.s.RegisterPush(e.ctx, d, 10); err != nil {
		t.Fatalf("RegisterPush(%s, %s): %v", user, client, err)
	}
}

func (e *env) pushClients(t *testing.T, user string) []string {
	t.Helper()
	ds, err := e.s.PushDevices(e.ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range ds {
		out = append(out, d.Client+"="+d.Token)
	}
	return out
}

// testPushRegistration: registrations by (user, client id), replaced on
// register again, a token moving to its latest registration, the limit,
// unregister, a CONNECT by another user taking a client id over, and a
// provider removing a token [IM-17.1].
func testPushRegistration(t *testing.T, e *env) {
	e.register(t, "alice", "phone", "t1")
	e.register(t, "alice", "tablet", "t2")
	e.register(t, "alice", "phone", "t3") // the phone's new token
	if got := e.pushClients(t, "alice"); !slices.Equal(got, []string{"phone=t3", "tablet=t2"}) {
		t.Fatalf("alice's registrations %v", got)
	}
	ds, _ := e.s.PushDevices(e.ctx, "alice")
	if d := ds[0]; d.User != "alice" || d.Platform != store.PlatformAPNs || d.App != "com.example.im" || d.Env != "sandbox" || d.Locale != "en" || d.Created != 100 {
		t.Fatalf("registration %+v", d)
	}
	// The same token registered by bob's device moves there.
	e.register(t, "bob", "bphone", "t2")
	if got := e.pushClients(t, "alice"); !slices.Equal(got, []string{"phone=t3"}) {
		t.Fatalf("alice after the token moved: %v", got)
	}
	// The limit counts other client ids; replacing one's own is allowed.
	d := store.PushDevice{User: "carol", Platform: store.PlatformFCM, Created: 1}
	for i, c := range []string{"c1", "c2"} {
		d.Client, d.Token = c, "ft"+c
		if err := e.s.RegisterPush(e.ctx, d, 2); err != nil {
			t.Fatalf("registration %d: %v", i, err)
		}
	}
	d.Client, d.Token = "c3", "ftc3"
	if err := e.s.RegisterPush(e.ctx, d, 2); !errors.Is(err, store.ErrPushLimit) {
		t.Fatalf("third registration over a limit of 2: %v", err)
	} else if pe := store.ProtocolError(err); pe == nil || pe.Code != "bad_request" {
		t.Fatalf("limit as a protocol error: %v", pe)
	}
	d.Client, d.Token = "c2", "ftc2b"
	if err := e.s.RegisterPush(e.ctx, d, 2); err != nil {
		t.Fatalf("replacing at the limit: %v", err)
	}
	if ok, err := e.s.UnregisterPush(e.ctx, "carol", "c1"); !ok || err != nil {
		t.Fatalf("unregister: %v %v", ok, err)
	}
	if ok, err := e.s.UnregisterPush(e.ctx, "carol", "c1"); ok || err != nil {
		t.Fatalf("unregister again: %v %v", ok, err)
	}
	// dave connects with alice's client id "phone": alice's registration goes.
	if n, err := e.s.TakeOverClient(e.ctx, "phone", "alice"); n != 0 || err != nil {
		t.Fatalf("own client id: %d %v", n, err)
	}
	if n, err := e.s.TakeOverClient(e.ctx, "phone", "dave"); n != 1 || err != nil {
		t.Fatalf("take over: %d %v", n, err)
	}
	if got := e.pushClients(t, "alice"); len(got) != 0 {
		t.Fatalf("alice after dave took her client id: %v", got)
	}
	if err := e.s.RemovePushToken(e.ctx, store.PlatformAPNs, "t2"); err != nil {
		t.Fatal(err)
	}
	e.reopen()
	if got := e.pushClients(t, "bob"); len(got) != 0 {
		t.Fatalf("bob after his token was removed: %v", got)
	}
	if got := e.pushClients(t, "carol"); !slices.Equal(got, []string{"c2=ftc2b"}) {
		t.Fatalf("carol after reopen: %v", got)
	}
}

func (e *env) pending(t *testing.T) []store.PushCandidate {
	t.Helper()
	cs, err := e.s.PendingPush(e.ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func pushUsers(cs []store.PushCandidate) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.User)
	}
	slices.Sort(out)
	return out
}

// testPushOutbox: a direct message writes an outbox row, in its
// transaction, for a recipient with a push device and for no one else
// (not the sender, not a user without one); a retry writes none; rows
// survive a restart until dequeued [IM-17.4-1].
func testPushOutbox(t *testing.T, e *env) {
	e.users(t, "alice", "bob", "carol")
	e.register(t, "bob", "bphone", "tb")
	e.register(t, "alice", "aphone", "ta")
	r := e.send(t, e.req("alice", "bob", "c1", "hi"), e.req("alice", "carol", "c2", "hi carol"))[0]
	if d := e.append(t, e.req("alice", "bob", "c1", "hi"))[0]; !d.Duplicate { // a retry
		t.Fatalf("retry %+v", d)
	}
	e.reopen()
	cs := e.pending(t)
	if len(cs) != 1 {
		t.Fatalf("outbox %+v, want bob's row only", cs)
	}
	bob := eventFor(t, r.Events, "bob")
	if c := cs[0]; c.User != "bob" || c.Conv != r.Msg.Conv || c.ConvSeq != r.Msg.Seq || c.InboxSeq != bob.Seq ||
		c.Kind != store.PushMessage || c.Sender != "alice" || c.TS != r.Msg.TS {
		t.Fatalf("outbox row %+v for %+v", c, r.Msg)
	}
	if err := e.dequeue([]store.PushKey{{User: "bob", Conv: r.Msg.Conv, ConvSeq: r.Msg.Seq}}); err != nil {
		t.Fatal(err)
	}
	if cs := e.pending(t); len(cs) != 0 {
		t.Fatalf("outbox after dequeue: %+v", cs)
	}
}

// testPushOutboxGroups: a group that fans out on write has a row per
// member with a device; on read, the mentioned members (PushMention),
// every member with a device for "*" by an owner or admin (PushEveryone),
// nobody for "*" by a plain member; a bridge's notification is
// PushSystem [IM-17.2].
func testPushOutboxGroups(t *testing.T, e *env) {
	e.users(t, "alice", "bob", "carol", "dave", "ci")
	for _, u := range []string{"alice", "bob", "carol"} {
		e.register(t, u, u+"-phone", "t-"+u)
	}
	const small, big = "g:small", "g:big"
	e.change(t, store.GroupChange{Group: small, Actor: "alice", Op: store.OpCreate, Users: []string{"bob", "dave"}})
	e.change(t, store.GroupChange{Group: big, Actor: "alice", Op: store.OpCreate, Users: []string{"bob", "carol", "dave"}, Threshold: 2})
	drain := func() []store.PushCandidate {
		cs := e.pending(t)
		var keys []store.PushKey
		for _, c := range cs {
			keys = append(keys, store.PushKey{User: c.User, Conv: c.Conv, ConvSeq: c.ConvSeq})
		}
		if err := e.dequeue(keys); err != nil {
			t.Fatal(err)
		}
		return cs
	}
	drain() // group creation events notify nobody
	check := func(what string, cs []store.PushCandidate, kind int, users ...string) {
		t.Helper()
		if got := pushUsers(cs); !slices.Equal(got, users) {
			t.Fatalf("%s: outbox for %v, want %v", what, got, users)
		}
		for _, c := range cs {
			if c.Kind != kind {
				t.Fatalf("%s: kind %d, want %d (%+v)", what, c.Kind, kind, c)
			}
		}
	}
	e.gsend(t, e.greq("alice", small, "s1", "hello"))
	check("small group", drain(), store.PushMessage, "bob")
	e.gsend(t, e.greq("bob", big, "b1", "plain"))
	check("big group, no mention", drain(), 0)
	e.gsend(t, e.greq("bob", big, "b2", "hey carol", "carol", "dave"))
	check("big group, mention", drain(), store.PushMention, "carol")
	e.gsend(t, e.greq("bob", big, "b3", "all of you", "*"))
	check("big group, * by a member", drain(), 0)
	res := e.gsend(t, e.greq("alice", big, "a1", "all of you", "*"))
	cs := drain()
	check("big group, * by the owner", cs, store.PushEveryone, "bob", "carol")
	if cs[0].InboxSeq != 0 || cs[0].ConvSeq != res[0].Msg.Seq {
		t.Fatalf("everyone row %+v", cs[0])
	}
	e.gsend(t, e.sysreq("ci", small, "ci1", "build passed"))
	check("system", drain(), store.PushSystem, "alice", "bob")
}

// testPushClaims: a push is claimed once per device; a claim in progress
// is busy; one older than the lease (a crash in the provider call) is
// taken over once; a released one is new again; a sent one is done,
// also after a restart [IM-17.4-3].
func testPushClaims(t *testing.T, e *env) {
	k := store.PushKey{User: "bob", Conv: "d:alice:bob", ConvSeq: 1}
	claim := func(client string, now int64, want store.Claim) {
		t.Helper()
		if c, err := e.s.PushWrite(e.ctx, store.PushWrites{Claim: []store.PushClaim{{Key: k, Client: client}}, Now: now, Lease: 1000}); err != nil || len(c) != 1 || c[0] != want {
			t.Fatalf("claim by %s at %d: %v %v, want %v", client, now, c, err, want)
		}
	}
	finish := func(client string, sent bool) {
		t.Helper()
		if err := e.finish(store.PushFinish{PushClaim: store.PushClaim{Key: k, Client: client}, Sent: sent}); err != nil {
			t.Fatal(err)
		}
	}
	claim("p1", 100, store.ClaimNew)
	claim("p2", 100, store.ClaimNew) // another device
	claim("p1", 500, store.ClaimBusy)
	claim("p1", 1200, store.ClaimTakeOver)
	claim("p1", 3000, store.ClaimDone) // taken over once already
	finish("p2", false)
	claim("p2", 3000, store.ClaimNew)
	finish("p2", true)
	e.reopen()
	claim("p2", 9000, store.ClaimDone)
	if err := e.s.ForgetPush(e.ctx, 5000); err != nil {
		t.Fatal(err)
	}
	claim("p2", 9000, store.ClaimNew)

	// A batch: each claim decided on its own, in the order given; a
	// finish of several settles each.
	k2 := store.PushKey{User: "bob", Conv: "d:bob:carol", ConvSeq: 4}
	batch := []store.PushClaim{{Key: k2, Client: "p1"}, {Key: k, Client: "p2"}, {Key: k2, Client: "p2"}, {Key: k, Client: "p1"}}
	got, err := e.s.PushWrite(e.ctx, store.PushWrites{Claim: batch, Now: 9100, Lease: 1000})
	if want := []store.Claim{store.ClaimNew, store.ClaimBusy, store.ClaimNew, store.ClaimNew}; err != nil || !slices.Equal(got, want) {
		t.Fatalf("batch claim: %v %v, want %v", got, err, want)
	}
	if err := e.finish(store.PushFinish{PushClaim: batch[0], Sent: true}, store.PushFinish{PushClaim: batch[2]}, store.PushFinish{PushClaim: batch[3], Sent: true}); err != nil {
		t.Fatal(err)
	}
	got, err = e.s.PushWrite(e.ctx, store.PushWrites{Claim: batch, Now: 9200, Lease: 1000})
	if want := []store.Claim{store.ClaimDone, store.ClaimBusy, store.ClaimNew, store.ClaimDone}; err != nil || !slices.Equal(got, want) {
		t.Fatalf("batch claim after the finish: %v %v, want %v", got, err, want)
	}

	// One write of all kinds (the relay's and the workers' writes share
	// a transaction): settlements before claims, a dequeue of no row.
	k3 := store.PushKey{User: "bob", Conv: "d:bob:dave", ConvSeq: 7}
	got, err = e.s.PushWrite(e.ctx, store.PushWrites{Dequeue: []store.PushKey{k3},
		Finish: []store.PushFinish{{PushClaim: batch[2], Sent: true}, {PushClaim: batch[1]}},
		Claim:  []store.PushClaim{batch[2], {Key: k3, Client: "p1"}, batch[1], {Key: k3, Client: "p1"}}, Now: 9300, Lease: 1000})
	if want := []store.Claim{store.ClaimDone, store.ClaimNew, store.ClaimNew, store.ClaimBusy}; err != nil || !slices.Equal(got, want) {
		t.Fatalf("a write of settlements and claims: %v %v, want %v", got, err, want)
	}
}

func (e *env) dequeue(keys []store.PushKey) error {
	_, err := e.s.PushWrite(e.ctx, store.PushWrites{Dequeue: keys})
	return err
}

func (e *env) finish(fs ...store.PushFinish) error {
	_, err := e.s.PushWrite(e.ctx, store.PushWrites{Finish: fs})
	return err
}

// testPushReads: what a push job reads, for several jobs at once — the
// registrations, muted, the unread count of the conversation and over all
// the user's conversations (the badge), and the message if asked for and
// readable by the user.
func testPushReads(t *testing.T, e *env) {
	e.users(t, "alice", "bob", "carol")
	e.register(t, "bob", "phone", "tb")
	e.register(t, "carol", "cphone", "tc")
	res := e.send(t, e.req("alice", "bob", "a1", "1"), e.req("alice", "bob", "a2", "2"), e.req("carol", "bob", "c1", "3"))
	ab, cb := res[0].Msg.Conv, res[2].Msg.Conv
	yes := true
	if _, _, err := e.s.UpdateSettings(e.ctx, "bob", cb, store.SettingsChange{Muted: &yes}, 10); err != nil {
		t.Fatal(err)
	}
	reads := func(rs ...store.PushRead) []store.PushInfo {
		t.Helper()
		out, err := e.s.PushReads(e.ctx, rs)
		if err != nil || len(out) != len(rs) {
			t.Fatalf("PushReads(%v) = %d, %v", rs, len(out), err)
		}
		return out
	}
	key := func(user, conv string, seq int64) store.PushKey {
		return store.PushKey{User: user, Conv: conv, ConvSeq: seq}
	}
	got := reads(
		store.PushRead{Key: key("bob", ab, 1), Message: true},
		store.PushRead{Key: key("bob", cb, 1), Message: true},
		store.PushRead{Key: key("bob", ab, 2)},
		store.PushRead{Key: key("carol", ab, 1), Message: true}, // not a member
		store.PushRead{Key: key("bob", ab, 9), Message: true},   // no such message
		store.PushRead{Key: key("alice", ab, 2), Message: true}, // no registration: only devices and muted
	)
	if g := got[0]; len(g.Devices) != 1 || g.Devices[0].Client != "phone" || g.Devices[0].Token != "tb" || g.Muted ||
		g.Unread != 2 || g.Badge != 3 || g.Message == nil || g.Message.Seq != 1 || string(g.Message.Body) != "1" || g.Message.From != "alice" {
		t.Fatalf("bob's first message: %+v (message %+v)", g, g.Message)
	}
	if g := got[1]; !g.Muted || g.Unread != 1 || g.Badge != 3 || g.Message == nil || string(g.Message.Body) != "3" {
		t.Fatalf("bob's muted conversation: %+v", g)
	}
	if g := got[2]; g.Message != nil || g.Unread != 2 {
		t.Fatalf("no message asked for: %+v", g)
	}
	if g := got[3]; len(g.Devices) != 1 || g.Message != nil || g.Unread != 0 {
		t.Fatalf("a non-member's read: %+v", g)
	}
	if g := got[4]; g.Message != nil || len(g.Devices) != 1 {
		t.Fatalf("a message that does not exist: %+v", g)
	}
	if g := got[5]; len(g.Devices) != 0 || g.Muted {
		t.Fatalf("a user with no registration: %+v", g)
	}
	if _, _, err := e.s.MarkRead(e.ctx, "bob", ab, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.DeleteForMe(e.ctx, "bob", res[0].Msg.ID, 20); err != nil {
		t.Fatal(err)
	}
	if g := reads(store.PushRead{Key: key("bob", ab, 1), Message: true})[0]; g.Unread != 1 || g.Badge != 2 || g.Message != nil {
		t.Fatalf("after a read and a delete for bob: %+v", g)
	}
	e.register(t, "alice", "aphone", "ta")
	if g := reads(store.PushRead{Key: key("alice", ab, 1), Message: true})[0]; g.Message == nil || g.Unread != 0 || g.Badge != 0 {
		t.Fatalf("the sender's read: %+v", g)
	}
	if out, err := e.s.PushReads(e.ctx, nil); err != nil || len(out) != 0 {
		t.Fatalf("no reads: %v, %v", out, err)
	}
}
