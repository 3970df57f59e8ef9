package e2e

import (
	"fmt"
	"testing"

	"github.com/mqim/mqim/protocol"
)

// TestHistoryPaging pages a conversation backward and forward [IM-7.4-1],
// [IM-7.4-2], [IM-7.4-3].
func TestHistoryPaging(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		alice := dl.dial(t, n, "alice")
		bob := dl.dial(t, n, "bob")
		carol := dl.dial(t, n, "carol")
		dave := dl.dial(t, n, "dave")
		const total = 25
		ids := map[int64]int64{}
		for i := 1; i <= total; i++ {
			from, to := alice, "bob"
			if i%2 == 0 {
				from, to = bob, "alice"
			}
			s := from.sendOK(text(fmt.Sprintf("h%02d", i), to, fmt.Sprintf("text %02d", i)))
			if s.Seq != int64(i) {
				t.Fatalf("message %d stored with seq %d", i, s.Seq)
			}
			ids[s.Seq] = s.ID
		}
		carol.sendOK(text("cd1", "dave", "not for alice"))
		_ = dave

		const conv = "d:alice:bob"
		page := func(d *device, req protocol.HistoryRequest, first, last int64, more bool) {
			t.Helper()
			res := call[protocol.HistoryResult](d, protocol.MethodHistory, req)
			if res.Conv != conv {
				t.Fatalf("%+v: conv %q", req, res.Conv)
			}
			var got []int64
			for _, m := range res.Messages {
				got = append(got, m.Seq)
			}
			if len(res.Messages) != int(last-first+1) || res.HasMore != more {
				t.Fatalf("%+v: seqs %v has_more %v, want %d..%d has_more %v", req, got, res.HasMore, first, last, more)
			}
			for i, m := range res.Messages {
				seq := first + int64(i)
				from := "alice"
				if seq%2 == 0 {
					from = "bob"
				}
				if m.Seq != seq || m.ID != ids[seq] || m.Conv != conv || m.From != from || m.Cmid != fmt.Sprintf("h%02d", seq) ||
					m.Type != protocol.TypeText || m.Body["text"] != fmt.Sprintf("text %02d", seq) || m.TS == 0 {
					t.Fatalf("%+v: message %d is %+v", req, seq, m)
				}
			}
		}
		// Backward from the newest.
		page(alice, protocol.HistoryRequest{Conv: conv, Limit: 10}, 16, 25, true)
		page(alice, protocol.HistoryRequest{Conv: conv, Before: 16, Limit: 10}, 6, 15, true)
		page(alice, protocol.HistoryRequest{Conv: conv, Before: 6, Limit: 10}, 1, 5, false)
		// Forward.
		page(alice, protocol.HistoryRequest{Conv: conv, After: 1, Limit: 10}, 2, 11, true)
		page(alice, protocol.HistoryRequest{Conv: conv, After: 11, Limit: 10}, 12, 21, true)
		page(alice, protocol.HistoryRequest{Conv: conv, After: 21, Limit: 10}, 22, 25, false)
		page(alice, protocol.HistoryRequest{Conv: conv, After: 25, Limit: 10}, 26, 25, false)
		// Both bounds: forward from after, below before [IM-7.4-2].
		page(alice, protocol.HistoryRequest{Conv: conv, After: 5, Before: 9, Limit: 10}, 6, 8, false)
		page(alice, protocol.HistoryRequest{Conv: conv, After: 5, Before: 20, Limit: 10}, 6, 15, true)
		// Default limit (absent or 0) is 50 [IM-7.4-1].
		page(alice, protocol.HistoryRequest{Conv: conv}, 1, 25, false)
		// with instead of conv, from both sides.
		page(alice, protocol.HistoryRequest{With: "bob", Limit: 10}, 16, 25, true)
		page(bob, protocol.HistoryRequest{With: "alice", Before: 3, Limit: 2}, 1, 2, false)

		// A conversation of others [IM-7.4-3].
		alice.rpcErr(protocol.MethodHistory, protocol.HistoryRequest{Conv: "d:carol:dave"}, protocol.CodeNotMember)
		alice.rpcErr(protocol.MethodHistory, protocol.HistoryRequest{Conv: "d:bob:carol"}, protocol.CodeNotMember)
		// A direct conversation of the requester without messages, even
		// with a user that does not exist: an empty page [IM-7.4-3].
		for _, with := range []string{"carol", "nobody"} {
			res := call[protocol.HistoryResult](alice, protocol.MethodHistory, protocol.HistoryRequest{With: with})
			if res.Conv != protocol.DirectConv("alice", with) || len(res.Messages) != 0 || res.HasMore || res.Messages == nil {
				t.Fatalf("history with %s: %+v", with, res)
			}
		}
	})
}
