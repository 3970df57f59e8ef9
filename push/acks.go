package push

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// ackLife is how long a delivery acknowledgement is remembered: longer
// than any push-after window.
const ackLife = 10 * time.Minute

// acks remembers, per (user, conversation), the highest conversation seq
// a device of the user acknowledged (PUBACK) on this node. Other nodes ask
// over NATS (ackSubject + node name) when a job's user has devices here.
type acks struct {
	mu   sync.Mutex
	seen map[ackKey]ackVal
}

type ackKey struct{ user, conv string }

type ackVal struct {
	seq int64
	at  time.Time
}

func newAcks() *acks { return &acks{seen: map[ackKey]ackVal{}} }

func (a *acks) record(user, conv string, seq int64, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := ackKey{user, conv}
	if v, ok := a.seen[k]; !ok || seq > v.seq {
		a.seen[k] = ackVal{seq: seq, at: now}
	} else {
		a.seen[k] = ackVal{seq: v.seq, at: now}
	}
}

func (a *acks) acked(user, conv string, seq int64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seen[ackKey{user, conv}].seq >= seq
}

// sweep forgets acknowledgements older than ackLife.
func (a *acks) sweep(now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, v := range a.seen {
		if now.Sub(v.at) > ackLife {
			delete(a.seen, k)
		}
	}
}

const ackSubject = "mqim.push.acked."

type ackQuery struct {
	User string `json:"u"`
	Conv string `json:"c"`
	Seq  int64  `json:"s"`
}

// serveAcks answers other nodes' questions about this node's acks.
func (a *acks) serve(nc *nats.Conn, node string) (*nats.Subscription, error) {
	return nc.Subscribe(ackSubject+node, func(m *nats.Msg) {
		var q ackQuery
		answer := []byte("0")
		if json.Unmarshal(m.Data, &q) == nil && a.acked(q.User, q.Conv, q.Seq) {
			answer = []byte("1")
		}
		_ = m.Respond(answer)
	})
}

// ask asks node whether a device of user acknowledged (conv, seq); no
// answer counts as no.
func ask(ctx context.Context, nc *nats.Conn, node string, q ackQuery) bool {
	data, _ := json.Marshal(q)
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	m, err := nc.RequestWithContext(ctx, ackSubject+node, data)
	return err == nil && string(m.Data) == "1"
}
