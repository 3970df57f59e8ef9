package store

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/mqim/mqim/protocol"
)

// The rules of ChangeGroup [IM-11.4], shared by the implementations: they
// read the group (GroupState, all members) and the users ChangeUsers
// names, call PlanGroupChange, and write the plan.

// EventCmid is the cmid stored with a group event: it starts with a byte
// no device cmid may hold [IM-3.3-5], so it never collides with one. Wire
// hides it.
func EventCmid(id int64) string { return "\x1f" + strconv.FormatInt(id, 10) }

// ChangeUsers returns the users whose existence the change's rules ask
// about (PlanGroupChange's known): the actor and the users of OpCreate,
// the users of OpAdd.
func ChangeUsers(ch GroupChange) []string {
	var us []string
	switch ch.Op {
	case OpCreate:
		us = append([]string{ch.Actor}, ch.Users...)
	case OpAdd:
		us = slices.Clone(ch.Users)
	}
	slices.Sort(us)
	return slices.Compact(us)
}

// GroupChangePlan is what a group change writes.
type GroupChangePlan struct {
	// Create says to create the group (its conversation and groups rows,
	// with Name, Avatar, Notice of the change).
	Create bool
	// New are the members to insert, with their roles.
	New []Member
	// Removed are the members to delete (at most one).
	Removed []string
	// Roles are members whose role changes to Role.
	Roles []Member
	// Mute is the member whose Muted flag changes, if any.
	Mute *Member
	// Update says to set the change's non-nil Name, Avatar, Notice.
	Update bool
	// Switch says the group fans out on read from this event on
	// (Result.ReadFrom).
	Switch bool
	// Msg is the event in the group's timeline, its seq the group's last
	// seq plus one, stored with Digest.
	Msg    Message
	Digest []byte
	// SenderRead says the actor has read up to the event (unless it left).
	SenderRead bool
	// Recipients get an inbox row of the event, sorted [IM-11.3-3].
	Recipients []string
	// Result is the change's result but for Events.
	Result GroupResult
}

// roleOperator is the rank of an operator's change (GroupChange.Operator);
// never stored.
const roleOperator = "operator"

func isMember(all map[string]Member, u string) bool { _, ok := all[u]; return ok }

// rank orders roles; 0 is no role.
func rank(role string) int {
	switch role {
	case roleOperator:
		return 4
	case RoleOwner:
		return 3
	case RoleAdmin:
		return 2
	case RoleMember:
		return 1
	}
	return 0
}

func bad(format string, args ...any) error { return Refuse(ErrBadChange, format, args...) }

// PlanGroupChange decides the change ch of group g (nil: it does not exist;
// ignored for OpCreate) with every member in g.Members, and known saying
// which users of ChangeUsers(ch) exist [IM-11.4]. A refusal is
// ErrNoGroup, ErrNotMember, ErrForbidden, ErrUnknownUser or ErrBadChange.
func PlanGroupChange(ch GroupChange, g *GroupState, known map[string]bool) (*GroupChangePlan, error) {
	threshold := ch.Threshold
	if threshold <= 0 {
		threshold = DefaultReadFanout
	}
	users := slices.Clone(ch.Users)
	slices.Sort(users)
	users = slices.Compact(users)

	p := &GroupChangePlan{}
	var (
		all   map[string]Member // every member before the change
		count int               // members after the change
		added []string
		body  = map[string]any{"op": ch.Op}
	)
	if ch.Op == OpCreate && ch.Operator {
		return nil, bad("the operator does not create groups")
	}
	if ch.Op == OpCreate {
		users = slices.DeleteFunc(users, func(u string) bool { return u == ch.Actor })
		for _, u := range append([]string{ch.Actor}, users...) {
			if !known[u] {
				return nil, UnknownUserError(u)
			}
		}
		p.Create = true
		g = &GroupState{Fanout: FanoutWrite}
		all = map[string]Member{}
		added = append([]string{ch.Actor}, users...)
		p.New = append(p.New, Member{User: ch.Actor, Role: RoleOwner})
		for _, u := range users {
			p.New = append(p.New, Member{User: u, Role: RoleMember})
		}
		count = len(added)
		body["users"] = users
		setInfo(body, ch)
	} else {
		if g == nil {
			return nil, NoGroupError(ch.Group)
		}
		all = g.Members
		actor, ok := all[ch.Actor]
		if ch.Operator {
			if ch.Op == OpLeave {
				return nil, bad("the operator is not a member and cannot leave")
			}
			actor, ok = Member{User: ch.Actor, Role: roleOperator}, !isMember(all, ch.Actor)
			if !ok {
				return nil, bad("%q is a member of %q: act as the member, not as the operator", ch.Actor, ch.Group)
			}
		}
		if !ok {
			return nil, NotMemberError(ch.Actor, ch.Group)
		}
		count = len(all)
		var err error
		if added, err = planOp(p, ch, users, all, actor, known, body); err != nil {
			return nil, err
		}
		count += len(added) - len(p.Removed)
	}

	// The model: a group above the threshold fans out on read from this
	// event on, and stays there [IM-11.3-2].
	before := g.Fanout
	seq := g.LastSeq + 1
	res := GroupResult{Fanout: g.Fanout, ReadFrom: g.ReadFrom}
	if before == FanoutWrite && count > threshold {
		p.Switch = true
		res.Fanout, res.ReadFrom = FanoutRead, seq
	}
	body["fanout"] = res.Fanout
	if res.Fanout == FanoutRead {
		body["read_from"] = res.ReadFrom
	}
	enc, err := protocol.Encode(protocol.MsgPack, body)
	if err != nil {
		return nil, fmt.Errorf("encode group event: %w", err)
	}
	sum := sha256.Sum256(enc)
	res.Msg = Message{ID: ch.ID, Conv: ch.Group, Seq: seq, From: ch.Actor, Cmid: EventCmid(ch.ID),
		Type: TypeGroup, Body: enc, TS: ch.TS}
	p.Msg, p.Digest = res.Msg, sum[:]
	p.SenderRead = !ch.Operator && !slices.Contains(p.Removed, ch.Actor)

	// Who gets an inbox row [IM-11.3-3]: while the group fanned out on
	// write (this event included, when it switches the model), every
	// member and every removed user; afterwards only the added and removed
	// users, who are not (or no longer) reading the group topic.
	recipients := make(map[string]bool)
	for _, u := range added {
		recipients[u] = true
	}
	for _, u := range p.Removed {
		recipients[u] = true
	}
	if before == FanoutWrite {
		for u := range all {
			recipients[u] = true
		}
	}
	p.Recipients = slices.Sorted(maps.Keys(recipients))
	res.Broadcast = res.Fanout == FanoutRead
	res.Removed = p.Removed
	p.Result = res
	return p, nil
}

// planOp decides an operation on an existing group and returns the users
// it adds.
func planOp(p *GroupChangePlan, ch GroupChange, users []string, all map[string]Member, actor Member,
	known map[string]bool, body map[string]any,
) (added []string, err error) {
	admin := rank(actor.Role) >= rank(RoleAdmin)
	forbidden := func(what string) error {
		return Refuse(ErrForbidden, "%s of %q may not %s", article(actor.Role), ch.Group, what)
	}
	// target checks that the one user named is a member below the actor.
	target := func() (string, error) {
		if len(users) != 1 {
			return "", bad("%s needs exactly one user", ch.Op)
		}
		u := users[0]
		m, ok := all[u]
		switch {
		case u == ch.Actor:
			return "", bad("%s cannot target oneself", ch.Op)
		case !ok:
			return "", bad("%q is not a member", u)
		case rank(m.Role) >= rank(actor.Role):
			return "", forbidden(ch.Op + " " + article(m.Role)) // remove or mute: role and transfer are the owner's
		case m.Role == RoleOwner && (ch.Op == OpRemove || ch.Op == OpRole || ch.Op == OpTransfer):
			// Only the operator outranks the owner; a group keeps one.
			return "", bad("the owner cannot be removed or demoted: transfer ownership first")
		}
		return u, nil
	}
	needAdmin := map[string]bool{OpAdd: true, OpRemove: true, OpMute: true, OpUpdate: true}
	needOwner := map[string]bool{OpRole: true, OpTransfer: true}
	switch {
	case needAdmin[ch.Op] && !admin, needOwner[ch.Op] && rank(actor.Role) < rank(RoleOwner):
		return nil, forbidden(map[string]string{OpAdd: "add members", OpRemove: "remove members", OpMute: "mute members",
			OpUpdate: "update the group", OpRole: "change roles", OpTransfer: "transfer ownership"}[ch.Op])
	}
	switch ch.Op {
	case OpAdd:
		for _, u := range users {
			if _, ok := all[u]; !ok {
				added = append(added, u)
			}
		}
		if len(added) == 0 {
			return nil, bad("every user is a member already")
		}
		for _, u := range added {
			if !known[u] {
				return nil, UnknownUserError(u)
			}
			p.New = append(p.New, Member{User: u, Role: RoleMember})
		}
		body["users"] = added
	case OpRemove:
		u, err := target()
		if err != nil {
			return nil, err
		}
		p.Removed = []string{u}
		body["users"] = p.Removed
	case OpLeave:
		if actor.Role == RoleOwner {
			return nil, bad("the owner must transfer ownership before leaving")
		}
		p.Removed = []string{ch.Actor}
	case OpRole:
		if ch.Role != RoleAdmin && ch.Role != RoleMember {
			return nil, bad("role must be admin or member")
		}
		u, err := target()
		if err != nil {
			return nil, err
		}
		p.Roles = []Member{{User: u, Role: ch.Role}}
		body["users"], body["role"] = []string{u}, ch.Role
	case OpTransfer:
		u, err := target()
		if err != nil {
			return nil, err
		}
		owner := ch.Actor
		if ch.Operator {
			for _, m := range all {
				if m.Role == RoleOwner {
					owner = m.User
				}
			}
		}
		p.Roles = []Member{{User: u, Role: RoleOwner}}
		if owner != ch.Actor || !ch.Operator {
			p.Roles = append(p.Roles, Member{User: owner, Role: RoleAdmin})
		}
		body["users"] = []string{u}
	case OpMute:
		u, err := target()
		if err != nil {
			return nil, err
		}
		p.Mute = &Member{User: u, Muted: ch.Muted}
		body["users"], body["muted"] = []string{u}, ch.Muted
	case OpUpdate:
		if ch.Name == nil && ch.Avatar == nil && ch.Notice == nil {
			return nil, bad("update needs name, avatar or notice")
		}
		p.Update = true
		setInfo(body, ch)
	default:
		return nil, bad("unknown operation %q", ch.Op)
	}
	return added, nil
}

// article names a role for people: "the owner", "an admin", "a member".
func article(role string) string {
	switch role {
	case roleOperator:
		return "the operator"
	case RoleOwner:
		return "the owner"
	case RoleAdmin:
		return "an admin"
	}
	return "a " + role
}

func setInfo(body map[string]any, ch GroupChange) {
	if ch.Name != nil {
		body["name"] = *ch.Name
	}
	if ch.Avatar != nil {
		body["avatar"] = *ch.Avatar
	}
	if ch.Notice != nil {
		body["notice"] = *ch.Notice
	}
}

// Deref is a setting of a change as stored: nil is empty.
func Deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
