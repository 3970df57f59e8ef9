package sdk

import (
	"context"

	"github.com/mqim/mqim/protocol"
)

// Wire types of the group RPCs [IM-11.4].
type (
	GroupRequest      = protocol.GroupRequest
	GroupChangeResult = protocol.GroupChangeResult
	GroupInfo         = protocol.GroupInfo
)

// CreateGroup creates a group with the user as owner and members besides,
// and returns its id in GroupChangeResult.Group [IM-11.4-1].
func (c *Client) CreateGroup(ctx context.Context, name string, members []string) (GroupChangeResult, error) {
	req := GroupRequest{Members: members}
	if name != "" {
		req.Name = &name
	}
	return c.ChangeGroup(ctx, protocol.MethodGroupCreate, req)
}

// AddToGroup adds users to a group (admins and the owner).
func (c *Client) AddToGroup(ctx context.Context, group string, users ...string) (GroupChangeResult, error) {
	return c.ChangeGroup(ctx, protocol.MethodGroupAdd, GroupRequest{Group: group, Users: users})
}

// RemoveFromGroup removes a member (admins and the owner).
func (c *Client) RemoveFromGroup(ctx context.Context, group, user string) (GroupChangeResult, error) {
	return c.ChangeGroup(ctx, protocol.MethodGroupRemove, GroupRequest{Group: group, User: user})
}

// LeaveGroup leaves a group.
func (c *Client) LeaveGroup(ctx context.Context, group string) (GroupChangeResult, error) {
	return c.ChangeGroup(ctx, protocol.MethodGroupLeave, GroupRequest{Group: group})
}

// ChangeGroup calls any group change method (protocol.MethodGroup…) with
// req: role, transfer, mute and update have no helper of their own. A
// repeated call after a lost response may answer bad_request (the change
// was made), as [IM-11.4-2] says.
func (c *Client) ChangeGroup(ctx context.Context, method string, req GroupRequest) (GroupChangeResult, error) {
	return call[GroupChangeResult](ctx, c, method, req)
}

// Group describes a group to one of its members [IM-11.4-1].
func (c *Client) Group(ctx context.Context, group string) (GroupInfo, error) {
	return call[GroupInfo](ctx, c, protocol.MethodGroupInfo, GroupRequest{Group: group})
}
