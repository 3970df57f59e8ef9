package ingest

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqim/mqim/hooks/device"
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// rpc serves a request on im/v1/u/{uid}/rpc/{method} [IM-7.1]. The PUBACK
// only says the request was received; the answer goes to the reply topic.
func (h *Hook) rpc(cl *mqtt.Client, dev *device.Device, s *slot, pk packets.Packet, method string) {
	f := protocol.Detect(pk.Payload, pk.Properties.ContentType)
	var env protocol.RequestEnvelope
	decodeErr := protocol.Decode(f, pk.Payload, &env)

	topic := pk.Properties.ResponseTopic
	if topic == "" {
		topic = env.ReplyTo
	}
	if topic == "" && protocol.ValidID(cl.ID) {
		topic = protocol.ReplyTopic(dev.User, cl.ID)
	}
	switch {
	case topic == "":
		err := protocol.Errorf(protocol.CodeBadRequest, "no reply topic: set Response Topic or reply_to")
		errors.As(decodeErr, &err) // an undecodable request is bad_payload [IM-7.1-3]
		h.fail(cl, s, "", err)
		return
	case !strings.HasPrefix(topic, protocol.ReplyPrefix(dev.User)) || topic == protocol.ReplyPrefix(dev.User) || strings.ContainsAny(topic, "+#"):
		h.fail(cl, s, "", protocol.Errorf(protocol.CodeNotAuthorized, "reply topic must be under %q", protocol.ReplyPrefix(dev.User)))
		return
	}
	h.ack(cl, s, nil)

	m, known := methodTable[method]
	r := &reply{h: h, cl: cl, dev: dev, method: method, label: "unknown", topic: topic, corr: pk.Properties.CorrelationData, id: env.ID}
	if known {
		r.label = m.name
	}
	if decodeErr != nil {
		r.send(nil, decodeErr)
		return
	}
	if len(env.ID) > 64 {
		r.send(nil, protocol.Errorf(protocol.CodeBadRequest, "id must be at most 64 bytes")) // [IM-1.3]
		return
	}
	if !known {
		r.send(nil, protocol.Errorf(protocol.CodeUnknownMethod, "unknown method %q", method)) // [IM-7.1-7]
		return
	}
	m.serve(h, call{cl: cl, dev: dev, r: r, f: f, payload: pk.Payload, method: method})
}

// reply is where one RPC's response goes.
type reply struct {
	h      *Hook
	cl     *mqtt.Client // the requester
	dev    *device.Device
	method string
	label  string // the metrics label: the method, or "unknown" (bounded)
	topic  string
	corr   []byte
	id     string
}

func (r *reply) send(result any, err error) {
	resp := protocol.Response{ID: r.id, OK: err == nil, Result: result}
	label := "ok"
	if err != nil {
		var pe *protocol.Error
		if !errors.As(err, &pe) {
			r.h.cfg.Log.Error("rpc failed", "method", r.method, "user", r.dev.User, "error", err)
			pe = protocol.Errorf(protocol.CodeInternal, "request failed")
		}
		resp.Result, resp.Error, label = nil, pe, pe.Code
	}
	r.h.m.rpcs.WithLabelValues(r.label, label).Inc()
	payload, e := protocol.Encode(r.dev.Format, &resp)
	if e != nil {
		r.h.cfg.Log.Error("encode rpc response", "method", r.method, "error", e)
		return
	}
	r.h.cfg.Respond.Respond(r.topic, r.corr, r.dev.Format, payload)
}

// Limits of group change requests [IM-11.4-1].
const (
	maxGroupUsers  = 1000 // users per create or add request
	maxGroupName   = 128
	maxGroupAvatar = 1024
	maxGroupNotice = 4096
)

// parseGroupChange decodes and validates a group change request
// [IM-11.4-1]; permissions are checked by the store, in the transaction.
func (h *Hook) parseGroupChange(user, method string, f protocol.Format, payload []byte) (store.GroupChange, error) {
	var req protocol.GroupRequest
	if err := protocol.Decode(f, payload, &req); err != nil {
		return store.GroupChange{}, err
	}
	badf := func(format string, args ...any) (store.GroupChange, error) {
		return store.GroupChange{}, protocol.Errorf(protocol.CodeBadRequest, format, args...)
	}
	c := store.GroupChange{Group: req.Group, Actor: user, Name: req.Name, Avatar: req.Avatar, Notice: req.Notice}
	if method == protocol.MethodGroupCreate {
		if req.Group != "" {
			return badf("group.create chooses the group id itself")
		}
		c.Group = protocol.GroupConv(strconv.FormatInt(h.cfg.IDs.Next(), 10))
	} else if !protocol.IsGroupConv(req.Group) {
		return badf("group must be a group id (g:…)")
	}
	for _, s := range []struct {
		v   *string
		max int
	}{{req.Name, maxGroupName}, {req.Avatar, maxGroupAvatar}, {req.Notice, maxGroupNotice}} {
		if s.v != nil && (len(*s.v) > s.max || !utf8.ValidString(*s.v)) {
			return badf("name, avatar and notice must be UTF-8 of at most %d, %d and %d bytes", maxGroupName, maxGroupAvatar, maxGroupNotice)
		}
	}
	users := func(us []string) ([]string, error) {
		if len(us) > maxGroupUsers {
			return nil, protocol.Errorf(protocol.CodeBadRequest, "at most %d users per request", maxGroupUsers)
		}
		for _, u := range us {
			if !protocol.ValidID(u) {
				return nil, protocol.Errorf(protocol.CodeBadRequest, "%q is not a user id", u)
			}
		}
		return us, nil
	}
	one := func() ([]string, error) {
		if !protocol.ValidID(req.User) {
			return nil, protocol.Errorf(protocol.CodeBadRequest, "%s needs user, a user id", method)
		}
		return []string{req.User}, nil
	}
	var err error
	switch method {
	case protocol.MethodGroupCreate:
		c.Op = store.OpCreate
		c.Users, err = users(req.Members)
	case protocol.MethodGroupAdd:
		c.Op = store.OpAdd
		if len(req.Users) == 0 {
			return badf("group.add needs users")
		}
		c.Users, err = users(req.Users)
	case protocol.MethodGroupRemove:
		c.Op = store.OpRemove
		c.Users, err = one()
	case protocol.MethodGroupLeave:
		c.Op = store.OpLeave
	case protocol.MethodGroupRole:
		c.Op, c.Role = store.OpRole, req.Role
		if req.Role != store.RoleAdmin && req.Role != store.RoleMember {
			return badf("role must be admin or member")
		}
		c.Users, err = one()
	case protocol.MethodGroupTransfer:
		c.Op = store.OpTransfer
		c.Users, err = one()
	case protocol.MethodGroupMute:
		c.Op, c.Muted = store.OpMute, req.Muted == nil || *req.Muted
		c.Users, err = one()
	case protocol.MethodGroupUpdate:
		c.Op = store.OpUpdate
		if req.Name == nil && req.Avatar == nil && req.Notice == nil {
			return badf("group.update needs name, avatar or notice")
		}
	}
	if err != nil {
		return store.GroupChange{}, err
	}
	return c, nil
}

// maxReads bounds a batched read [IM-7.6-4].
const maxReads = 100

// readItems validates a read request [IM-7.6-3] and returns its items,
// coalesced: one per conversation, with the highest seq asked, in the order
// of first appearance [IM-7.6-4].
func readItems(user string, req protocol.ReadRequest) ([]protocol.ReadItem, *protocol.Error) {
	items := req.Reads
	switch {
	case len(items) > 0 && (req.Conv != "" || req.Seq != 0):
		return nil, protocol.Errorf(protocol.CodeBadRequest, "read takes conv and seq, or reads, not both")
	case len(items) > maxReads:
		return nil, protocol.Errorf(protocol.CodeBadRequest, "at most %d reads per request", maxReads)
	case len(items) == 0:
		items = []protocol.ReadItem{{Conv: req.Conv, Seq: req.Seq}}
	}
	var out []protocol.ReadItem
	at := make(map[string]int, len(items))
	for _, it := range items {
		a, b, direct := protocol.DirectPeers(it.Conv)
		if !direct && !protocol.IsGroupConv(it.Conv) || it.Seq < 0 {
			return nil, protocol.Errorf(protocol.CodeBadRequest, "read needs a conversation id and a seq >= 0")
		}
		if direct && a != user && b != user {
			return nil, protocol.Errorf(protocol.CodeNotMember, "not a member of %q", it.Conv)
		}
		if i, ok := at[it.Conv]; ok {
			out[i].Seq = max(out[i].Seq, it.Seq)
			continue
		}
		at[it.Conv] = len(out)
		out = append(out, it)
	}
	return out, nil
}
