package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mqim/mqim/protocol"
)

// ErrUserDeleted refuses to create (or connect as) a deleted user: deleted
// ids stay tombstoned [IM-3.1-5], [IM-8.3-5].
var ErrUserDeleted = errors.New("user deleted")

// Account is the state of a user's account that decides whether its
// devices may connect [IM-3.1-8].
type Account struct {
	Exists   bool
	Disabled bool
	Deleted  bool // tombstoned: the id is never created again
	// NotBefore (unix seconds) refuses tokens issued before it ("log out
	// everywhere"); 0: none.
	NotBefore int64
	// DeviceRevoked says the client id asked about is revoked ("this
	// device was stolen").
	DeviceRevoked bool
}

// AccountStore keeps account control and the audit log [IM-8.3].
type AccountStore interface {
	// Account returns user's account state, and whether client (if not
	// empty) is revoked. A user that never existed has the zero Account.
	Account(ctx context.Context, user, client string) (Account, error)
	// SetDisabled disables or enables user; ErrUnknownUser if it does
	// not exist.
	SetDisabled(ctx context.Context, user string, disabled bool) error
	// RevokeTokens refuses user's tokens issued before notBefore (unix
	// seconds; it never moves back); ErrUnknownUser.
	RevokeTokens(ctx context.Context, user string, notBefore int64) error
	// RevokeDevice revokes (or, revoked false, restores) one client id of
	// user; ErrUnknownUser.
	RevokeDevice(ctx context.Context, user, client string, revoked bool) error
	// RevokedDevices lists user's revoked client ids, sorted.
	RevokedDevices(ctx context.Context, user string) ([]string, error)
	// DeleteUser erases user's personal data and tombstones the id, in one
	// transaction [IM-8.3-5]: its contacts (both directions), settings,
	// read state, hidden messages, inbox, devices, revocations and group
	// memberships go; every message it sent becomes the recalled marker
	// (TypeRecalled, RecalledBody), without events. Deleting a deleted
	// user erases again; ErrUnknownUser if it never existed.
	DeleteUser(ctx context.Context, user string, ts int64) error

	// AppendAudit stores an audit entry and returns its id.
	AppendAudit(ctx context.Context, e AuditEntry) (int64, error)
	// Audit returns entries newest first, at most q.Limit (1..AuditMaxPage).
	Audit(ctx context.Context, q AuditQuery) (AuditPage, error)
}

// AuditEntry is one admin or bridge action [IM-8.3-6]. It never holds a
// message body or a token.
type AuditEntry struct {
	ID     int64
	TS     int64  // unix ms
	Actor  string // the token's subject
	Role   string // the token's role
	Action string // one of the Audit… constants
	Target string // the user (or group) acted on; "" for none
	Detail string // a short description: ids, never bodies
	Remote string // the requester's address (host:port)
}

// Audit actions [IM-8.3-6].
const (
	AuditUserCreated      = "user.created"
	AuditUserDisabled     = "user.disabled"
	AuditUserEnabled      = "user.enabled"
	AuditUserDeleted      = "user.deleted"
	AuditKick             = "user.kicked"
	AuditTokensRevoked    = "tokens.revoked"
	AuditDeviceRevoked    = "device.revoked"
	AuditDeviceRestored   = "device.restored"
	AuditNotificationSent = "notification.sent"
	AuditGroupChanged     = "group.changed"
)

// AuditMaxPage bounds AuditQuery.Limit.
const AuditMaxPage = 500

// AuditQuery selects a page of the audit log, newest first. Before (an
// entry id, exclusive; 0: from the newest), Target and Action filter.
type AuditQuery struct {
	Before int64
	Target string
	Action string
	Limit  int
}

// AuditPage is a page of the audit log; Next is the Before of the next
// (older) page, 0 when there is none.
type AuditPage struct {
	Entries []AuditEntry
	Next    int64
}

// AuditLimit clamps a requested page size.
func AuditLimit(n int) int {
	if n <= 0 || n > AuditMaxPage {
		return AuditMaxPage
	}
	return n
}

// FinishAudit turns the up to limit+1 rows read into a page.
func FinishAudit(rows []AuditEntry, limit int) AuditPage {
	if len(rows) > limit {
		return AuditPage{Entries: rows[:limit], Next: rows[limit-1].ID}
	}
	return AuditPage{Entries: rows}
}

// UserDeletedError refuses a deleted user.
func UserDeletedError(user string) *Error { return Refuse(ErrUserDeleted, "user %q was deleted", user) }

// DeleteUserRows are the statements (one parameter: the user id) with
// which both stores erase a user's rows, the users row last: its foreign
// keys cascade to devices, memberships (read state, roles), contacts in
// both directions and revoked devices [IM-8.3-5]. A table holding a user's
// personal data that is added later gets its statement here.
var DeleteUserRows = []string{
	`DELETE FROM inbox WHERE user_id = $1`,
	`DELETE FROM hidden WHERE user_id = $1`,
	`DELETE FROM conv_settings WHERE user_id = $1`,
	`DELETE FROM contacts WHERE owner_id = $1 OR peer_id = $1`,
	`DELETE FROM devices WHERE user_id = $1`,
	`DELETE FROM members WHERE user_id = $1`,
	`DELETE FROM revoked_devices WHERE user_id = $1`,
	`DELETE FROM push_devices WHERE user_id = $1`,
	`DELETE FROM push_outbox WHERE user_id = $1`,
	`DELETE FROM push_claims WHERE user_id = $1`,
	`DELETE FROM users WHERE id = $1`,
}

// NowMillis is the current time in unix milliseconds.
func NowMillis() int64 { return time.Now().UnixMilli() }

// KeepDeletedPeer names the peer of user's direct conversation c whose
// peer was deleted (its membership went with it) from the conversation id,
// so that the conversation keeps showing whom it was with [IM-8.3-5].
func KeepDeletedPeer(c *Conversation, user string) {
	if c.Kind != ConvDirect || c.Peer != "" {
		return
	}
	if a, b, ok := protocol.DirectPeers(c.Conv); ok {
		c.Peer = a
		if a == user {
			c.Peer = b
		}
	}
}

// UserColumns are the column names that name a user in the stores'
// tables. UserRows (both stores) counts the rows naming a user in every
// column so named, table by table, so that a table added later is walked
// too ([IM-8.3-5]; storetest's DeleteUser).
var UserColumns = []string{"user_id", "owner_id", "peer_id", "sender", "actor", "target"}

// UserRowCounter is implemented by the stores: per "table.column", the
// number of rows naming user (users.id and deleted_users.id included).
type UserRowCounter interface {
	UserRows(ctx context.Context, user string) (map[string]int64, error)
}

// WrapUserError wraps the error of an operation what on user; a refusal
// (*Error) already names the user.
func WrapUserError(what, user string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.As(err, new(*Error)):
		return fmt.Errorf("%s: %w", what, err)
	default:
		return fmt.Errorf("%s %q: %w", what, user, err)
	}
}
