package e2e

import (
	"fmt"
	"testing"

	"github.com/mqim/mqim/protocol"
)

// TestReadAndUnread: unread counts in conversations [IM-7.5-2], the read RPC
// and its events on both sides [IM-7.6-1], [IM-7.6-2], [IM-5.1-3], and the
// implicit read of a send [IM-5.2-6].
func TestReadAndUnread(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		alice := dl.dial(t, n, "alice")
		bob1 := dl.dial(t, n, "bob")
		bob2 := dl.dial(t, n, "bob")
		carol := dl.dial(t, n, "carol")
		dl.dial(t, n, "dave", noSubscribe()) // exists, and has no conversation with bob

		for i := 1; i <= 5; i++ {
			alice.sendOK(text(fmt.Sprintf("a%d", i), "bob", fmt.Sprintf("from alice %d", i)))
		}
		for i := 1; i <= 2; i++ {
			carol.sendOK(text(fmt.Sprintf("c%d", i), "bob", fmt.Sprintf("from carol %d", i)))
		}
		// bob's inbox: 1..5 from alice, 6..7 from carol.
		for seq := int64(1); seq <= 7; seq++ {
			for _, b := range []*device{bob1, bob2} {
				if ev := b.nextMessage(); ev.Seq != seq {
					t.Fatalf("%s: %v, want seq %d", b.id, ev, seq)
				}
			}
		}
		for seq := int64(1); seq <= 5; seq++ {
			alice.nextMessage()
		}

		type conv struct {
			conv                         string
			peer                         string
			last, read, peerRead, unread int64
			lastCmid                     string
		}
		checkConvs := func(d *device, total int64, want ...conv) {
			t.Helper()
			res := call[protocol.ConversationsResult](d, protocol.MethodConversations, protocol.ConversationsRequest{})
			if res.TotalUnread != total || len(res.Conversations) != len(want) {
				t.Fatalf("%s conversations: total_unread %d (want %d), %+v", d.user, res.TotalUnread, total, res.Conversations)
			}
			// Most recent message first [IM-7.5-2] (ties: any order).
			byConv := map[string]protocol.Conversation{}
			for i, c := range res.Conversations {
				if i > 0 && c.Last != nil && res.Conversations[i-1].Last != nil && c.Last.TS > res.Conversations[i-1].Last.TS {
					t.Fatalf("%s conversations not most recent first: %+v", d.user, res.Conversations)
				}
				byConv[c.Conv] = c
			}
			for i, w := range want {
				c := byConv[w.conv]
				if c.Conv != w.conv || c.Kind != "direct" || c.Peer != w.peer || c.LastSeq != w.last || c.ReadSeq != w.read ||
					c.PeerReadSeq != w.peerRead || c.Unread != w.unread || c.Last == nil || c.Last.Cmid != w.lastCmid || c.Last.Seq != w.last {
					t.Fatalf("%s conversation %d: %+v (last %+v), want %+v", d.user, i, c, c.Last, w)
				}
			}
		}
		// Senders have read what they sent [IM-5.2-6].
		checkConvs(bob1, 7,
			conv{"d:bob:carol", "carol", 2, 0, 2, 2, "c2"},
			conv{"d:alice:bob", "alice", 5, 0, 5, 5, "a5"})
		checkConvs(alice, 0, conv{"d:alice:bob", "bob", 5, 5, 0, 0, "a5"})

		// bob reads up to 3 on one device.
		res := call[protocol.ReadResult](bob1, protocol.MethodRead, protocol.ReadRequest{Conv: "d:alice:bob", Seq: 3})
		if res.Conv != "d:alice:bob" || res.ReadSeq != 3 || res.Unread != 2 {
			t.Fatalf("read: %+v", res)
		}
		// Every device of bob (the requesting one included) clears unread,
		// alice gets a receipt [IM-7.6-2].
		for _, b := range []*device{bob1, bob2} {
			ev := b.next()
			if ev.Kind != protocol.KindRead || ev.Seq != 8 || ev.Conv != "d:alice:bob" || ev.ConvSeq != 3 || ev.User != "bob" || ev.TS == 0 {
				t.Fatalf("%s: %v, want read seq 8 conv_seq 3 user bob", b.id, ev)
			}
		}
		if ev := alice.next(); ev.Kind != protocol.KindRead || ev.Seq != 6 || ev.Conv != "d:alice:bob" || ev.ConvSeq != 3 || ev.User != "bob" {
			t.Fatalf("alice: %v, want read receipt seq 6 conv_seq 3 user bob", ev)
		}
		checkConvs(bob2, 4,
			conv{"d:bob:carol", "carol", 2, 0, 2, 2, "c2"},
			conv{"d:alice:bob", "alice", 5, 3, 5, 2, "a5"})
		checkConvs(alice, 0, conv{"d:alice:bob", "bob", 5, 5, 3, 0, "a5"})

		// Backwards: no move, no event; the result is the position [IM-7.6-1].
		res = call[protocol.ReadResult](bob1, protocol.MethodRead, protocol.ReadRequest{Conv: "d:alice:bob", Seq: 1})
		if res.ReadSeq != 3 || res.Unread != 2 {
			t.Fatalf("read backwards: %+v", res)
		}
		// Beyond the end: clamped to last_seq.
		res = call[protocol.ReadResult](bob2, protocol.MethodRead, protocol.ReadRequest{Conv: "d:alice:bob", Seq: 100})
		if res.ReadSeq != 5 || res.Unread != 0 {
			t.Fatalf("read beyond the end: %+v", res)
		}
		for _, b := range []*device{bob1, bob2} {
			// The next event is the forward move: the backward read made none.
			if ev := b.next(); ev.Kind != protocol.KindRead || ev.Seq != 9 || ev.ConvSeq != 5 {
				t.Fatalf("%s: %v, want read seq 9 conv_seq 5", b.id, ev)
			}
		}
		if ev := alice.next(); ev.Kind != protocol.KindRead || ev.Seq != 7 || ev.ConvSeq != 5 || ev.User != "bob" {
			t.Fatalf("alice: %v, want read receipt seq 7 conv_seq 5", ev)
		}
		checkConvs(bob1, 2,
			conv{"d:bob:carol", "carol", 2, 0, 2, 2, "c2"},
			conv{"d:alice:bob", "alice", 5, 5, 5, 0, "a5"})

		// Sending marks the sender's own read position, with no read event
		// [IM-5.2-6].
		bob2.sendOK(text("b1", "carol", "hi carol"))
		checkConvs(bob1, 0,
			conv{"d:bob:carol", "carol", 3, 3, 2, 0, "b1"},
			conv{"d:alice:bob", "alice", 5, 5, 5, 0, "a5"})
		checkConvs(carol, 1, conv{"d:bob:carol", "bob", 3, 2, 3, 1, "b1"})
		for _, b := range []*device{bob1, bob2} {
			if ev := b.next(); ev.Kind != protocol.KindMessage || ev.Seq != 10 || ev.Msg.Cmid != "b1" {
				t.Fatalf("%s: %v, want message b1 at seq 10", b.id, ev)
			}
		}
		if s := call[protocol.SyncResult](bob1, protocol.MethodSync, protocol.SyncRequest{After: 0, Limit: 0}); s.Latest != 10 {
			t.Fatalf("bob's latest_seq %d, want 10 (no event for backward reads or implicit reads)", s.Latest)
		}
		// read events are in sync too.
		evs := bob1.syncAll(7)
		if len(evs) != 3 || evs[0].Kind != protocol.KindRead || evs[0].ConvSeq != 3 || evs[0].User != "bob" ||
			evs[1].Kind != protocol.KindRead || evs[1].ConvSeq != 5 || evs[2].Kind != protocol.KindMessage {
			t.Fatalf("sync after 7: %+v", evs)
		}

		// A direct conversation of bob with no message yet [IM-7.6-3].
		res = call[protocol.ReadResult](bob1, protocol.MethodRead, protocol.ReadRequest{Conv: "d:bob:dave", Seq: 4})
		if res.Conv != "d:bob:dave" || res.ReadSeq != 0 || res.Unread != 0 {
			t.Fatalf("read of an empty conversation: %+v", res)
		}
		// Not a member.
		bob1.rpcErr(protocol.MethodRead, protocol.ReadRequest{Conv: "d:alice:carol", Seq: 1}, protocol.CodeNotMember)
	})
}
