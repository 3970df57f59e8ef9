package store

import (
	"errors"
	"slices"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// team is a group of an owner, an admin and two members, one muted.
func team(fanout string) *GroupState {
	return &GroupState{LastSeq: 4, Fanout: fanout, Members: map[string]Member{
		"alice": {User: "alice", Role: RoleOwner},
		"bob":   {User: "bob", Role: RoleAdmin},
		"carol": {User: "carol", Role: RoleMember},
		"dave":  {User: "dave", Role: RoleMember, Muted: true},
	}}
}

func TestPlanGroupChangeRefusals(t *testing.T) {
	known := map[string]bool{"alice": true, "bob": true, "carol": true, "dave": true, "erin": true}
	ch := func(actor, op string, users ...string) GroupChange {
		return GroupChange{Group: "g:1", Actor: actor, Op: op, Users: users, Role: RoleAdmin, ID: 9, TS: 1}
	}
	name := "x"
	for _, c := range []struct {
		name string
		ch   GroupChange
		g    *GroupState
		want error
	}{
		{"no group", ch("alice", OpAdd, "erin"), nil, ErrNoGroup},
		{"actor not a member", ch("erin", OpLeave), team(FanoutWrite), ErrNotMember},
		{"add by a member", ch("carol", OpAdd, "erin"), team(FanoutWrite), ErrForbidden},
		{"add of members only", ch("alice", OpAdd, "bob"), team(FanoutWrite), ErrBadChange},
		{"add of an unknown user", ch("alice", OpAdd, "nobody"), team(FanoutWrite), ErrUnknownUser},
		{"remove by a member", ch("carol", OpRemove, "dave"), team(FanoutWrite), ErrForbidden},
		{"remove of oneself", ch("bob", OpRemove, "bob"), team(FanoutWrite), ErrBadChange},
		{"remove of a higher role", ch("bob", OpRemove, "alice"), team(FanoutWrite), ErrForbidden},
		{"remove of a non-member", ch("alice", OpRemove, "erin"), team(FanoutWrite), ErrBadChange},
		{"remove of two", ch("alice", OpRemove, "carol", "dave"), team(FanoutWrite), ErrBadChange},
		{"owner leaving", ch("alice", OpLeave), team(FanoutWrite), ErrBadChange},
		{"role by an admin", ch("bob", OpRole, "carol"), team(FanoutWrite), ErrForbidden},
		{"role owner", GroupChange{Group: "g:1", Actor: "alice", Op: OpRole, Users: []string{"carol"}, Role: RoleOwner}, team(FanoutWrite), ErrBadChange},
		{"transfer by an admin", ch("bob", OpTransfer, "carol"), team(FanoutWrite), ErrForbidden},
		{"mute by a member", ch("carol", OpMute, "dave"), team(FanoutWrite), ErrForbidden},
		{"mute of oneself", ch("bob", OpMute, "bob"), team(FanoutWrite), ErrBadChange},
		{"update by a member", GroupChange{Group: "g:1", Actor: "carol", Op: OpUpdate, Name: &name}, team(FanoutWrite), ErrForbidden},
		{"empty update", ch("alice", OpUpdate), team(FanoutWrite), ErrBadChange},
		{"unknown op", ch("alice", "explode"), team(FanoutWrite), ErrBadChange},
		{"create with an unknown user", ch("alice", OpCreate, "nobody"), nil, ErrUnknownUser},
		{"create by an unknown user", ch("nobody", OpCreate, "bob"), nil, ErrUnknownUser},
	} {
		p, err := PlanGroupChange(c.ch, c.g, known)
		var se *Error
		if !errors.Is(err, c.want) || !errors.As(err, &se) || se.Detail == "" || p != nil {
			t.Errorf("%s: %v (plan %v), want %v with a detail", c.name, err, p, c.want)
		}
	}
}

func TestPlanGroupChange(t *testing.T) {
	known := map[string]bool{"alice": true, "bob": true, "carol": true, "erin": true}
	body := func(p *GroupChangePlan) map[string]any {
		var b map[string]any
		if err := msgpack.Unmarshal(p.Msg.Body, &b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	t.Run("create", func(t *testing.T) {
		name := "team"
		p, err := PlanGroupChange(GroupChange{Group: "g:1", Actor: "alice", Op: OpCreate, Users: []string{"carol", "alice", "bob", "carol"},
			Name: &name, ID: 9, TS: 5}, nil, known)
		if err != nil {
			t.Fatal(err)
		}
		want := []Member{{User: "alice", Role: RoleOwner}, {User: "bob", Role: RoleMember}, {User: "carol", Role: RoleMember}}
		if !p.Create || !slices.Equal(p.New, want) || p.Msg.Seq != 1 || p.Msg.Cmid != EventCmid(9) || p.Msg.Type != TypeGroup ||
			!p.SenderRead || !slices.Equal(p.Recipients, []string{"alice", "bob", "carol"}) || p.Result.Fanout != FanoutWrite {
			t.Fatalf("plan %+v", p)
		}
		if b := body(p); b["op"] != OpCreate || b["name"] != "team" || b["fanout"] != FanoutWrite || len(b["users"].([]any)) != 2 {
			t.Fatalf("body %v", b)
		}
	})
	t.Run("add switches to read fan-out", func(t *testing.T) {
		p, err := PlanGroupChange(GroupChange{Group: "g:1", Actor: "bob", Op: OpAdd, Users: []string{"erin", "carol"}, Threshold: 4},
			team(FanoutWrite), known)
		if err != nil {
			t.Fatal(err)
		}
		// Still written to every member, and to the added: the switch is
		// at this event.
		if !p.Switch || p.Result.ReadFrom != 5 || p.Result.Fanout != FanoutRead || !p.Result.Broadcast ||
			!slices.Equal(p.Recipients, []string{"alice", "bob", "carol", "dave", "erin"}) ||
			!slices.Equal(p.New, []Member{{User: "erin", Role: RoleMember}}) {
			t.Fatalf("plan %+v", p)
		}
		if b := body(p); b["fanout"] != FanoutRead || b["read_from"] == nil {
			t.Fatalf("body %v", b)
		}
	})
	t.Run("remove in a read group", func(t *testing.T) {
		g := team(FanoutRead)
		g.ReadFrom = 2
		p, err := PlanGroupChange(GroupChange{Group: "g:1", Actor: "bob", Op: OpRemove, Users: []string{"dave"}}, g, known)
		if err != nil {
			t.Fatal(err)
		}
		if p.Switch || !slices.Equal(p.Removed, []string{"dave"}) || !slices.Equal(p.Recipients, []string{"dave"}) ||
			p.Result.ReadFrom != 2 || !slices.Equal(p.Result.Removed, []string{"dave"}) {
			t.Fatalf("plan %+v", p)
		}
	})
	t.Run("leave", func(t *testing.T) {
		p, err := PlanGroupChange(GroupChange{Group: "g:1", Actor: "carol", Op: OpLeave}, team(FanoutWrite), known)
		if err != nil || p.SenderRead || !slices.Equal(p.Removed, []string{"carol"}) {
			t.Fatalf("plan %+v, %v", p, err)
		}
	})
	t.Run("transfer", func(t *testing.T) {
		p, err := PlanGroupChange(GroupChange{Group: "g:1", Actor: "alice", Op: OpTransfer, Users: []string{"carol"}}, team(FanoutWrite), known)
		if err != nil || !slices.Equal(p.Roles, []Member{{User: "carol", Role: RoleOwner}, {User: "alice", Role: RoleAdmin}}) {
			t.Fatalf("plan %+v, %v", p, err)
		}
	})
	t.Run("mute", func(t *testing.T) {
		p, err := PlanGroupChange(GroupChange{Group: "g:1", Actor: "bob", Op: OpMute, Users: []string{"carol"}, Muted: true}, team(FanoutWrite), known)
		if err != nil || p.Mute == nil || *p.Mute != (Member{User: "carol", Muted: true}) || body(p)["muted"] != true {
			t.Fatalf("plan %+v, %v", p, err)
		}
	})
}

func TestChangeUsers(t *testing.T) {
	for _, c := range []struct {
		ch   GroupChange
		want []string
	}{
		{GroupChange{Op: OpCreate, Actor: "bob", Users: []string{"carol", "alice", "carol"}}, []string{"alice", "bob", "carol"}},
		{GroupChange{Op: OpAdd, Actor: "bob", Users: []string{"carol"}}, []string{"carol"}},
		{GroupChange{Op: OpRemove, Actor: "bob", Users: []string{"carol"}}, nil},
	} {
		if got := ChangeUsers(c.ch); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.ch.Op, got, c.want)
		}
	}
}

// The operator (the admin API) outranks the owner but is not a member: it
// may remove an admin, demote one, mute the owner and hand ownership on,
// never remove or demote the owner, create, leave, or act while a member.
func TestPlanGroupChangeOperator(t *testing.T) {
	known := map[string]bool{"alice": true, "bob": true, "carol": true, "dave": true, "erin": true}
	op := func(o string, users ...string) GroupChange {
		return GroupChange{Group: "g:1", Actor: "ops", Operator: true, Op: o, Users: users, Role: RoleMember, ID: 9, TS: 1}
	}
	for _, c := range []struct {
		name string
		ch   GroupChange
		want error
	}{
		{"remove the owner", op(OpRemove, "alice"), ErrBadChange},
		{"demote the owner", op(OpRole, "alice"), ErrBadChange},
		{"transfer to the owner", op(OpTransfer, "alice"), ErrBadChange},
		{"leave", op(OpLeave), ErrBadChange},
		{"create", op(OpCreate, "bob"), ErrBadChange},
		{"as a member", GroupChange{Group: "g:1", Actor: "carol", Operator: true, Op: OpRemove, Users: []string{"dave"}}, ErrBadChange},
	} {
		g := team(FanoutWrite)
		if c.ch.Op == OpCreate {
			g = nil
		}
		if p, err := PlanGroupChange(c.ch, g, known); !errors.Is(err, c.want) || p != nil {
			t.Errorf("%s: %v (plan %v), want %v", c.name, err, p, c.want)
		}
	}
	p, err := PlanGroupChange(op(OpRemove, "bob"), team(FanoutWrite), known)
	if err != nil || !slices.Equal(p.Removed, []string{"bob"}) || p.SenderRead || p.Msg.From != "ops" ||
		!slices.Equal(p.Recipients, []string{"alice", "bob", "carol", "dave"}) {
		t.Fatalf("remove an admin: %v, %+v", err, p)
	}
	if p, err = PlanGroupChange(op(OpMute, "alice"), team(FanoutWrite), known); err != nil || p.Mute == nil || p.Mute.User != "alice" {
		t.Fatalf("mute the owner: %v, %+v", err, p)
	}
	p, err = PlanGroupChange(op(OpTransfer, "carol"), team(FanoutWrite), known)
	want := []Member{{User: "carol", Role: RoleOwner}, {User: "alice", Role: RoleAdmin}}
	if err != nil || !slices.Equal(p.Roles, want) {
		t.Fatalf("transfer: %v, roles %+v, want %+v", err, p.Roles, want)
	}
	if p, err = PlanGroupChange(op(OpAdd, "erin"), team(FanoutWrite), known); err != nil || len(p.New) != 1 || p.New[0].User != "erin" {
		t.Fatalf("add: %v, %+v", err, p)
	}
}
