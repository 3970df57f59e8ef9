package store

import (
	"context"
	"slices"
)

// Push platforms [IM-17.1].
const (
	PlatformAPNs    = "apns"
	PlatformFCM     = "fcm"
	PlatformWebhook = "webhook"
)

// PushDevice is a device registered for offline push [IM-17.1], bound to
// its user and MQTT client id: one registration per (User, Client).
type PushDevice struct {
	User, Client string
	Platform     string // PlatformAPNs, PlatformFCM or PlatformWebhook
	Token        string // the provider's device token (or webhook address key)
	App          string // APNs topic (bundle id), FCM app id, webhook channel
	Env          string // APNs environment: "sandbox" or "production"
	Locale       string
	Created      int64 // unix ms
}

// Push candidate kinds, as the outbox stores them.
const (
	PushMessage  = 1 // a message in a direct conversation or a group that fans out on write
	PushMention  = 2 // a mention in a group that fans out on read
	PushEveryone = 3 // a "*" mention by an owner or admin in a group that fans out on read
	PushSystem   = 4 // a bridge's system notification [IM-4.6]
)

// PushCandidate is one row of the push outbox: a committed message that
// may notify User (written in the commit transaction, only for users with
// a registered push device). Its key is (User, Conv, ConvSeq).
type PushCandidate struct {
	User     string // "" with PushEveryone: every member but the sender (expanded by the store)
	Conv     string
	ConvSeq  int64
	InboxSeq int64 // the user's inbox event of the message; 0 if it has none
	Kind     int
	Sender   string
	TS       int64 // commit time, unix ms
}

// PushKey names a push job: a message for a user.
type PushKey struct {
	User    string
	Conv    string
	ConvSeq int64
}

// PushClaim is the push of a message to one device (its client id).
type PushClaim struct {
	Key    PushKey
	Client string
}

// PushFinish settles a claim: Sent keeps it, else it is released.
type PushFinish struct {
	PushClaim
	Sent bool
}

// PushRead asks what a push job needs to know of its user and message.
type PushRead struct {
	Key     PushKey
	Message bool // also the message at Key.ConvSeq (for the notification's text)
}

// PushInfo answers a PushRead. For a user with no registration only
// Devices (none) and Muted are read.
type PushInfo struct {
	Devices []PushDevice // the user's registrations, by client id (as PushDevices)
	Muted   bool         // the user's settings of the conversation say muted
	Unread  int64        // the user's unread count in the conversation
	Badge   int64        // the user's unread count over all conversations
	// Message is the message at Key.ConvSeq if it was asked for and the
	// user may read it (a member, not deleted for them); else nil.
	Message *Message
}

// PushWrites is one transaction of push's writes (PushWrite).
type PushWrites struct {
	// Dequeue deletes outbox rows (handed to the work queue).
	Dequeue []PushKey
	// Finish settles claims: sent (or given up) keeps one, so that it is
	// never sent again; not sent releases it for a retry.
	Finish []PushFinish
	// Claim claims pushes at Now (unix ms); a claim older than Lease ms
	// is taken over, once (see Claim, DecideClaim).
	Claim      []PushClaim
	Now, Lease int64
}

// Claim is the outcome of a claim (PushWrites.Claim).
type Claim int

const (
	ClaimNew      Claim = iota // first claim: send
	ClaimTakeOver              // an earlier claim ended inside the provider call (crash): send once more
	ClaimBusy                  // claimed by a live worker (lease not over): try later
	ClaimDone                  // sent already, or given up: do not send
)

// PushStore keeps push registrations, the outbox and the per-device claims
// that make a push go out once [IM-17].
type PushStore interface {
	// RegisterPush adds or replaces the registration of (d.User, d.Client).
	// A token registered by another client id or user moves to this one.
	// It fails with ErrPushLimit if the user would have more than max.
	RegisterPush(ctx context.Context, d PushDevice, max int) error
	// UnregisterPush removes (user, client)'s registration; false if none.
	UnregisterPush(ctx context.Context, user, client string) (bool, error)
	// PushDevices lists user's registrations, by client id.
	PushDevices(ctx context.Context, user string) ([]PushDevice, error)
	// RemovePushToken removes a token the provider refused as unknown.
	RemovePushToken(ctx context.Context, platform, token string) error
	// TakeOverClient removes the registrations of client that belong to
	// users other than user (a CONNECT by user with that client id) and
	// says how many.
	TakeOverClient(ctx context.Context, client, user string) (int, error)

	// PendingPush returns up to limit outbox rows, oldest first.
	PendingPush(ctx context.Context, limit int) ([]PushCandidate, error)
	// PushWrite applies w in one transaction: its outbox rows are deleted
	// (handed to the work queue), its settlements made, its claims decided
	// (at w.Now), in that order; it returns the outcome of each claim.
	// Push's writes of concurrent workers and the relay share it, so that
	// a push costs no write transaction (on SQLite: fsync) of its own.
	PushWrite(ctx context.Context, w PushWrites) ([]Claim, error)
	// PushReads reads what each job of rs needs to know, for many jobs at
	// once (one read transaction on SQLite, one round trip on PostgreSQL):
	// a push worker's reads batch as its claims do.
	PushReads(ctx context.Context, rs []PushRead) ([]PushInfo, error)
	// ForgetPush deletes claims older than before (unix ms).
	ForgetPush(ctx context.Context, before int64) error
}

// DecideClaim is the claim rule both stores apply to the existing claim of
// a (job, device): none (exists false) is new; a sent one is done; one
// claimed less than lease ago is busy (its worker is still in the provider
// call); an older one was cut off by a crash inside the provider call and
// is taken over, once (attempts counts the claims so far) [IM-17.4-3].
func DecideClaim(exists, sent bool, claimedAt, attempts, now, lease int64) Claim {
	switch {
	case !exists:
		return ClaimNew
	case sent:
		return ClaimDone
	case now-claimedAt < lease:
		return ClaimBusy
	case attempts >= 2:
		return ClaimDone
	}
	return ClaimTakeOver
}

// pushCandidates returns the outbox rows of a new message: one per inbox
// recipient other than the sender, plus, for a "*" mention by an owner or
// admin in a group that fans out on read (where "*" gives nobody an inbox
// row), one PushEveryone row the store expands to the members; a "*" by
// a plain member notifies nobody there [IM-17.2-4].
func pushCandidates(r *SendRequest, g *GroupState, m *Message, events []InboxEvent) []PushCandidate {
	kind := PushMessage
	switch {
	case r.System:
		kind = PushSystem
	case g != nil && g.Fanout != FanoutWrite:
		kind = PushMention
	}
	var out []PushCandidate
	for _, ev := range events {
		if ev.User == r.From {
			continue
		}
		out = append(out, PushCandidate{User: ev.User, Conv: m.Conv, ConvSeq: m.Seq, InboxSeq: ev.Seq, Kind: kind, Sender: r.From, TS: r.TS})
	}
	if g != nil && g.Fanout != FanoutWrite && slices.Contains(r.Mentions, "*") {
		if s, ok := g.Members[r.From]; ok && (s.Role == RoleOwner || s.Role == RoleAdmin) || r.System {
			out = append(out, PushCandidate{Conv: m.Conv, ConvSeq: m.Seq, Kind: PushEveryone, Sender: r.From, TS: r.TS})
		}
	}
	return out
}
