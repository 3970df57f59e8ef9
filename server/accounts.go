package server

import (
	"net/http"

	"github.com/mqim/mqim/account"
	"github.com/mqim/mqim/httpapi"
)

// newAccounts builds account control, the admin API [IM-8.3] and the rest
// of the HTTP API: actions end sessions through the broker's auth hook, here
// and (over NATS) on every node.
func (n *Node) newAccounts(sessions account.Sessions) error {
	cfg := account.Config{Store: n.cfg.Store, Sessions: sessions, NodeName: n.cfg.NodeName, Log: n.log, Registerer: n.cfg.Registry}
	if n.cfg.NATS != nil && !n.cfg.Standalone {
		cfg.NATS = n.cfg.NATS
	}
	if er := n.media.Eraser(); er != nil {
		cfg.Media = er
	}
	var err error
	if n.accounts, err = account.New(cfg); err != nil {
		return err
	}
	n.adminAPI = httpapi.NewAdmin(httpapi.AdminConfig{Auth: n.auth, Accounts: n.accounts, Store: n.cfg.Store, Core: n.core, Log: n.log})
	api := httpapi.APIConfig{Auth: n.auth, Core: n.core, Users: n.cfg.Store, Accounts: n.accounts,
		NodeName: n.cfg.NodeName, MaxBody: n.cfg.MaxBody, Log: n.log}
	if n.table != nil {
		api.Routing = n.table
	}
	n.api = httpapi.NewAPI(api)
	return nil
}

// AdminHandler is the admin API, for a separate listener.
func (n *Node) AdminHandler() http.Handler { return n.adminAPI }
