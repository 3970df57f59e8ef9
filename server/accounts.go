package server

import (
	"net/http"

	"github.com/mqim/mqim/account"
	"github.com/mqim/mqim/httpapi"
	"github.com/mqim/mqim/protocol/authtoken"
)

// newAccounts builds account control and the admin API [IM-8.3]: actions
// end sessions through the auth hook, here and (over NATS) on every node.
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
	n.adminAPI = httpapi.NewAdmin(httpapi.AdminConfig{Auth: n.auth, Accounts: n.accounts, Store: n.cfg.Store, Log: n.log})
	return nil
}

// AdminHandler is the admin API, for a separate listener.
func (n *Node) AdminHandler() http.Handler { return n.adminAPI }

// actor is the audit log's who and from where of a request.
func actor(c *authtoken.Claims, r *http.Request) account.Actor {
	return account.Actor{Subject: c.Subject, Role: c.Role, Remote: r.RemoteAddr}
}
