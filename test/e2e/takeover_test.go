package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/mqim/mqim/protocol"
)

// TestSessionTakeover: a device reconnecting with its client id takes the
// old connection over [IM-3.1-6] (MQTT 5: DISCONNECT 0x8E), and the new
// connection gets every delivery: the old connection's teardown must not
// remove the new one's subscriptions (they share the client id). Repeated,
// because the teardown races with the new connection.
func TestSessionTakeover(t *testing.T) {
	forEachStoreAndVersion(t, func(t *testing.T, be backend, dl dialer) {
		n := startNode(t, be)
		alice := dl.dial(t, n, "alice", noSubscribe())
		prev := dl.dial(t, n, "bob", withClientID("bob.phone"))
		for i := range 15 {
			cur := dl.dial(t, n, "bob", withClientID("bob.phone"))
			select {
			case <-prev.c.done():
			case <-time.After(waitTimeout):
				t.Fatalf("round %d: the old connection is still up", i)
			}
			if dl.v5() {
				prev.expectServerDisconnect(0x8E)
			}
			s := text(fmt.Sprintf("t%d", i), "bob", "after takeover")
			if r := alice.send(s); r.Err != nil || r.Code != 0 {
				t.Fatalf("round %d: send: %+v", i, r)
			}
			if ev := cur.nextMessage(); ev.Msg.Cmid != s.Cmid {
				t.Fatalf("round %d: %v", i, ev)
			}
			call[protocol.SyncResult](cur, protocol.MethodSync, protocol.SyncRequest{Limit: 0})
			prev = cur
		}
	})
}
