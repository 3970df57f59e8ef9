package server

// Subscribed reports whether the client with this client id is connected to
// this node with a subscription to exactly filter. It lets tests (and
// operators) wait for a device that is not a Go client to be ready.
func (n *Node) Subscribed(clientID, filter string) bool { return n.broker.Subscribed(clientID, filter) }

// ClientRemote is the remote address of a connected client, as the node
// sees it (behind a load balancer: the one of its PROXY protocol header),
// and "" when it is not connected.
func (n *Node) ClientRemote(clientID string) string { return n.broker.ClientRemote(clientID) }
