package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqim/mqim/clients/sdk"
	"github.com/mqim/mqim/internal/testnode"
	"github.com/mqim/mqim/protocol"
)

// Send, receive on both sides, and every RPC helper.
func TestSendReceiveAndRPCs(t *testing.T) {
	testnode.ForEachBackend(t, testSendReceiveAndRPCs)
}

func testSendReceiveAndRPCs(t *testing.T, be testnode.Backend) {
	n := startNode(t, be)
	bob := dial(t, n.MQTTAddr(), "bob")
	alice := dial(t, "ws://"+n.WSAddr(), "alice") // over WebSocket, path /mqtt by default

	sent, err := alice.SendText(ctx(t), "bob", "hi bob")
	if err != nil {
		t.Fatal(err)
	}
	if sent.ID == 0 || sent.Conv != "d:alice:bob" || sent.Seq != 1 || sent.InboxSeq != 1 || len(sent.Cmid) != 26 {
		t.Fatalf("sent %+v", sent)
	}
	for _, c := range []*sdk.Client{bob, alice} {
		ev := collect(t, c, 1)[0]
		if ev.Kind != sdk.KindMessage || ev.Seq != 1 || ev.Msg == nil || ev.Msg.ID != sent.ID ||
			ev.Msg.Cmid != sent.Cmid || ev.Msg.From != "alice" || textOf(ev) != "hi bob" {
			t.Fatalf("%s got %+v (msg %+v)", c.User(), ev, ev.Msg)
		}
	}
	if _, err := bob.Send(ctx(t), "alice", protocol.TypeCustom, map[string]any{"kind": "location", "lat": 48.85}); err != nil {
		t.Fatal(err)
	}
	collect(t, alice, 1)
	collect(t, bob, 1)

	h, err := alice.History(ctx(t), sdk.HistoryRequest{With: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if h.Conv != "d:alice:bob" || len(h.Messages) != 2 || textOf(sdk.Event{Msg: &h.Messages[0]}) != "hi bob" ||
		h.Messages[1].Type != protocol.TypeCustom || h.Messages[1].Body["lat"] != 48.85 {
		t.Fatalf("history %+v", h)
	}

	cs, err := alice.Conversations(ctx(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs.Conversations) != 1 || cs.Conversations[0].Peer != "bob" || cs.Conversations[0].LastSeq != 2 || cs.TotalUnread != 1 {
		t.Fatalf("conversations %+v", cs)
	}

	r, err := alice.Read(ctx(t), "d:alice:bob", 2)
	if err != nil {
		t.Fatal(err)
	}
	if r.ReadSeq != 2 || r.Unread != 0 {
		t.Fatalf("read %+v", r)
	}
	// The read event reaches both users' inboxes [IM-7.6-2].
	for _, c := range []*sdk.Client{alice, bob} {
		ev := collect(t, c, 1)[0]
		if ev.Kind != sdk.KindRead || ev.User != "alice" || ev.ConvSeq != 2 || ev.Seq != 3 {
			t.Fatalf("%s got %+v", c.User(), ev)
		}
	}

	s, err := bob.Sync(ctx(t), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Events) != 3 || s.Latest != 3 || s.HasMore {
		t.Fatalf("sync %+v", s)
	}
	noMoreEvents(t, alice, 3)
	noMoreEvents(t, bob, 3)
}

// Refusals are typed errors with the spec's code [IM-6].
func TestRefusals(t *testing.T) {
	testnode.ForEachBackend(t, testRefusals)
}

func testRefusals(t *testing.T, be testnode.Backend) {
	n := startNode(t, be)
	alice := dial(t, n.MQTTAddr(), "alice", func(c *sdk.Config) { c.NoEvents = true })
	if alice.Events() != nil {
		t.Fatal("NoEvents client has an event stream")
	}
	cases := []struct {
		to, typ string
		body    map[string]any
		want    *sdk.Error
		reason  byte
	}{
		{"carol", protocol.TypeText, map[string]any{"text": "?"}, sdk.ErrUnknownUser, 0x83},
		{"alice", protocol.TypeText, map[string]any{"text": "me"}, sdk.ErrBadRequest, 0x99},
		{"carol", "sticker", map[string]any{}, sdk.ErrUnknownType, 0x99},
		{"bad/id", protocol.TypeText, map[string]any{"text": "x"}, sdk.ErrBadRequest, 0x99},
	}
	for _, tc := range cases {
		_, err := alice.Send(ctx(t), tc.to, tc.typ, tc.body)
		var e *sdk.Error
		if !errors.Is(err, tc.want) || !errors.As(err, &e) || e.Reason != tc.reason || e.Retryable() {
			t.Errorf("send to %s type %s: %v, want %v with reason 0x%02x", tc.to, tc.typ, err, tc.want, tc.reason)
		}
	}
	// Over the body limit the server refuses; over the packet limit the
	// client does, without losing its connection [IM-1.3].
	for _, size := range []int{20 << 10, 300 << 10} {
		big := make([]byte, size)
		for i := range big {
			big[i] = 'x'
		}
		if _, err := alice.SendText(ctx(t), "carol", string(big)); !errors.Is(err, sdk.ErrTooLarge) {
			t.Errorf("%d bytes: %v", size, err)
		}
	}
	// The same cmid for another message [IM-4.5-3].
	sent, err := alice.SendText(ctx(t), "alice2", "x")
	if !errors.Is(err, sdk.ErrUnknownUser) {
		t.Fatalf("%v %+v", err, sent)
	}
	dial(t, n.MQTTAddr(), "bob", func(c *sdk.Config) { c.NoEvents = true })
	first, err := alice.SendText(ctx(t), "bob", "one", sdk.WithCmid("c-1"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := alice.SendText(ctx(t), "bob", "one", sdk.WithCmid("c-1"))
	if err != nil || again.ID != first.ID || again.Seq != first.Seq {
		t.Fatalf("retry with the same cmid: %+v %v, first %+v", again, err, first)
	}
	if _, err := alice.SendText(ctx(t), "bob", "two", sdk.WithCmid("c-1")); !errors.Is(err, sdk.ErrCmidConflict) {
		t.Fatalf("cmid reused for another body: %v", err)
	}
	// RPC errors [IM-7.4-3].
	if _, err := alice.History(ctx(t), sdk.HistoryRequest{Conv: "d:bob:carol"}); !errors.Is(err, sdk.ErrNotMember) {
		t.Fatalf("history of another conversation: %v", err)
	}
	if _, err := alice.History(ctx(t), sdk.HistoryRequest{}); !errors.Is(err, protocol.Errorf(protocol.CodeBadRequest, "")) {
		t.Fatalf("history without conv: %v", err)
	}
}

func TestDialErrors(t *testing.T) {
	n := startNode(t, testnode.SQLite)
	c, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, err := sdk.Dial(c, sdk.Config{Server: n.MQTTAddr(), User: "alice", Token: token(t, "bob")})
	if !errors.Is(err, sdk.ErrBadCredentials) {
		t.Fatalf("token of another user: %v", err)
	}
	// Nothing listens on a closed port: Dial gives up when ctx ends, saying why.
	p := newProxy(t, n.MQTTAddr())
	p.setRefuse(true)
	short, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel2()
	_, err = sdk.Dial(short, sdk.Config{Server: "mqtt://" + p.Addr(), User: "alice", Token: token(t, "alice")})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unreachable server: %v", err)
	}
	// FailFast: the first refused attempt ends Dial, long before ctx.
	start := time.Now()
	_, err = sdk.Dial(c, sdk.Config{Server: "mqtt://" + p.Addr(), User: "alice", Token: token(t, "alice"), FailFast: true})
	if err == nil || errors.Is(err, context.DeadlineExceeded) || time.Since(start) > waitTimeout/2 {
		t.Fatalf("FailFast on a refusing server: %v after %v", err, time.Since(start))
	}
	for _, bad := range []string{"http://x:1", "mqtt://nohost", "ws://:80"} {
		if _, err := sdk.Dial(c, sdk.Config{Server: bad, User: "alice", Token: "t"}); err == nil {
			t.Errorf("server %q accepted", bad)
		}
	}
}

// Connections cut right after a send went out (before its PUBACK came
// back), again and again: every send ends acknowledged, none is stored
// twice, and the receiver gets each message once, in order [IM-4.5].
func TestSendAcrossCutConnections(t *testing.T) {
	testnode.ForEachBackend(t, testSendAcrossCutConnections)
}

func testSendAcrossCutConnections(t *testing.T, be testnode.Backend) {
	const senders, each = 4, 10
	n := startNode(t, be)
	// bob receives through a proxy of his own that cuts too: his stream
	// must come out whole and in order all the same.
	bp := newProxy(t, n.MQTTAddr())
	bob := dial(t, bp.Addr(), "bob")
	bp.cutRandomly(250, 400, 2) // bob sends little: CONNECT, SUBSCRIBE, sync requests
	bp.cutAll()
	p := newProxy(t, n.MQTTAddr())
	alice := dial(t, p.Addr(), "alice")
	p.cutRandomly(350, 1200, 1)
	p.cutAll()
	bobEvents := make(chan []sdk.Event, 1)
	go func() {
		var evs []sdk.Event
		for ev := range bob.Events() {
			if evs = append(evs, ev); len(evs) == senders*each {
				break
			}
		}
		bobEvents <- evs
	}()

	var wg sync.WaitGroup
	results := make(chan sdk.Sent, senders*each)
	for s := range senders {
		wg.Go(func() {
			for i := range each {
				sent, err := alice.SendText(ctx(t), "bob", fmt.Sprintf("m%d.%d", s, i))
				if err != nil {
					t.Errorf("send m%d.%d: %v", s, i, err)
					return
				}
				results <- sent
			}
		})
	}
	wg.Wait()
	close(results)
	if t.Failed() {
		return
	}
	if p.cuts.Load() < 3 {
		t.Fatalf("only %d cuts: the test did not test reconnects", p.cuts.Load())
	}
	p.noCuts()
	convSeqs := make(map[int64]bool)
	for s := range results {
		if convSeqs[s.Seq] {
			t.Fatalf("two sends acknowledged with conv seq %d", s.Seq)
		}
		convSeqs[s.Seq] = true
	}

	// alice's own inbox holds each message once: her stream is 1..40.
	evs := collect(t, alice, senders*each)
	checkStream(t, evs, 1)
	texts := make(map[string]bool)
	for _, ev := range evs {
		if texts[textOf(ev)] || ev.ConvSeq != ev.Seq {
			t.Fatalf("duplicate or misnumbered message %+v", ev)
		}
		texts[textOf(ev)] = true
	}
	noMoreEvents(t, alice, senders*each)
	h, err := alice.History(ctx(t), sdk.HistoryRequest{With: "bob", Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Messages) != senders*each {
		t.Fatalf("history holds %d messages, want %d", len(h.Messages), senders*each)
	}
	bp.noCuts()
	var evsBob []sdk.Event
	select {
	case evsBob = <-bobEvents:
	case <-time.After(waitTimeout):
		t.Fatalf("bob: timed out; cursor %d", bob.Cursor())
	}
	checkStream(t, evsBob, 1)
	noMoreEvents(t, bob, senders*each)
	t.Logf("%d cuts of alice, %d of bob", p.cuts.Load(), bp.cuts.Load())
}

// A node restarted while a client sends and receives: sends complete after
// the restart, the receiver syncs what it missed.
func TestNodeRestart(t *testing.T) {
	testnode.ForEachBackend(t, testNodeRestart)
}

func testNodeRestart(t *testing.T, be testnode.Backend) {
	n := startNode(t, be)
	p := newProxy(t, n.MQTTAddr())
	alice := dial(t, p.Addr(), "alice")
	bob := dial(t, p.Addr(), "bob")

	for i := range 3 {
		if _, err := alice.SendText(ctx(t), "bob", fmt.Sprint("before ", i)); err != nil {
			t.Fatal(err)
		}
	}
	checkStream(t, collect(t, bob, 3), 1)

	// Sends in flight while the node goes away, and one made while it is
	// down: all complete once it is back.
	done := make(chan error, 2)
	var acked atomic.Int64
	go func() {
		for i := range 9 {
			if _, err := alice.SendText(ctx(t), "bob", fmt.Sprint("during ", i)); err != nil {
				done <- err
				return
			}
			acked.Add(1)
		}
		done <- nil
	}()
	eventually(t, "a send during the test", func() bool { return acked.Load() >= 1 })
	restartNode(t, p, n, func() {
		go func() {
			_, err := alice.SendText(ctx(t), "bob", "while down")
			done <- err
		}()
	})
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	evs := collect(t, bob, 10)
	checkStream(t, evs, 4)
	noMoreEvents(t, bob, 13)
	checkStream(t, collect(t, alice, 13), 1)
	noMoreEvents(t, alice, 13)
}

// An event lost on the way is noticed by the next one (a seq jump) and
// fetched by sync before the later events are delivered [IM-5.2-3].
func TestGapFilledBySync(t *testing.T) {
	testnode.ForEachBackend(t, testGapFilledBySync)
}

func testGapFilledBySync(t *testing.T, be testnode.Backend) {
	n := startNode(t, be)
	var syncs []int64
	var mu sync.Mutex
	afterSync, synced := initialSync()
	bob := dial(t, n.MQTTAddr(), "bob", func(c *sdk.Config) {
		var dropped atomic.Bool
		sdk.SetTestHooks(c, sdk.TestHooks{
			AfterSync: afterSync,
			DropEvent: func(ev sdk.Event) bool { return ev.Seq == 3 && dropped.CompareAndSwap(false, true) },
			BeforeSync: func(after int64) {
				mu.Lock()
				syncs = append(syncs, after)
				mu.Unlock()
			},
		})
	})
	alice := dial(t, n.MQTTAddr(), "alice", func(c *sdk.Config) { c.NoEvents = true })
	wait(t, synced, "the first sync")
	for i := range 5 {
		if _, err := alice.SendText(ctx(t), "bob", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	evs := collect(t, bob, 5)
	checkStream(t, evs, 1)
	for i, ev := range evs {
		if textOf(ev) != fmt.Sprint(i) {
			t.Fatalf("event %d: %q", i, textOf(ev))
		}
	}
	noMoreEvents(t, bob, 5)
	mu.Lock()
	defer mu.Unlock()
	found := false
	for _, after := range syncs {
		found = found || after == 2
	}
	if !found {
		t.Fatalf("no sync from cursor 2 after the gap; syncs from %v", syncs)
	}
}

// Live events that arrive while a sync is under way are held and merged
// after it: nothing dropped, nothing twice, nothing out of order.
func TestLiveEventsDuringSync(t *testing.T) {
	testnode.ForEachBackend(t, testLiveEventsDuringSync)
}

func testLiveEventsDuringSync(t *testing.T, be testnode.Backend) {
	n := startNode(t, be)
	received := make(chan int64, 100) // every event received live
	release := make(chan struct{})
	stalled := make(chan struct{})
	var once sync.Once
	first, synced := initialSync()
	var syncLatest atomic.Int64
	bob := dial(t, n.MQTTAddr(), "bob", func(c *sdk.Config) {
		var dropped atomic.Bool
		sdk.SetTestHooks(c, sdk.TestHooks{
			DropEvent: func(ev sdk.Event) bool {
				if ev.Seq == 2 && dropped.CompareAndSwap(false, true) {
					return true
				}
				received <- ev.Seq
				return false
			},
			// The sync after the gap has its answer (up to seq 3) but waits
			// to apply it until later events have arrived live.
			AfterSync: func(after int64, res sdk.SyncResult) {
				first(after, res)
				if after == 1 {
					syncLatest.CompareAndSwap(0, res.Latest)
					once.Do(func() { close(stalled); <-release })
				}
			},
		})
	})
	alice := dial(t, n.MQTTAddr(), "alice", func(c *sdk.Config) { c.NoEvents = true })
	wait(t, synced, "the first sync")
	// The application reads all along.
	got := make(chan []sdk.Event, 1)
	go func() {
		var evs []sdk.Event
		for ev := range bob.Events() {
			if evs = append(evs, ev); len(evs) == 8 {
				break
			}
		}
		got <- evs
	}()
	for i := range 3 {
		if _, err := alice.SendText(ctx(t), "bob", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	wait(t, stalled, "the sync after the gap")
	for i := 3; i < 8; i++ {
		if _, err := alice.SendText(ctx(t), "bob", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until seq 8 came in live, then let the sync result be applied.
	for seq := int64(0); seq != 8; {
		select {
		case seq = <-received:
		case <-time.After(waitTimeout):
			t.Fatal("events not received live")
		}
	}
	close(release)
	if l := syncLatest.Load(); l != 3 {
		t.Fatalf("the stalled sync saw latest %d, want 3: the test did not merge", l)
	}
	var evs []sdk.Event
	select {
	case evs = <-got:
	case <-time.After(waitTimeout):
		t.Fatal("timed out waiting for 8 events")
	}
	checkStream(t, evs, 1)
	for i, ev := range evs {
		if textOf(ev) != fmt.Sprint(i) {
			t.Fatalf("event %d: %q", i, textOf(ev))
		}
	}
	noMoreEvents(t, bob, 8)
}

// Events sent while a device is offline arrive after it reconnects, by the
// sync every connect makes [IM-5.2-4]; the file cursor carries the position
// to a new client of the same device.
func TestReconnectSyncAndFileCursor(t *testing.T) {
	testnode.ForEachBackend(t, testReconnectSyncAndFileCursor)
}

func testReconnectSyncAndFileCursor(t *testing.T, be testnode.Backend) {
	n := startNode(t, be)
	p := newProxy(t, n.MQTTAddr())
	cursor := sdk.FileCursor{Path: filepath.Join(t.TempDir(), "cursor")}
	bob := dial(t, p.Addr(), "bob", func(c *sdk.Config) { c.Cursor = cursor })
	alice := dial(t, n.MQTTAddr(), "alice", func(c *sdk.Config) { c.NoEvents = true })
	if _, err := alice.SendText(ctx(t), "bob", "0"); err != nil {
		t.Fatal(err)
	}
	collect(t, bob, 1)

	p.setRefuse(true)
	p.cutAll()
	for i := 1; i < 4; i++ {
		if _, err := alice.SendText(ctx(t), "bob", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	p.setRefuse(false)
	checkStream(t, collect(t, bob, 3), 2)
	noMoreEvents(t, bob, 4)
	if err := bob.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-bob.Events(); ok {
		t.Fatal("events open after Close")
	}
	if seq, err := cursor.Load(ctx(t)); err != nil || seq != 4 {
		t.Fatalf("saved cursor %d %v", seq, err)
	}

	if _, err := alice.SendText(ctx(t), "bob", "4"); err != nil {
		t.Fatal(err)
	}
	bob2 := dial(t, p.Addr(), "bob", func(c *sdk.Config) { c.Cursor = cursor })
	ev := collect(t, bob2, 1)[0]
	if ev.Seq != 5 || textOf(ev) != "4" {
		t.Fatalf("after restart: %+v", ev)
	}
	noMoreEvents(t, bob2, 5)

	// A new device that skips the backlog starts at the latest seq.
	bob3 := dial(t, n.MQTTAddr(), "bob", func(c *sdk.Config) { c.SkipBacklog = true })
	eventually(t, "cursor at latest", func() bool { return bob3.Cursor() == 5 })
	if _, err := alice.SendText(ctx(t), "bob", "5"); err != nil {
		t.Fatal(err)
	}
	if ev := collect(t, bob3, 1)[0]; ev.Seq != 6 {
		t.Fatalf("skip backlog: %+v", ev)
	}
}

func TestFileCursor(t *testing.T) {
	c := sdk.FileCursor{Path: filepath.Join(t.TempDir(), "c")}
	if seq, err := c.Load(context.Background()); err != nil || seq != 0 {
		t.Fatalf("missing file: %d %v", seq, err)
	}
	for _, s := range []int64{7, 1 << 40} {
		if err := c.Save(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		if seq, err := c.Load(context.Background()); err != nil || seq != s {
			t.Fatalf("load %d %v, want %d", seq, err, s)
		}
	}
	bad := sdk.FileCursor{Path: filepath.Join(t.TempDir(), "nodir", "c")}
	if err := bad.Save(context.Background(), 1); err == nil {
		t.Fatal("save into a missing directory")
	}
}

func TestNewCmid(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		c := sdk.NewCmid()
		if len(c) != 26 || seen[c] {
			t.Fatalf("cmid %q", c)
		}
		seen[c] = true
	}
}

// The last event before a silence is lost: no later event shows the gap,
// the sync after a quiet period finds it [IM-5.2-5].
func TestQuietSyncFindsLostLastEvent(t *testing.T) {
	testnode.ForEachBackend(t, testQuietSyncFindsLostLastEvent)
}

func testQuietSyncFindsLostLastEvent(t *testing.T, be testnode.Backend) {
	n := startNode(t, be)
	afterSync, synced := initialSync()
	bob := dial(t, n.MQTTAddr(), "bob", func(c *sdk.Config) {
		c.QuietSync = 300 * time.Millisecond
		sdk.SetTestHooks(c, sdk.TestHooks{
			AfterSync: afterSync,
			DropEvent: func(ev sdk.Event) bool { return ev.Seq == 2 }, // every live copy
		})
	})
	alice := dial(t, n.MQTTAddr(), "alice", func(c *sdk.Config) { c.NoEvents = true })
	wait(t, synced, "the first sync")
	for i := range 2 {
		if _, err := alice.SendText(ctx(t), "bob", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	evs := collect(t, bob, 2)
	checkStream(t, evs, 1)
	noMoreEvents(t, bob, 2)
}

// A second connection with the same client id takes the device over; the
// first client stops instead of fighting back [IM-6.2-2].
func TestTakeover(t *testing.T) {
	n := startNode(t, testnode.SQLite)
	first := dial(t, n.MQTTAddr(), "alice", func(c *sdk.Config) { c.ClientID = "alice.phone" })
	second := dial(t, n.MQTTAddr(), "alice", func(c *sdk.Config) { c.ClientID = "alice.phone" })
	select {
	case <-first.Done():
	case <-time.After(waitTimeout):
		t.Fatal("the first client did not stop")
	}
	if !errors.Is(first.Err(), sdk.ErrTakenOver) {
		t.Fatalf("first client: %v", first.Err())
	}
	if _, err := first.SendText(ctx(t), "bob", "x"); !errors.Is(err, sdk.ErrTakenOver) {
		t.Fatalf("send on a taken-over client: %v", err)
	}
	if _, err := second.Conversations(ctx(t), 0); err != nil {
		t.Fatal(err)
	}
}

// Close stops every goroutine the client started.
func TestCloseStopsGoroutines(t *testing.T) {
	n := startNode(t, testnode.SQLite)
	dial(t, n.MQTTAddr(), "bob", func(c *sdk.Config) { c.NoEvents = true })
	base := runtime.NumGoroutine()
	for range 3 {
		c, err := sdk.Dial(ctx(t), sdk.Config{Server: n.MQTTAddr(), User: "alice", Token: token(t, "alice")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.SendText(ctx(t), "bob", "x"); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.SendText(ctx(t), "bob", "y"); !errors.Is(err, sdk.ErrClosed) {
			t.Fatalf("send after Close: %v", err)
		}
	}
	eventually(t, "goroutines back to where they were", func() bool { return runtime.NumGoroutine() <= base })
}
