package mqtt

import (
	"crypto/tls"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	mochi "github.com/mochi-mqtt/server/v2"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/protocol/authtoken"
)

// CertIdentity says which name of a verified client certificate is a user
// id [IM-3.4-1].
type CertIdentity string

// The names a client certificate can carry a user id in.
const (
	CertCN    CertIdentity = "cn"    // the subject's Common Name, the default
	CertDNS   CertIdentity = "dns"   // a DNS name SAN
	CertEmail CertIdentity = "email" // an email address SAN
)

// ParseCertIdentity checks a configured identity; "" is CertCN.
func ParseCertIdentity(s string) (CertIdentity, error) {
	switch id := CertIdentity(s); id {
	case "":
		return CertCN, nil
	case CertCN, CertDNS, CertEmail:
		return id, nil
	}
	return "", fmt.Errorf("client certificate identity %q: want cn, dns or email", s)
}

// tlsState is a connection that went through a TLS handshake: *tls.Conn,
// and the WebSocket connections of a wss listener.
type tlsState interface {
	ConnectionState() tls.ConnectionState
}

// certNames returns the valid user ids the connection's client certificate
// names, if the listener verified it against the client CA. A certificate
// that does not verify never gets here: the handshake fails.
func (h *Auth) certNames(cl *mochi.Client) []string {
	c, ok := cl.Net.Conn.(tlsState)
	if !ok {
		return nil
	}
	cs := c.ConnectionState()
	if len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return nil
	}
	leaf := cs.PeerCertificates[0]
	var names []string
	switch h.cfg.CertIdentity {
	case CertDNS:
		names = leaf.DNSNames
	case CertEmail:
		names = leaf.EmailAddresses
	default:
		names = []string{leaf.Subject.CommonName}
	}
	return slices.DeleteFunc(slices.Clone(names), func(n string) bool { return !protocol.ValidID(n) })
}

// adoptCertUser makes the certificate's user the username of a CONNECT
// without one, when the certificate names exactly one user.
func (h *Auth) adoptCertUser(cl *mochi.Client) {
	if len(cl.Properties.Username) > 0 {
		return
	}
	if names := h.certNames(cl); len(names) == 1 {
		cl.Properties.Username = []byte(names[0])
	}
}

// certClaims authenticates a connection by its client certificate: it
// succeeds when the certificate names the username. A device so
// authenticated has the claims of a plain user token issued now: account
// checks (disabled, deleted) apply as to a token; a "not before"
// revocation ends its session but does not refuse the next connect.
func (h *Auth) certClaims(cl *mochi.Client) (*authtoken.Claims, bool) {
	if !slices.Contains(h.certNames(cl), string(cl.Properties.Username)) {
		return nil, false
	}
	return &authtoken.Claims{RegisteredClaims: jwt.RegisteredClaims{IssuedAt: jwt.NewNumericDate(time.Now())}}, true
}
