package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/mqim/mqim/im"
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// Core is what the admin API asks of the IM core: the group methods, run
// as the operator [IM-8.3-9].
type Core interface {
	Call(sess *im.Session, method string, f protocol.Format, payload []byte, respond func(*protocol.Response))
}

// groupOps are the operator's group changes, by the last path segment.
var groupOps = map[string]string{
	"add": protocol.MethodGroupAdd, "remove": protocol.MethodGroupRemove, "role": protocol.MethodGroupRole,
	"transfer": protocol.MethodGroupTransfer, "mute": protocol.MethodGroupMute, "update": protocol.MethodGroupUpdate,
}

// groupRequest checks {gid} and returns the operator's session.
func (a *Admin) groupRequest(w http.ResponseWriter, r *http.Request, req request) (string, *im.Session, bool) {
	gid := r.PathValue("gid")
	if !protocol.IsGroupConv(gid) {
		Error(w, http.StatusBadRequest, protocol.CodeBadRequest, "invalid group id (g:…)")
		return "", nil, false
	}
	if a.cfg.Core == nil {
		Error(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "groups are not served by this listener")
		return "", nil, false
	}
	return gid, &im.Session{User: req.actor.Subject, Role: req.actor.Role, Format: protocol.JSON, Operator: true}, true
}

// call runs method as the operator and waits for its response. then, if
// set, is called with the response when it comes, even after the request
// has given up waiting: a change committed late is audited all the same.
func (a *Admin) call(req request, sess *im.Session, method string, params any, then func(*protocol.Response)) (*protocol.Response, error) {
	payload, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", method, err)
	}
	ch := make(chan *protocol.Response, 1)
	a.cfg.Core.Call(sess, method, protocol.JSON, payload, func(resp *protocol.Response) {
		if then != nil {
			then(resp)
		}
		ch <- resp
	})
	select {
	case resp := <-ch:
		return resp, nil
	case <-req.ctx.Done():
		return nil, req.ctx.Err()
	}
}

// answer writes the result of an operator's call.
func (a *Admin) answer(w http.ResponseWriter, resp *protocol.Response, err error) bool {
	switch {
	case err != nil:
		Error(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "no answer in time, retry")
	case !resp.OK:
		Error(w, Status(resp.Error.Code), resp.Error.Code, resp.Error.Message)
	default:
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(resp.Result)
		return true
	}
	return false
}

func (a *Admin) groupInfo(w http.ResponseWriter, r *http.Request, req request) {
	gid, sess, ok := a.groupRequest(w, r, req)
	if !ok {
		return
	}
	resp, err := a.call(req, sess, protocol.MethodGroupInfo, protocol.GroupRequest{Group: gid}, nil)
	a.answer(w, resp, err)
}

// changeGroup is POST /v1/admin/groups/{gid}/{op}: the group method of op
// with the body as its parameters, audited as group.changed.
func (a *Admin) changeGroup(w http.ResponseWriter, r *http.Request, req request) {
	gid, sess, ok := a.groupRequest(w, r, req)
	if !ok {
		return
	}
	op := r.PathValue("op")
	method, known := groupOps[op]
	if !known {
		Error(w, http.StatusNotFound, protocol.CodeBadRequest, "unknown group operation")
		return
	}
	var params protocol.GroupRequest
	if !readJSON(w, r, &params) {
		return
	}
	params.Group, params.Members = gid, nil
	audit := func(resp *protocol.Response) {
		if !resp.OK {
			return
		}
		// Who was acted on, never names or notices.
		users := append(params.Users, params.User)
		detail := fmt.Sprintf("op=%s users=%s", op, strings.Trim(strings.Join(users, ","), ","))
		if params.Role != "" {
			detail += " role=" + params.Role
		}
		if res, ok := resp.Result.(*protocol.GroupChangeResult); ok {
			detail += fmt.Sprintf(" conv_seq=%d", res.ConvSeq)
		}
		// Its own context: the request may have given up meanwhile.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.cfg.Accounts.Record(ctx, req.actor, store.AuditGroupChanged, gid, detail); err != nil {
			a.cfg.Log.Warn("audit of a group change failed", "group", gid, "actor", req.actor.Subject, "error", err)
		}
	}
	resp, err := a.call(req, sess, method, params, audit)
	a.answer(w, resp, err)
}
