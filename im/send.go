package im

import (
	"context"
	"crypto/sha256"
	"errors"
	"math"
	"time"
	"unicode/utf8"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/protocol/authtoken"
	"github.com/mqim/mqim/store"
)

// SendOutcome is the answer to a send.
type SendOutcome struct {
	Cmid string // the send's cmid, when it could be read (also on errors [IM-4.4-6])
	// The stored message, and the sender's inbox seq of it if any; set
	// unless Err is.
	Msg       *store.Message
	InboxSeq  int64
	Duplicate bool // a retry of a stored message [IM-4.5]
	Err       *protocol.Error
}

// Send takes an encoded send of sess [IM-4.1], validates it and queues it
// for the committer; done gets the outcome once, after the commit (or at
// once when the send is refused), and must not block. With the queue full,
// Send blocks: that is the back pressure on the caller.
func (s *Service) Send(sess *Session, f protocol.Format, payload []byte, done func(SendOutcome)) {
	s.send(sess, f, payload, false, done)
}

// Notify takes a bridge's system notification [IM-4.6]: a send of type
// system from the bridge's account, to a user or to a group (of which the
// bridge need not be a member [IM-4.6-5]), committed and delivered like any
// other message. Only bridge sessions may.
func (s *Service) Notify(sess *Session, f protocol.Format, payload []byte, done func(SendOutcome)) {
	if sess.Role != authtoken.RoleBridge {
		done(SendOutcome{Err: protocol.Errorf(protocol.CodeNotAuthorized, "only bridge accounts may publish to %q", protocol.SysNotifyTopic)})
		return
	}
	s.send(sess, f, payload, true, done)
}

func (s *Service) send(sess *Session, f protocol.Format, payload []byte, system bool, done func(SendOutcome)) {
	req, err := s.decodeSend(sess.User, f, payload, system)
	if err == nil && s.cfg.BeforeSend != nil {
		s.sendAfterHook(sess, &req, done) // a network call: off this goroutine, in order
		return
	}
	if err == nil {
		err = s.policy(context.Background(), sess, &req)
	}
	if err != nil {
		s.m.sends.WithLabelValues(err.Code).Inc()
		done(SendOutcome{Cmid: req.Cmid, Err: err})
		return
	}
	s.enqueue(&op{sess: sess, send: &req, done: done})
}

// Submit validates and commits a decoded send of sess — a notification
// posted over HTTP [IM-8.1-6] — through the committer, so that it is
// ordered, committed and delivered exactly like a publish, and waits for
// the outcome. If ctx ends first the send may still be committed; a retry
// with the same cmid finds it.
func (s *Service) Submit(ctx context.Context, sess *Session, req store.SendRequest) SendOutcome {
	release, err := s.hookSlot(ctx)
	if err == nil {
		err = s.policy(ctx, sess, &req)
		release()
	}
	if err != nil {
		return SendOutcome{Cmid: req.Cmid, Err: err}
	}
	ch := make(chan SendOutcome, 1)
	s.enqueue(&op{sess: sess, send: &req, done: func(o SendOutcome) { ch <- o }})
	select {
	case o := <-ch:
		return o
	case <-ctx.Done():
		return SendOutcome{Cmid: req.Cmid, Err: protocol.Errorf(protocol.CodeUnavailable, "not committed in time, retry with the same cmid")}
	}
}

// decodeSend decodes and validates a send. The returned request carries
// the cmid even on error, for the error event.
func (s *Service) decodeSend(user string, f protocol.Format, payload []byte, system bool) (store.SendRequest, *protocol.Error) {
	var msg protocol.Send
	if err := protocol.Decode(f, payload, &msg); err != nil {
		var pe *protocol.Error
		errors.As(err, &pe)
		// A field of the wrong type fails the whole decode; the error
		// event still names the cmid when it can be read [IM-4.4-6].
		var c struct {
			Cmid string `json:"cmid" msgpack:"cmid"`
		}
		if protocol.Decode(f, payload, &c) == nil && validCmid(c.Cmid) {
			return store.SendRequest{Cmid: c.Cmid}, pe
		}
		return store.SendRequest{}, pe
	}
	return s.ValidateSend(user, msg, system)
}

// ValidateSend validates a decoded send from user [IM-4.1], [IM-4.2], or
// with system a notification [IM-4.6], and turns it into the request the
// committer takes. MQTT sends and the HTTP API's notifications both come
// through here, so that they are refused alike. The returned request
// carries the cmid even on error, for the error event.
func (s *Service) ValidateSend(user string, msg protocol.Send, system bool) (store.SendRequest, *protocol.Error) {
	if system && msg.Type == "" {
		msg.Type = protocol.TypeSystem // [IM-4.6-2]
	}
	req := store.SendRequest{From: user, Cmid: msg.Cmid, To: msg.To, Group: msg.Group, Type: msg.Type, System: system}
	switch {
	case system && msg.Type != protocol.TypeSystem:
		return req, protocol.Errorf(protocol.CodeBadRequest, "a notification has type %q", protocol.TypeSystem)
	case !validCmid(msg.Cmid):
		return req, protocol.Errorf(protocol.CodeBadRequest, "cmid must be 1 to 64 printable characters")
	case msg.Group != "" && msg.To != "":
		return req, protocol.Errorf(protocol.CodeBadRequest, "a send has either to or group, not both") // [IM-11.5-1]
	case msg.Group != "" && !protocol.IsGroupConv(msg.Group):
		return req, protocol.Errorf(protocol.CodeBadRequest, "group must be a group id (g:…)")
	case msg.Group == "" && !protocol.ValidID(msg.To):
		return req, protocol.Errorf(protocol.CodeBadRequest, "to must be a user id")
	case msg.To == user:
		return req, protocol.Errorf(protocol.CodeBadRequest, "cannot send to yourself")
	case len(msg.Mentions) > 0 && msg.Group == "":
		return req, protocol.Errorf(protocol.CodeBadRequest, "mentions are for group messages")
	case len(msg.Mentions) > MaxMentions:
		return req, protocol.Errorf(protocol.CodeBadRequest, "at most %d mentions", MaxMentions)
	case msg.Body == nil:
		return req, protocol.Errorf(protocol.CodeBadRequest, "body must be an object")
	case msg.Type == "":
		return req, protocol.Errorf(protocol.CodeBadRequest, "type is required") // [IM-4.1-3]
	}
	if msg.Type == protocol.TypeSystem && !system {
		return req, protocol.Errorf(protocol.CodeUnknownType, "only bridges send %q messages, on %s", msg.Type, protocol.SysNotifyTopic)
	}
	for _, m := range msg.Mentions {
		if m != "*" && !protocol.ValidID(m) {
			return req, protocol.Errorf(protocol.CodeBadRequest, "mention %q is not a user id or \"*\"", m)
		}
	}
	if msg.Type != protocol.TypeSystem {
		if err := protocol.CheckBody(msg.Type, msg.Body); err != nil { // [IM-4.2], [IM-12.1]
			return req, err
		}
	}
	body, err := s.encodeBody(msg.Body)
	if err != nil {
		return req, err
	}
	req.Mentions = msg.Mentions
	target := msg.To
	if msg.Group != "" {
		target = msg.Group
	}
	req.Body, req.Digest = body, Digest(target, msg.Type, body, msg.Mentions)
	req.ID = s.cfg.IDs.Next()
	req.TS = time.Now().UnixMilli()
	return req, nil
}

// encodeBody checks a body that passed its type's rules, as sent or as
// edited [IM-4.2-4], [IM-14.2-1], and encodes it as stored.
func (s *Service) encodeBody(body map[string]any) ([]byte, *protocol.Error) {
	if err := checkBody(body, maxDepth); err != nil {
		return nil, err
	}
	b, err := protocol.Encode(protocol.MsgPack, body)
	if err != nil {
		return nil, protocol.Errorf(protocol.CodeBadPayload, "body cannot be encoded: %v", err)
	}
	if len(b) > s.cfg.MaxBody {
		return nil, protocol.Errorf(protocol.CodeTooLarge, "body is %d bytes, the limit is %d", len(b), s.cfg.MaxBody)
	}
	return b, nil
}

// Digest identifies what a send stores, so that a retry is told apart
// from a cmid reused for another message [IM-4.5-3], [IM-11.5-1]: its
// target (the user to, or the group), type, canonical body and mentions.
// A retry must repeat them all. It is taken over what the client sent.
func Digest(target, typ string, body []byte, mentions []string) []byte {
	d := sha256.New()
	for _, part := range [][]byte{[]byte(target), []byte(typ), body} {
		d.Write(part)
		d.Write([]byte{0})
	}
	for _, m := range mentions {
		d.Write([]byte(m))
		d.Write([]byte{1})
	}
	return d.Sum(nil)
}

// MaxMentions bounds the mentions of one message [IM-11.6-1].
const MaxMentions = 100

// maxDepth bounds body nesting [IM-4.2-4], so that no client's decoder
// hits its own recursion limit on a body the server accepted.
const maxDepth = 32

// checkBody refuses bodies that some devices could not read [IM-4.2-4]:
// nesting deeper than left levels, and NaN or infinite numbers, which
// MessagePack carries but JSON cannot.
func checkBody(v any, left int) *protocol.Error {
	if left < 0 {
		return protocol.Errorf(protocol.CodeBadRequest, "body nests deeper than %d levels", maxDepth)
	}
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			if err := checkBody(e, left-1); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range x {
			if err := checkBody(e, left-1); err != nil {
				return err
			}
		}
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return protocol.Errorf(protocol.CodeBadRequest, "body numbers must be finite")
		}
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return protocol.Errorf(protocol.CodeBadRequest, "body numbers must be finite")
		}
	}
	return nil
}

func validCmid(s string) bool {
	if s == "" || len(s) > 64 || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
