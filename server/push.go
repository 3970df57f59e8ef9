package server

import (
	"errors"
	"slices"

	"github.com/mqim/mqim/hooks/ingest"
	"github.com/mqim/mqim/push"
	"github.com/mqim/mqim/push/pushmqtt"
	"github.com/mqim/mqim/store"
	"github.com/mqim/mqim/sync/routes"
)

// newPush builds offline push [IM-17] when providers are configured: it
// needs NATS (the work queue and the acknowledgement queries) and the
// routing table (who is online where). It returns the deliverer the
// committer hands events to (push nudged after delivery) and the mochi
// glue.
func (n *Node) newPush(deliver ingest.Deliverer) (ingest.Deliverer, *pushmqtt.Hook, error) {
	cfg := n.cfg.Push
	if len(cfg.Providers) == 0 {
		return deliver, nil, nil
	}
	if n.cfg.NATS == nil || n.table == nil {
		return nil, nil, errors.New("server: push needs NATS (embedded or external)")
	}
	cfg.Store, cfg.NATS, cfg.Node, cfg.Replicas = n.cfg.Store, n.cfg.NATS, n.cfg.NodeName, n.cfg.Replicas
	cfg.Presence, cfg.Log, cfg.Registerer = pushPresence{n.table}, n.log, n.cfg.Registry
	p, err := push.New(cfg)
	if err != nil {
		return nil, nil, err
	}
	n.push = p
	return pushed{deliver, p}, pushmqtt.New(n.devices, p), nil
}

// pushed hands committed events to delivery, then to push.
type pushed struct {
	ingest.Deliverer
	push *push.Service
}

func (p pushed) Deliver(events []store.InboxEvent) {
	p.Deliverer.Deliver(events)
	p.push.Deliver(events)
}

// pushPresence answers push's question from the routing table.
type pushPresence struct{ t *routes.Table }

func (p pushPresence) DeviceNodes(user string) []string {
	var nodes []string
	for _, e := range p.t.Devices(user) {
		if !slices.Contains(nodes, e.Node) {
			nodes = append(nodes, e.Node)
		}
	}
	return nodes
}

// pusher is the registration API for the RPCs; nil (an interface holding
// no service) when push is off.
func (n *Node) pusher() ingest.Pusher {
	if n.push == nil {
		return nil
	}
	return n.push
}
