package e2e

import (
	"fmt"
	"testing"

	"github.com/mqim/mqim/protocol"
)

// TestOfflineThenSync: events stored while bob is offline are all returned
// by sync, paged with limit, in order, without duplicates [IM-5.2-2],
// [IM-5.2-4], [IM-7.3-1], [IM-7.3-2].
func TestOfflineThenSync(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		bob := dl.dial(t, n, "bob", withClientID("bob.phone")) // creates bob [IM-3.1-5]
		bob.closeAbruptly()                                    // goes offline without DISCONNECT

		alice := dl.dial(t, n, "alice")
		const total = 30
		for i := range total {
			alice.sendOK(text(fmt.Sprintf("c%02d", i), "bob", fmt.Sprintf("m%02d", i)))
		}

		bob = dl.dial(t, n, "bob", withClientID("bob.phone"))
		// limit 0: only latest_seq [IM-7.3-2].
		res := call[protocol.SyncResult](bob, protocol.MethodSync, protocol.SyncRequest{After: 0, Limit: 0})
		if len(res.Events) != 0 || !res.HasMore || res.Latest != total {
			t.Fatalf("sync limit 0: %d events, has_more %v, latest %d", len(res.Events), res.HasMore, res.Latest)
		}

		var cursor int64
		pages := 0
		seen := map[int64]bool{}
		for {
			res := call[protocol.SyncResult](bob, protocol.MethodSync, protocol.SyncRequest{After: cursor, Limit: 10})
			pages++
			if res.Latest != total {
				t.Fatalf("page %d: latest_seq %d, want %d", pages, res.Latest, total)
			}
			if len(res.Events) != 10 {
				t.Fatalf("page %d: %d events, want 10", pages, len(res.Events))
			}
			for _, ev := range res.Events {
				if ev.Seq != cursor+1 || seen[ev.Seq] {
					t.Fatalf("page %d: seq %d after cursor %d", pages, ev.Seq, cursor)
				}
				seen[ev.Seq] = true
				cursor = ev.Seq
				i := ev.Seq - 1
				if ev.Kind != protocol.KindMessage || ev.Conv != "d:alice:bob" || ev.ConvSeq != ev.Seq || ev.Msg == nil ||
					ev.Msg.Cmid != fmt.Sprintf("c%02d", i) || ev.Msg.Body["text"] != fmt.Sprintf("m%02d", i) || ev.Msg.From != "alice" {
					t.Fatalf("event %d: %+v %+v", ev.Seq, ev, ev.Msg)
				}
			}
			if want := cursor < total; res.HasMore != want {
				t.Fatalf("page %d ending at %d: has_more %v, want %v", pages, cursor, res.HasMore, want)
			}
			if !res.HasMore {
				break
			}
		}
		if pages != 3 || cursor != total {
			t.Fatalf("%d pages up to %d", pages, cursor)
		}
		res = call[protocol.SyncResult](bob, protocol.MethodSync, protocol.SyncRequest{After: total, Limit: 10})
		if len(res.Events) != 0 || res.HasMore || res.Latest != total || res.Reset {
			t.Fatalf("sync at the end: %+v", res)
		}
		// Absent limit means 100 [IM-7.3-1]: all 30 in one page.
		m := call[protocol.SyncResult](bob, protocol.MethodSync, map[string]any{"after": 0})
		if len(m.Events) != total || m.HasMore {
			t.Fatalf("sync without limit: %d events, has_more %v", len(m.Events), m.HasMore)
		}
		// Pushes that reach the new connection (the last sends may still be
		// in delivery when it subscribes) are events sync returned too: the
		// device drops them as duplicates [IM-5.2-3].
		for _, ev := range bob.events(0) {
			if ev.Seq < 1 || ev.Seq > total || ev.Msg == nil || ev.Msg.Cmid != fmt.Sprintf("c%02d", ev.Seq-1) {
				t.Fatalf("pushed event %v is not one of the synced events", ev)
			}
		}
	})
}
