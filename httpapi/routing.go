package httpapi

import (
	"encoding/json"
	"net/http"
	"sort"

	"github.com/mqim/mqim/protocol"
)

// presence answers a user's online state from the routing table [IM-8.1-3].
func (a *API) presence(w http.ResponseWriter, r *http.Request) {
	if !a.admin(w, r) {
		return
	}
	user := r.PathValue("id")
	if !protocol.ValidID(user) {
		Error(w, http.StatusBadRequest, protocol.CodeBadRequest, "invalid user id")
		return
	}
	if a.cfg.Routing == nil {
		Error(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "this node runs without NATS: no routing table")
		return
	}
	type device struct {
		Client string `json:"client"`
		Node   string `json:"node"`
		Since  int64  `json:"since"`
	}
	out := struct {
		User    string   `json:"user"`
		Online  bool     `json:"online"`
		Devices []device `json:"devices"`
	}{User: user, Devices: []device{}}
	for c, e := range a.cfg.Routing.Devices(user) {
		out.Devices = append(out.Devices, device{Client: c, Node: e.Node, Since: e.Since})
	}
	sort.Slice(out.Devices, func(i, j int) bool { return out.Devices[i].Client < out.Devices[j].Client })
	out.Online = len(out.Devices) > 0
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// nodes lists the live nodes of the cluster [IM-8.1-4].
func (a *API) nodes(w http.ResponseWriter, r *http.Request) {
	if !a.admin(w, r) {
		return
	}
	type node struct {
		Name string `json:"name"`
		Addr string `json:"addr,omitempty"`
	}
	out := struct {
		Self  string `json:"self"`
		Nodes []node `json:"nodes"`
	}{Self: a.cfg.NodeName, Nodes: []node{}}
	if a.cfg.Routing != nil {
		for name, addr := range a.cfg.Routing.Nodes() {
			out.Nodes = append(out.Nodes, node{name, addr})
		}
	}
	sort.Slice(out.Nodes, func(i, j int) bool { return out.Nodes[i].Name < out.Nodes[j].Name })
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}
