package mqtt

// The auth hook authenticates devices (MQTT username = user id, password =
// JWT, or a client certificate) and enforces the subscribe ACL [IM-2.2],
// [IM-3.1]. Publish ACL is enforced by the pipeline (pipeline.go) and the
// core, which alone can answer a refused publish the way the spec requires.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqim/mqim/account"
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/protocol/authtoken"
	"github.com/mqim/mqim/store"
)

// Users is what CONNECT reads and writes in the store: the account state
// (disabled, deleted, revocations) and the user, created on first connect.
type Users interface {
	Account(ctx context.Context, user, client string) (store.Account, error)
	EnsureUser(ctx context.Context, user, device string) error
}

// AuthConfig configures the auth hook. Zero values are not valid unless noted.
type AuthConfig struct {
	Tokens  *authtoken.Verifier
	Users   Users
	Devices *Sessions
	Members *Members      // group membership for the group topic ACL; nil: no group topics
	Log     *slog.Logger  // zero: slog.Default()
	Timeout time.Duration // per store call; zero: 5s
	// PresenceAllowed reports whether viewer may read user's live presence
	// topic [IM-15.3-2]; nil: nobody but user.
	PresenceAllowed func(viewer, user string) bool
	// CertIdentity is the name of a verified client certificate that is
	// the user id (certs.go); zero: CertCN.
	CertIdentity CertIdentity
	// Limits are the CONNECT limits (connlimits.go); nil: none.
	Limits *ConnLimits
}

// Auth is the auth hook; it implements mochi.Hook.
type Auth struct {
	mochi.HookBase
	cfg    AuthConfig
	server *mochi.Server
}

var _ mochi.Hook = (*Auth)(nil)

// NewAuth returns the auth hook; server is used to answer refused connects itself.
func NewAuth(server *mochi.Server, cfg AuthConfig) *Auth {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	return &Auth{cfg: cfg, server: server}
}

// ID names the hook.
func (h *Auth) ID() string { return "mqim-auth" }

// Provides lists the events handled.
func (h *Auth) Provides(b byte) bool {
	return bytes.Contains([]byte{mochi.OnConnect, mochi.OnConnectAuthenticate, mochi.OnACLCheck, mochi.OnDisconnect}, []byte{b})
}

// OnConnect verifies the credentials and creates the user. It runs before
// OnConnectAuthenticate and can choose the CONNACK reason code itself.
func (h *Auth) OnConnect(cl *mochi.Client, pk packets.Packet) error {
	if code, ok := h.cfg.Limits.Admit(cl); !ok { // [IM-3.1-9]
		_ = h.server.SendConnack(cl, code, false, nil)
		return code
	}
	h.adoptCertUser(cl)
	user := string(cl.Properties.Username)
	claims, err := h.verify(cl, pk)
	if err != nil {
		h.cfg.Log.Info("connect refused", "client", cl.ID, "user", user, "remote", cl.Net.Remote, "error", err)
		h.cfg.Limits.Failed(cl, user) // the answer is held after repeated failures [IM-3.1-9]
		code := packets.ErrBadUsernameOrPassword
		if cl.Properties.ProtocolVersion < 5 {
			// 3.1.1 return code 4 [IM-3.1-4]; mochi would map 0x86 to 5.
			code = packets.ErrMalformedUsernameOrPassword
		}
		_ = h.server.SendConnack(cl, code, false, nil)
		return packets.ErrBadUsernameOrPassword
	}
	// mochi lets a new connection take over any session with the same client
	// id; across users that would let anyone kick anyone's device off.
	if old, ok := h.server.Clients.Get(cl.ID); ok && string(old.Properties.Username) != user {
		h.cfg.Log.Info("connect refused: client id belongs to another user", "client", cl.ID, "user", user)
		_ = h.server.SendConnack(cl, packets.ErrClientIdentifierNotValid, false, nil)
		return packets.ErrClientIdentifierNotValid
	}
	if h.cfg.Limits.Full(cl, user) { // [IM-3.1-9]
		_ = h.server.SendConnack(cl, packets.ErrQuotaExceeded, false, nil)
		return packets.ErrQuotaExceeded
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.Timeout)
	defer cancel()
	acc, err := h.cfg.Users.Account(ctx, user, cl.ID)
	if err == nil {
		if code, why := refusal(acc, claims, cl.ID); why != "" {
			h.cfg.Log.Info("connect refused", "client", cl.ID, "user", user, "remote", cl.Net.Remote, "reason", why)
			_ = h.server.SendConnack(cl, code, false, nil)
			return code
		}
		err = h.cfg.Users.EnsureUser(ctx, user, cl.ID)
	}
	if errors.Is(err, store.ErrUserDeleted) { // deleted between the two calls
		_ = h.server.SendConnack(cl, packets.ErrBanned, false, nil)
		return packets.ErrBanned
	}
	if err != nil {
		h.cfg.Log.Warn("connect refused: store unavailable", "client", cl.ID, "user", user, "error", err)
		_ = h.server.SendConnack(cl, packets.ErrServerUnavailable, false, nil)
		return packets.ErrServerUnavailable
	}
	h.takeOver(cl)
	// Wills are ignored in v1 [IM-1.3]: a will is published without passing
	// the publish ACL, so one could spoof another topic's traffic.
	cl.Properties.Will = mochi.Will{}
	sess := NewSession(cl, user, claims.Role, outputFormat(cl, claims))
	sess.IssuedAt = claims.IssuedAt.Unix()
	h.cfg.Devices.Set(cl, sess)
	return nil
}

// refusal is the CONNACK code refusing a valid token for the account's
// state, with the reason for the log; why "" accepts [IM-3.1-4],
// [IM-3.1-8]. mochi maps 0x87 and 0x8A to the 3.1.1 return code 5.
func refusal(acc store.Account, claims *authtoken.Claims, client string) (code packets.Code, why string) {
	switch {
	case acc.Deleted:
		return packets.ErrBanned, "user deleted"
	case acc.Disabled:
		return packets.ErrBanned, "user disabled"
	case claims.Client != "" && claims.Client != client:
		return packets.ErrNotAuthorized, "token bound to another client id"
	case acc.DeviceRevoked:
		return packets.ErrNotAuthorized, "device revoked"
	case claims.IssuedAt.Unix() < acc.NotBefore:
		return packets.ErrNotAuthorized, "token revoked (issued before the user's not-before)"
	}
	return packets.Code{}, ""
}

// End disconnects the live sessions on this node that m selects:
// DISCONNECT 0x87 for a revocation, 0x98 for an administrative action
// (3.1.1: the connection is closed) [IM-6.2-2]. It implements
// account.Sessions.
func (h *Auth) End(m account.Match, why account.Reason) int {
	code := packets.ErrAdministrativeAction
	if why == account.Revoked {
		code = packets.ErrNotAuthorized
	}
	n := 0
	for _, cl := range h.server.Clients.GetAll() {
		if cl.Net.Inline || cl.Closed() || string(cl.Properties.Username) != m.User || m.Client != "" && cl.ID != m.Client {
			continue
		}
		if m.IssuedBefore > 0 {
			if dev := h.cfg.Devices.Get(cl); dev == nil || dev.IssuedAt >= m.IssuedBefore {
				continue
			}
		}
		h.cfg.Log.Info("session ended by an account action", "client", cl.ID, "user", m.User, "code", code.Code)
		_ = h.server.DisconnectClient(cl, code)
		n++
	}
	return n
}

// takeOver disconnects the connection cl takes over (same client id, same
// user) [IM-3.1-6] and waits until mochi has torn it down (Client.Detached,
// a patch of the fork). Left to mochi,
// the old connection's teardown races with the new connection: it can run
// after the new one subscribed and remove its subscriptions and its entry
// in the client list (they share the client id), leaving the new device
// without deliveries. Sessions that do not expire are left to mochi, which
// hands them over.
func (h *Auth) takeOver(cl *mochi.Client) {
	old, ok := h.server.Clients.Get(cl.ID)
	if !ok {
		return
	}
	expires := old.Properties.ProtocolVersion == 5 && old.Properties.Props.SessionExpiryInterval == 0 ||
		old.Properties.ProtocolVersion < 5 && old.Properties.Clean
	if !expires {
		return
	}
	_ = h.server.DisconnectClient(old, packets.ErrSessionTakenOver)
	// Waited for, not polled: the CONNECT goroutine sleeps until the old
	// connection's read loop has run its disconnect hooks and left the
	// client list, bounded by the store timeout (a teardown stuck that long
	// is logged, and the new connection goes on).
	t := time.NewTimer(h.cfg.Timeout)
	defer t.Stop()
	select {
	case <-old.Detached():
	case <-t.C:
		h.cfg.Log.Warn("old connection not torn down in time", "client", cl.ID)
	}
}

// OnConnectAuthenticate re-checks the token: cheap, and keeps the hook
// correct on its own should OnConnect ever be bypassed.
func (h *Auth) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	_, err := h.verify(cl, pk)
	return err == nil
}

func (h *Auth) verify(cl *mochi.Client, pk packets.Packet) (*authtoken.Claims, error) {
	user := string(cl.Properties.Username)
	if !protocol.ValidID(user) {
		return nil, fmt.Errorf("username %q is not a valid user id", user)
	}
	if claims, ok := h.certClaims(cl); ok {
		return claims, nil // [IM-3.4-1]
	}
	return h.cfg.Tokens.Verify(string(pk.Connect.Password), user)
}

// outputFormat picks the device's payload format [IM-1.2-3].
func outputFormat(cl *mochi.Client, claims *authtoken.Claims) protocol.Format {
	for _, p := range cl.Properties.Props.User {
		if p.Key == "format" {
			if f, ok := protocol.ParseFormat(p.Val); ok {
				return f
			}
		}
	}
	if f, ok := protocol.ParseFormat(claims.Format); ok {
		return f
	}
	if cl.Properties.ProtocolVersion == 5 {
		return protocol.MsgPack
	}
	return protocol.JSON
}

// OnACLCheck allows every write (the send pipeline checks publishes, see
// the package doc) and reads only of the device's own inbox and reply
// topics [IM-2.2-2], and of the topics of its user's groups [IM-2.2-4].
// mochi also calls it for each delivery, which is what stops a removed
// member's deliveries at once even before its subscription is dropped.
func (h *Auth) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	if write {
		return true
	}
	viewer := string(cl.Properties.Username)
	if conv, ok := protocol.GroupOfFilter(topic); ok {
		return h.cfg.Members != nil && h.cfg.Members.Member(conv, viewer)
	}
	if user, ok := protocol.ParsePresenceTopic(topic); ok {
		return user == viewer || h.cfg.PresenceAllowed != nil && h.cfg.PresenceAllowed(viewer, user)
	}
	return protocol.SubscribeAllowed(viewer, topic)
}

// OnDisconnect forgets the device, unless a newer connection with the same
// client id has taken it over (then cl is a different pointer anyway).
func (h *Auth) OnDisconnect(cl *mochi.Client, err error, expire bool) {
	h.cfg.Devices.Delete(cl)
}
