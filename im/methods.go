package im

import (
	"errors"

	"github.com/mqim/mqim/protocol"
)

// method is an entry of the method table: the one list of the RPC methods
// the server serves [IM-7.1-9]. Dispatch, the metrics label and the spec's
// method index (checked by TestMethodTableMatchesSpec) come from it; adding
// a method is an entry here, its handler and its store method.
type method struct {
	name string
	// ordered methods run on the committer, in one order with the sends
	// around them (their effects are events in inboxes); the others are
	// reads served concurrently.
	ordered bool
	serve   func(s *Service, c call)
}

var methodList = []method{
	{protocol.MethodSync, false, (*Service).syncRPC},
	{protocol.MethodHistory, false, (*Service).historyRPC},
	{protocol.MethodConversations, false, (*Service).conversationsRPC},
	{protocol.MethodRead, true, (*Service).readRPC},
	{protocol.MethodGroupCreate, true, (*Service).groupChange},
	{protocol.MethodGroupAdd, true, (*Service).groupChange},
	{protocol.MethodGroupRemove, true, (*Service).groupChange},
	{protocol.MethodGroupLeave, true, (*Service).groupChange},
	{protocol.MethodGroupRole, true, (*Service).groupChange},
	{protocol.MethodGroupTransfer, true, (*Service).groupChange},
	{protocol.MethodGroupMute, true, (*Service).groupChange},
	{protocol.MethodGroupUpdate, true, (*Service).groupChange},
	{protocol.MethodGroupInfo, false, (*Service).groupInfoRPC},
	{protocol.MethodContactAdd, true, (*Service).contactChange},
	{protocol.MethodContactRemove, true, (*Service).contactChange},
	{protocol.MethodContactBlock, true, (*Service).contactChange},
	{protocol.MethodContactUnblock, true, (*Service).contactChange},
	{protocol.MethodContactList, false, (*Service).contactList},
	{protocol.MethodRecall, true, (*Service).messageChange},
	{protocol.MethodEdit, true, (*Service).messageChange},
	{protocol.MethodDelete, true, (*Service).messageChange},
	{protocol.MethodSettings, true, (*Service).settings},
	{protocol.MethodPresence, false, (*Service).presence},
	{protocol.MethodPushRegister, false, (*Service).pushRPC},
	{protocol.MethodPushUnregister, false, (*Service).pushRPC},
	{protocol.MethodPushList, false, (*Service).pushRPC},
}

// methodTable indexes methodList by name.
var methodTable = func() map[string]method {
	t := make(map[string]method, len(methodList))
	for _, m := range methodList {
		if _, dup := t[m.name]; dup {
			panic("im: method " + m.name + " twice in the table")
		}
		t[m.name] = m
	}
	return t
}()

// call is one RPC request.
type call struct {
	sess    *Session
	method  string
	f       protocol.Format
	payload []byte
	reply   func(result any, err error) // once; err a *protocol.Error for errors the client sees
}

// Call serves the RPC method of sess with its encoded request [IM-7.1]:
// respond gets the response once, maybe on another goroutine, and must not
// block for long. The response carries the request's id [IM-7.1-2].
func (s *Service) Call(sess *Session, name string, f protocol.Format, payload []byte, respond func(*protocol.Response)) {
	m, known := methodTable[name]
	label := "unknown" // bounded: the metrics label of an unknown method
	if known {
		label = m.name
	}
	var env protocol.RequestEnvelope
	decodeErr := protocol.Decode(f, payload, &env)
	reply := func(result any, err error) {
		resp := &protocol.Response{ID: env.ID, OK: err == nil, Result: result}
		code := "ok"
		if err != nil {
			var pe *protocol.Error
			if !errors.As(err, &pe) {
				s.cfg.Log.Error("rpc failed", "method", label, "user", sess.User, "error", err)
				pe = protocol.Errorf(protocol.CodeInternal, "request failed")
			}
			resp.Result, resp.Error, code = nil, pe, pe.Code
		}
		s.m.rpcs.WithLabelValues(label, code).Inc()
		respond(resp)
	}
	limited := s.rpcLimit(sess) // every request counts, whatever its method
	switch {
	case limited != nil:
		reply(nil, limited) // [IM-1.3-6]
	case decodeErr != nil:
		reply(nil, decodeErr) // [IM-7.1-3]
	case len(env.ID) > 64:
		reply(nil, protocol.Errorf(protocol.CodeBadRequest, "id must be at most 64 bytes")) // [IM-1.3]
	case !known:
		reply(nil, protocol.Errorf(protocol.CodeUnknownMethod, "unknown method %q", name)) // [IM-7.1-7]
	case sess.Operator && !operatorMethods[name]:
		reply(nil, protocol.Errorf(protocol.CodeNotAuthorized, "the operator may not call %q", name))
	default:
		m.serve(s, call{sess: sess, method: name, f: f, payload: payload, reply: reply})
	}
}

// operatorMethods are what an operator session may call [IM-8.3-9].
var operatorMethods = map[string]bool{
	protocol.MethodGroupAdd: true, protocol.MethodGroupRemove: true, protocol.MethodGroupRole: true,
	protocol.MethodGroupTransfer: true, protocol.MethodGroupMute: true, protocol.MethodGroupUpdate: true,
	protocol.MethodGroupInfo: true,
}

// decode decodes c's request into v, answering c if it cannot.
func (c call) decode(v any) bool {
	if err := protocol.Decode(c.f, c.payload, v); err != nil {
		c.reply(nil, err)
		return false
	}
	return true
}

// refuse answers c with a client error.
func (c call) refuse(code, format string, args ...any) {
	c.reply(nil, protocol.Errorf(code, format, args...))
}
