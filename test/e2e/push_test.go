package e2e

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqim/mqim/delivery/cluster"
	"github.com/mqim/mqim/internal/testnode"
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/push"
	"github.com/mqim/mqim/push/pushtest"
	"github.com/mqim/mqim/server"
	"github.com/mqim/mqim/store"
)

// Offline push end to end [IM-17]: real nodes with embedded NATS, the
// APNs fake (HTTP/2 over TLS, provider tokens checked).

// pushNATS starts an embedded NATS (JetStream in a temp dir) for nodes.
func pushNATS(t *testing.T) *cluster.NATS {
	t.Helper()
	nc, err := cluster.ConnectNATS(context.Background(), cluster.NATSConfig{StoreDir: t.TempDir(), ServerName: "e2e-push"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// withPush configures a node for push to fake on nc, with short timings
// (the rules are the same; waits are on conditions).
func withPush(nc *cluster.NATS, fake *pushtest.APNs, name string, id int, standalone bool) func(*server.Config) {
	return func(c *server.Config) {
		p, err := push.NewAPNs(fake.Config())
		if err != nil {
			panic(err)
		}
		c.NATS, c.NodeName, c.NodeID, c.Standalone, c.GroupReadFanout = nc.Conn, name, id, standalone, 3
		c.Push = push.Config{
			Providers: map[string]push.Provider{store.PlatformAPNs: p},
			After:     time.Second, RetryMin: 50 * time.Millisecond, RetryMax: 400 * time.Millisecond,
			RelayInterval: 100 * time.Millisecond, Lease: 2 * time.Second,
		}
	}
}

func deviceToken(user string) string {
	sum := sha256.Sum256([]byte(user))
	return hex.EncodeToString(sum[:])
}

// registered dials user with a client id, registers it for APNs and
// returns the device (still connected).
func registered(t *testing.T, dl dialer, n *testNode, fake *pushtest.APNs, user string) *device {
	t.Helper()
	d := dl.dial(t, n, user, withClientID(user+"-phone-"+randomID()))
	got := call[protocol.PushDevice](d, protocol.MethodPushRegister, protocol.PushRegisterRequest{
		Platform: "apns", Token: deviceToken(user), App: fake.Topic, Env: "sandbox", Locale: "en-GB"})
	if got.Platform != "apns" || got.Client != d.id || got.Env != "sandbox" || !strings.HasSuffix(deviceToken(user), strings.TrimPrefix(got.TokenHint, "…")) {
		t.Fatalf("push.register: %+v", got)
	}
	return d
}

// metric sums the samples of a metric (with labels matching, e.g.
// `reason="acked"`) on n's /metrics.
func metric(t *testing.T, n *testNode, name, labels string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + n.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || !strings.Contains(line, labels) {
			continue
		}
		f := strings.Fields(line)
		v, _ := strconv.ParseFloat(f[len(f)-1], 64)
		sum += v
	}
	return sum
}

// seqsOnce fails unless the notifications to token are for distinct
// messages, n in all.
func seqsOnce(t *testing.T, fake *pushtest.APNs, token string, n int) []pushtest.Notification {
	t.Helper()
	var got []pushtest.Notification
	seen := map[string]bool{}
	for _, a := range fake.Accepted() {
		if a.Token != token {
			continue
		}
		k := a.Conv + "/" + strconv.FormatInt(a.Seq, 10)
		if seen[k] {
			t.Fatalf("message %s pushed twice", k)
		}
		seen[k] = true
		got = append(got, a)
	}
	if len(got) != n {
		t.Fatalf("%d notifications, want %d: %+v", len(got), n, got)
	}
	return got
}

// TestPushOffline: an offline user gets exactly one push per message,
// with the sender, the text, the unread count and the badge; five
// messages fold into one notification (one collapse id) with count 5
// [IM-17.2-1], [IM-17.3]. Registration errors are bad_request [IM-17.1].
func TestPushOffline(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		fake := pushtest.NewAPNs(t)
		n := startNode(t, be, withPush(pushNATS(t), fake, "n1", 1, true))
		bob := registered(t, dl, n, fake, "bob")
		for _, bad := range []protocol.PushRegisterRequest{
			{Platform: "sms", Token: deviceToken("bob")},
			{Platform: "fcm", Token: "0123456789abcdef0123"}, // not configured here
			{Platform: "apns", Token: "not-hex", App: fake.Topic},
			{Platform: "apns", Token: deviceToken("bob")}, // no topic
			{Platform: "apns", Token: deviceToken("bob"), App: fake.Topic, Env: "staging"},
		} {
			bob.rpcErr(protocol.MethodPushRegister, bad, protocol.CodeBadRequest)
		}
		if l := call[protocol.PushListResult](bob, protocol.MethodPushList, struct{}{}); len(l.Devices) != 1 || l.Devices[0].Client != bob.id {
			t.Fatalf("push.list: %+v", l)
		}
		bob.disconnect()
		tok := deviceToken("bob")

		alice := dl.dial(t, n, "alice")
		alice.sendOK(text("p1", "bob", "hi bob"))
		eventually(t, 20*time.Second, "the push", func() bool { return fake.Count(tok) >= 1 })
		first := seqsOnce(t, fake, tok, 1)[0]
		if first != (pushtest.Notification{Token: tok, CollapseID: "d:alice:bob", Title: "alice", Body: "hi bob",
			Conv: "d:alice:bob", Seq: 1, Unread: 1, Badge: 1}) {
			t.Fatalf("notification %+v", first)
		}
		for i := 2; i <= 5; i++ {
			alice.sendOK(text(fmt.Sprintf("p%d", i), "bob", fmt.Sprintf("message %d", i)))
		}
		eventually(t, 20*time.Second, "five pushes", func() bool { return fake.Count(tok) >= 5 })
		seqsOnce(t, fake, tok, 5)
		shown := fake.Shown(tok)
		if len(shown) != 1 || shown["d:alice:bob"].Unread != 5 || shown["d:alice:bob"].Badge != 5 {
			t.Fatalf("the phone shows %+v, want one notification with count 5", shown)
		}
		if errs := fake.Errors(); len(errs) != 0 {
			t.Fatalf("APNs fake saw %v", errs)
		}
		if got := metric(t, n, "mqim_push_sent_total", `provider="apns"`); got != 5 {
			t.Fatalf("mqim_push_sent_total %v", got)
		}
	})
}

// TestPushRules: an online user who acknowledges gets no push; a muted
// conversation none; a 410 removes the token; in a group above the
// read-fan-out threshold only a mention or an owner's * pushes, a plain
// member's * nobody [IM-17.2], [IM-17.1-3].
func TestPushRules(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		fake := pushtest.NewAPNs(t)
		n := startNode(t, be, withPush(pushNATS(t), fake, "n1", 1, true))
		alice := dl.dial(t, n, "alice")

		// Online, acknowledging: no push.
		online := registered(t, dl, n, fake, "olga")
		alice.sendOK(text("o1", "olga", "you are here"))
		online.nextMessage()
		eventually(t, 20*time.Second, "the job skipped as acknowledged", func() bool {
			return metric(t, n, "mqim_push_skipped_total", `reason="acked"`) >= 1
		})
		if c := fake.Count(deviceToken("olga")); c != 0 {
			t.Fatalf("online user pushed %d times", c)
		}

		// Muted: no push.
		carol := registered(t, dl, n, fake, "carol")
		yes := true
		carol.rpc(protocol.MethodSettings, protocol.SettingsRequest{Conv: "d:alice:carol", Muted: &yes})
		carol.disconnect()
		alice.sendOK(text("m1", "carol", "muted"))
		eventually(t, 20*time.Second, "the job skipped as muted", func() bool {
			return metric(t, n, "mqim_push_skipped_total", `reason="muted"`) >= 1
		})
		if c := fake.Count(deviceToken("carol")); c != 0 {
			t.Fatalf("muted conversation pushed %d times", c)
		}

		// 410 Unregistered: the registration goes.
		dave := registered(t, dl, n, fake, "dave")
		dave.disconnect()
		fake.Refuse(deviceToken("dave"), pushtest.Answer{Status: 410, Reason: "Unregistered"})
		alice.sendOK(text("u1", "dave", "gone?"))
		eventually(t, 20*time.Second, "the refused token removed", func() bool {
			ds, err := n.Store.PushDevices(context.Background(), "dave")
			return err == nil && len(ds) == 0
		})
		if got := metric(t, n, "mqim_push_tokens_removed_total", `provider="apns"`); got != 1 {
			t.Fatalf("tokens removed %v", got)
		}

		// A group of 4 (> 3: read fan-out).
		g1, g2 := registered(t, dl, n, fake, "gina"), registered(t, dl, n, fake, "hank")
		g1.disconnect()
		g2.disconnect()
		// The senders speak MQTT 5: a 3.1.1 sender learns the outcome of a
		// send to a read-fan-out group only from the group topic.
		owner, ivy := dialer{version: 5}.dial(t, n, "alice"), dialer{version: 5}.dial(t, n, "ivy")
		cr := call[protocol.GroupChangeResult](owner, protocol.MethodGroupCreate, protocol.GroupRequest{Members: []string{"gina", "hank", "ivy"}})
		if cr.Fanout != "read" {
			t.Fatalf("group fan-out %q", cr.Fanout)
		}
		gsend := func(d *device, cmid string, mentions ...string) {
			d.sendOK(protocol.Send{Cmid: cmid, Group: cr.Group, Type: protocol.TypeText, Body: map[string]any{"text": cmid}, Mentions: mentions})
		}
		gsend(owner, "g-plain")
		gsend(ivy, "g-star-member", "*")
		gsend(owner, "g-mention", "gina")
		eventually(t, 20*time.Second, "the mention's push", func() bool { return fake.Count(deviceToken("gina")) >= 1 })
		gsend(owner, "g-star-owner", "*")
		eventually(t, 20*time.Second, "the owner's * pushes", func() bool {
			return fake.Count(deviceToken("gina")) >= 2 && fake.Count(deviceToken("hank")) >= 1
		})
		if got := seqsOnce(t, fake, deviceToken("gina"), 2); got[0].Body != "g-mention" || got[1].Body != "g-star-owner" {
			t.Fatalf("gina's notifications %+v", got)
		}
		if got := seqsOnce(t, fake, deviceToken("hank"), 1); got[0].Body != "g-star-owner" {
			t.Fatalf("hank's notifications %+v", got)
		}
	})
}

// TestPushProviderDown: while the provider answers 503 the jobs wait in the
// queue and are retried; when it is back, each message is pushed once
// [IM-17.4-2]. Then the node restarts with jobs queued (provider down
// again) and sends them once after the restart.
func TestPushProviderDown(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		fake := pushtest.NewAPNs(t)
		nc := pushNATS(t)
		db := testnode.NewDB(t, be)
		n := startNodeOn(t, db, withPush(nc, fake, "n1", 1, true))
		bob := registered(t, dl, n, fake, "bob")
		bob.disconnect()
		tok := deviceToken("bob")
		alice := dl.dial(t, n, "alice")
		fake.Down(&pushtest.Answer{Status: 503, Reason: "ServiceUnavailable"})
		for i := range 3 {
			alice.sendOK(text(fmt.Sprintf("d%d", i), "bob", "while down"))
		}
		eventually(t, 20*time.Second, "retries against the provider", func() bool { return fake.Refused() >= 6 })
		if fake.Count(tok) != 0 {
			t.Fatal("accepted while down")
		}
		fake.Down(nil)
		eventually(t, 20*time.Second, "the queued pushes", func() bool { return fake.Count(tok) >= 3 })
		// Each carries its own message's text, the conversation's first
		// too (pushed when it was no longer the latest).
		for _, a := range seqsOnce(t, fake, tok, 3) {
			if a.Body != "while down" {
				t.Fatalf("notification of seq %d says %q", a.Seq, a.Body)
			}
		}

		// Restart with jobs queued.
		fake.Down(&pushtest.Answer{Status: 500, Reason: "InternalServerError"})
		refused := fake.Refused()
		alice.sendOK(text("r1", "bob", "before restart"))
		alice.sendOK(text("r2", "bob", "before restart"))
		eventually(t, 20*time.Second, "attempts before the restart", func() bool { return fake.Refused() >= refused+2 })
		alice.disconnect()
		if err := n.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		fake.Down(nil)
		n = startNodeOn(t, db, withPush(nc, fake, "n1", 1, true))
		eventually(t, 30*time.Second, "the pushes queued before the restart", func() bool { return fake.Count(tok) >= 5 })
		seqsOnce(t, fake, tok, 5)
	})
}

// TestPushTwoNodes: two nodes on one PostgreSQL and one NATS consume one
// work queue; messages sent through both are pushed once each
// [IM-17.4-3]. PostgreSQL only: a SQLite file has one node.
func TestPushTwoNodes(t *testing.T) {
	forEachVersion(t, testPushTwoNodes)
}

func testPushTwoNodes(t *testing.T, dl dialer) {
	fake := pushtest.NewAPNs(t)
	nc := pushNATS(t)
	db := testnode.NewDB(t, testnode.Postgres)
	n1 := startNodeOn(t, db, withPush(nc, fake, "n1", 1, false))
	n2 := startNodeOn(t, db, withPush(nc, fake, "n2", 2, false))
	bob := registered(t, dl, n1, fake, "bob")
	bob.disconnect()
	a1, a2 := dl.dial(t, n1, "alice"), dl.dial(t, n2, "carol")
	const each = 10
	for i := range each {
		a1.sendOK(text(fmt.Sprintf("a%d", i), "bob", "from n1"))
		a2.sendOK(text(fmt.Sprintf("c%d", i), "bob", "from n2"))
	}
	tok := deviceToken("bob")
	eventually(t, 30*time.Second, "every push", func() bool { return fake.Count(tok) >= 2*each })
	got := seqsOnce(t, fake, tok, 2*each)
	convs := map[string]int{}
	for _, g := range got {
		convs[g.Conv]++
	}
	if convs["d:alice:bob"] != each || convs["d:bob:carol"] != each {
		t.Fatalf("pushes by conversation %v", convs)
	}
	sent := metric(t, n1, "mqim_push_sent_total", `provider="apns"`) + metric(t, n2, "mqim_push_sent_total", `provider="apns"`)
	if sent != 2*each {
		t.Fatalf("nodes sent %v", sent)
	}
}

// failUntil returns a failpoint that fails the named step its first n
// times, and counts the calls.
func failUntil(name string, n int32) (func(string) bool, *atomic.Int32) {
	var hits atomic.Int32
	return func(step string) bool {
		return step == name && hits.Add(1) <= n
	}, &hits
}

// TestPushFailpoints: a node that stops between the commit and the work
// queue leaves the candidate in the store's outbox, and the node started
// after it pushes it once; a node cut off inside the provider call
// leaves a claim, taken over after its lease, and the message is pushed
// (here once: the cut-off call never reached the provider) [IM-17.4].
func TestPushFailpoints(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		fake := pushtest.NewAPNs(t)
		nc := pushNATS(t)
		db := testnode.NewDB(t, be)
		enqueue, enqueueHits := failUntil("before-enqueue", 1<<30)
		n := startNodeOn(t, db, withPush(nc, fake, "n1", 1, true), func(c *server.Config) { c.Push.Failpoint = enqueue })
		bob := registered(t, dl, n, fake, "bob")
		bob.disconnect()
		tok := deviceToken("bob")
		alice := dl.dial(t, n, "alice")
		alice.sendOK(text("f1", "bob", "committed, not queued"))
		eventually(t, 20*time.Second, "the relay cut off", func() bool { return enqueueHits.Load() >= 2 })
		if cs, err := n.Store.PendingPush(context.Background(), 10); err != nil || len(cs) != 1 {
			t.Fatalf("outbox %+v %v, want the one candidate", cs, err)
		}
		alice.disconnect()
		if err := n.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		call, callHits := failUntil("provider-call", 1)
		n = startNodeOn(t, db, withPush(nc, fake, "n1", 1, true), func(c *server.Config) { c.Push.Failpoint = call })
		eventually(t, 30*time.Second, "the push after the restart", func() bool { return fake.Count(tok) >= 1 })
		if callHits.Load() < 2 {
			t.Fatalf("provider-call failpoint reached %d times", callHits.Load())
		}
		alice = dl.dial(t, n, "alice")
		alice.sendOK(text("f2", "bob", "after"))
		eventually(t, 30*time.Second, "the next push", func() bool { return fake.Count(tok) >= 2 })
		seqsOnce(t, fake, tok, 2)
		// The relay deletes a row once JetStream has its job, which a
		// worker may have pushed already.
		eventually(t, 20*time.Second, "the outbox emptied", func() bool {
			cs, err := n.Store.PendingPush(context.Background(), 10)
			return err == nil && len(cs) == 0
		})
	})
}

// TestPushSystemFolding: a bridge's system notifications to an offline
// user, over MQTT (im/v1/sys/notify) and HTTP (POST /v1/notifications):
// the first is pushed at once, the other four of the interval fold into
// one notification at its end, so that the phone shows one notification
// with count 5 [IM-17.2-5], [IM-17.3-2], [IM-4.6].
func TestPushSystemFolding(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		fake := pushtest.NewAPNs(t)
		const interval = 3 * time.Second
		n := startNode(t, be, withPush(pushNATS(t), fake, "n1", 1, true), func(c *server.Config) { c.Push.Policy.SystemInterval = interval })
		registered(t, dl, n, fake, "bob").disconnect()
		tok, conv := deviceToken("bob"), protocol.DirectConv("bob", "ci")
		bridge := bridgeToken(t, "ci")
		ci := dl.dial(t, n, "ci", withToken(bridge))
		notify := func(i int) {
			t.Helper()
			cmid, text := fmt.Sprintf("n%d", i), fmt.Sprintf("build %d passed", i)
			if i%2 == 0 { // the even ones over HTTP
				if st, res := postNotification(t, n, bridge, map[string]any{"to": "bob", "cmid": cmid, "body": map[string]any{"text": text}}); st != 201 {
					t.Fatalf("notification %s: %d %v", cmid, st, res)
				}
				return
			}
			if r := ci.notify(protocol.Send{Cmid: cmid, To: "bob", Type: protocol.TypeSystem, Body: map[string]any{"text": text}}); r.Err != nil || r.Code != 0 {
				t.Fatalf("notification %s: %+v", cmid, r)
			}
		}
		start := time.Now()
		notify(1)
		eventually(t, 20*time.Second, "the first notification, at once", func() bool { return fake.Count(tok) >= 1 })
		for i := 2; i <= 5; i++ {
			notify(i)
		}
		if time.Since(start) >= interval {
			t.Skipf("the machine is too slow to send five notifications within the %v window", interval)
		}
		first := seqsOnce(t, fake, tok, 1)[0]
		if first.CollapseID != conv || first.Seq != 1 || first.Title != "ci" || first.Body != "build 1 passed" || first.Unread != 1 {
			t.Fatalf("first notification %+v", first)
		}
		eventually(t, 30*time.Second, "the folded notification at the window's end", func() bool { return fake.Count(tok) >= 2 })
		got := seqsOnce(t, fake, tok, 2)
		if time.Since(start) < interval {
			t.Fatalf("the folded notification came before the window's end")
		}
		if f := got[1]; f.CollapseID != conv || f.Seq != 5 || f.Body != "4 new notifications" || f.Unread != 5 || f.Badge != 5 {
			t.Fatalf("folded notification %+v", f)
		}
		shown := fake.Shown(tok)
		if len(shown) != 1 || shown[conv].Unread != 5 {
			t.Fatalf("the phone shows %+v, want one notification with count 5", shown)
		}
		eventually(t, 20*time.Second, "the folded jobs counted", func() bool {
			return metric(t, n, "mqim_push_skipped_total", `reason="folded"`) >= 4
		})
		// The window is closed: the next notification is pushed at once.
		notify(7)
		eventually(t, 20*time.Second, "the next window's first", func() bool { return fake.Count(tok) >= 3 })
		if got := seqsOnce(t, fake, tok, 3); got[2].Seq != 6 || got[2].Body != "build 7 passed" {
			t.Fatalf("next window's first %+v", got[2])
		}
	})
}
