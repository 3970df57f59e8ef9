package server

import (
	"errors"
	"slices"

	"github.com/mqim/mqim/delivery/routes"
	"github.com/mqim/mqim/im"
	"github.com/mqim/mqim/push"
)

// newPush builds offline push [IM-17] when providers are configured: it
// needs NATS (the work queue and the acknowledgement queries) and the
// routing table (who is online where). It returns the consumers of
// committed events with push last (nudged after delivery).
func (n *Node) newPush(consumers []im.Consumer) ([]im.Consumer, error) {
	cfg := n.cfg.Push
	if len(cfg.Providers) == 0 {
		return consumers, nil
	}
	if n.cfg.NATS == nil || n.table == nil {
		return nil, errors.New("server: push needs NATS (embedded or external)")
	}
	cfg.Store, cfg.NATS, cfg.Node, cfg.Replicas = n.cfg.Store, n.cfg.NATS, n.cfg.NodeName, n.cfg.Replicas
	cfg.Presence, cfg.Log, cfg.Registerer = pushPresence{n.table}, n.log, n.cfg.Registry
	p, err := push.New(cfg)
	if err != nil {
		return nil, err
	}
	n.push = p
	return append(consumers, p), nil
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
func (n *Node) pusher() im.Pusher {
	if n.push == nil {
		return nil
	}
	return n.push
}
