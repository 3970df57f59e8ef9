package ingest

import (
	"context"
	"errors"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqim/mqim/hooks/device"
	"github.com/mqim/mqim/protocol"
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

	r := &reply{h: h, dev: dev, method: method, topic: topic, corr: pk.Properties.CorrelationData, id: env.ID}
	if decodeErr != nil {
		r.send(nil, decodeErr)
		return
	}
	if len(env.ID) > 64 {
		r.send(nil, protocol.Errorf(protocol.CodeBadRequest, "id must be at most 64 bytes")) // [IM-1.3]
		return
	}
	if h.extRPC(cl, dev, r, f, pk.Payload, method) { // ext.go
		return
	}
	if method == protocol.MethodRead {
		var req protocol.ReadRequest
		if err := protocol.Decode(f, pk.Payload, &req); err != nil {
			r.send(nil, err)
			return
		}
		a, b, direct := protocol.DirectPeers(req.Conv)
		if !direct || req.Seq < 0 {
			r.send(nil, protocol.Errorf(protocol.CodeBadRequest, "read needs a conversation id and a seq >= 0"))
			return
		}
		if a != dev.User && b != dev.User {
			r.send(nil, protocol.Errorf(protocol.CodeNotMember, "not a member of %q", req.Conv))
			return
		}
		h.enqueue(&op{cl: cl, read: &readOp{user: dev.User, req: req, reply: r.send}})
		return
	}
	select {
	case h.rpcSem <- struct{}{}:
	default:
		r.send(nil, protocol.Errorf(protocol.CodeOverloaded, "too many requests in flight, retry later"))
		return
	}
	h.spawn(func() {
		defer func() { <-h.rpcSem }()
		ctx, cancel := context.WithTimeout(context.Background(), h.cfg.Timeout)
		defer cancel()
		r.send(h.cfg.RPC.Handle(ctx, dev.User, method, f, pk.Payload))
	})
}

// reply is where one RPC's response goes.
type reply struct {
	h      *Hook
	dev    *device.Device
	method string
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
	r.h.m.rpcs.WithLabelValues(metricMethod(r.method), label).Inc()
	payload, e := protocol.Encode(r.dev.Format, &resp)
	if e != nil {
		r.h.cfg.Log.Error("encode rpc response", "method", r.method, "error", e)
		return
	}
	r.h.cfg.Respond.Respond(r.topic, r.corr, r.dev.Format, payload)
}

// metricMethod bounds the label values to the known methods.
func metricMethod(m string) string {
	switch m {
	case protocol.MethodSync, protocol.MethodHistory, protocol.MethodConversations, protocol.MethodRead:
		return m
	}
	return "other"
}
