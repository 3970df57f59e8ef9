package ingest

import (
	"context"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/mqim/mqim/hooks/device"
	"github.com/mqim/mqim/protocol"
)

// call is one RPC request, once its reply topic is known.
type call struct {
	cl      *mqtt.Client
	dev     *device.Device
	r       *reply
	f       protocol.Format
	payload []byte
	method  string
}

// rpcMethod is an entry of the method table: the one list of the RPC
// methods the server serves [IM-7.1-9]. Dispatch, the metrics label and the
// spec's method index (checked by TestMethodTableMatchesSpec) come from it;
// adding a method is an entry here, its handler and its store method.
type rpcMethod struct {
	name string
	// ordered methods run on the committer, in one order with the sends
	// around them (their effects are events in inboxes); the others are
	// reads served concurrently.
	ordered bool
	serve   func(h *Hook, c call)
}

var methodList = []rpcMethod{
	{protocol.MethodSync, false, read((Handler).Sync)},
	{protocol.MethodHistory, false, read((Handler).History)},
	{protocol.MethodConversations, false, read((Handler).Conversations)},
	{protocol.MethodRead, true, (*Hook).readRPC},
	{protocol.MethodGroupCreate, true, (*Hook).groupChange},
	{protocol.MethodGroupAdd, true, (*Hook).groupChange},
	{protocol.MethodGroupRemove, true, (*Hook).groupChange},
	{protocol.MethodGroupLeave, true, (*Hook).groupChange},
	{protocol.MethodGroupRole, true, (*Hook).groupChange},
	{protocol.MethodGroupTransfer, true, (*Hook).groupChange},
	{protocol.MethodGroupMute, true, (*Hook).groupChange},
	{protocol.MethodGroupUpdate, true, (*Hook).groupChange},
	{protocol.MethodGroupInfo, false, read((Handler).GroupInfo)},
	{protocol.MethodContactAdd, true, (*Hook).contactChange},
	{protocol.MethodContactRemove, true, (*Hook).contactChange},
	{protocol.MethodContactBlock, true, (*Hook).contactChange},
	{protocol.MethodContactUnblock, true, (*Hook).contactChange},
	{protocol.MethodContactList, false, (*Hook).contactList},
	{protocol.MethodRecall, true, (*Hook).messageRPC},
	{protocol.MethodEdit, true, (*Hook).messageRPC},
	{protocol.MethodDelete, true, (*Hook).messageRPC},
	{protocol.MethodSettings, true, (*Hook).settings},
	{protocol.MethodPresence, false, (*Hook).presence},
	{protocol.MethodPushRegister, false, (*Hook).pushRPC},
	{protocol.MethodPushUnregister, false, (*Hook).pushRPC},
	{protocol.MethodPushList, false, (*Hook).pushRPC},
}

// methodTable indexes methodList by name.
var methodTable = func() map[string]rpcMethod {
	t := make(map[string]rpcMethod, len(methodList))
	for _, m := range methodList {
		if _, dup := t[m.name]; dup {
			panic("ingest: method " + m.name + " twice in the table")
		}
		t[m.name] = m
	}
	return t
}()

// read adapts a read-only method of the Handler (sync/catchup): served on
// the RPC goroutines, bounded by RPCWorkers.
func read(f func(Handler, context.Context, string, protocol.Format, []byte) (any, error)) func(*Hook, call) {
	return func(h *Hook, c call) {
		h.async(c.r, func(ctx context.Context) (any, error) {
			return f(h.cfg.RPC, ctx, c.dev.User, c.f, c.payload)
		})
	}
}

// readRPC serves read [IM-7.6] on the committer.
func (h *Hook) readRPC(c call) {
	var req protocol.ReadRequest
	if err := protocol.Decode(c.f, c.payload, &req); err != nil {
		c.r.send(nil, err)
		return
	}
	items, err := readItems(c.dev.User, req)
	if err != nil {
		c.r.send(nil, err)
		return
	}
	h.enqueue(&op{cl: c.cl, read: &readOp{user: c.dev.User, items: items, batch: len(req.Reads) > 0, reply: c.r.send}})
}

// groupChange serves the group methods that change a group [IM-11.4] on
// the committer.
func (h *Hook) groupChange(c call) {
	ch, err := h.parseGroupChange(c.dev.User, c.method, c.f, c.payload)
	if err != nil {
		c.r.send(nil, err)
		return
	}
	h.enqueue(&op{cl: c.cl, change: &changeOp{change: ch, reply: c.r.send}})
}
