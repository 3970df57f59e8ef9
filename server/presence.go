package server

// userOnline reports whether a device of user is connected [IM-15.2-2]: to
// any node by the routing table, or, on a node without NATS, to this one.
func (n *Node) userOnline(user string) bool {
	if n.table != nil {
		return n.table.UserOnline(user)
	}
	return n.broker.UserOnline(user)
}
