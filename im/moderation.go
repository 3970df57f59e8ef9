package im

import (
	"context"
	"unicode/utf8"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// WordFilter is the sensitive-word filter of the policy stage [IM-18.1]
// (moderation.Words): Check returns text with the words of mask lists
// replaced, or refused when a word of a reject list occurs in it.
type WordFilter interface {
	Check(text string) (masked string, refused bool)
}

// BeforeSend is the before-send webhook [IM-18.2] (moderation.Webhook). An
// error means no verdict when the webhook fails closed; failing open, the
// implementation answers an allow instead.
type BeforeSend interface {
	BeforeSend(ctx context.Context, req *HookRequest) (HookVerdict, error)
}

// HookRequest is what the before-send webhook is asked about.
type HookRequest struct {
	Kind      string // HookSend, HookNotification or HookEdit
	From      string
	Client    string // the MQTT client id; "" over HTTP
	Cmid      string // sends and notifications
	To, Group string // sends and notifications: one of them
	MsgID     int64  // edits: the message edited
	Type      string // sends and notifications
	Body      map[string]any
	Mentions  []string
}

// Kinds of HookRequest.
const (
	HookSend         = "send"
	HookNotification = "notification"
	HookEdit         = "edit"
)

// HookVerdict is the webhook's answer: allow (the zero value), deny with a
// reason, or allow with the body replaced.
type HookVerdict struct {
	Deny   bool
	Reason string
	Body   map[string]any // non-nil: the body stored instead of the one sent
}

// filteredFields are the body fields the word filter reads [IM-18.1-1].
var filteredFields = [...]string{"text", "caption"}

// maxReason bounds the webhook's reason in the error a client gets.
const maxReason = 200

// moderationChecks are the policy checks of the configured moderation, in
// their order: the word filter, then the webhook.
func (s *Service) moderationChecks() []check {
	var cs []check
	if s.cfg.Words != nil {
		cs = append(cs, s.wordCheck)
	}
	if s.cfg.BeforeSend != nil {
		cs = append(cs, s.hookCheck)
	}
	return cs
}

// filterWords runs the word filter over body's filtered fields, masking in
// place; it reports whether it changed body.
func (s *Service) filterWords(body map[string]any) (bool, *protocol.Error) {
	changed := false
	for _, k := range filteredFields {
		v, ok := body[k].(string)
		if !ok {
			continue
		}
		out, refused := s.cfg.Words.Check(v)
		if refused {
			return false, protocol.Errorf(protocol.CodeContentRefused, "the %s contains a word that is not allowed", k)
		}
		if out != v {
			body[k], changed = out, true
		}
	}
	return changed, nil
}

// wordCheck is the word filter's check of a send [IM-18.1].
func (s *Service) wordCheck(_ context.Context, _ *Session, req *store.SendRequest) *protocol.Error {
	body, err := storedBody(req.Body)
	if err != nil {
		return err
	}
	changed, err := s.filterWords(body)
	if err != nil || !changed {
		return err
	}
	return s.rebody(req, body)
}

// hookCheck asks the before-send webhook about a send [IM-18.2].
func (s *Service) hookCheck(ctx context.Context, sess *Session, req *store.SendRequest) *protocol.Error {
	body, err := storedBody(req.Body)
	if err != nil {
		return err
	}
	kind := HookSend
	if req.System {
		kind = HookNotification
	}
	v, herr := s.askHook(ctx, &HookRequest{Kind: kind, From: req.From, Client: sess.Client, Cmid: req.Cmid, To: req.To,
		Group: req.Group, Type: req.Type, Body: body, Mentions: req.Mentions})
	if herr != nil || v.Body == nil {
		return herr
	}
	return s.rebody(req, v.Body)
}

// askHook calls the webhook and turns its verdict into a refusal or a
// replacement body. The caller holds a slot of hookSem.
func (s *Service) askHook(ctx context.Context, req *HookRequest) (HookVerdict, *protocol.Error) {
	v, err := s.cfg.BeforeSend.BeforeSend(ctx, req)
	switch {
	case err != nil:
		return v, protocol.Errorf(protocol.CodeUnavailable, "the before-send check is unavailable, retry")
	case v.Deny:
		reason := v.Reason
		if len(reason) > maxReason {
			reason = reason[:maxReason]
			for !utf8.ValidString(reason) {
				reason = reason[:len(reason)-1]
			}
		}
		if reason == "" {
			reason = "refused by the before-send check"
		}
		return v, protocol.Errorf(protocol.CodeContentRefused, "%s", reason)
	}
	return v, nil
}

// rebody validates a body a check changed — masked or replaced — as a
// send's body is [IM-4.2], [IM-12.1], and makes it the request's; the
// digest stays that of what the client sent, so that its retry is the same
// send [IM-4.5-2].
func (s *Service) rebody(req *store.SendRequest, body map[string]any) *protocol.Error {
	if req.Type != protocol.TypeSystem {
		if err := protocol.CheckBody(req.Type, body); err != nil {
			return err
		}
	}
	b, err := s.encodeBody(body)
	if err != nil {
		return err
	}
	req.Body = b
	return nil
}

// storedBody decodes a body as ValidateSend encoded it.
func storedBody(b []byte) (map[string]any, *protocol.Error) {
	var body map[string]any
	if err := protocol.Decode(protocol.MsgPack, b, &body); err != nil {
		return nil, protocol.Errorf(protocol.CodeInternal, "stored body does not decode: %v", err)
	}
	return body, nil
}

// moderateEdit runs the word filter over an edit's new body (masking in
// place) and, with a webhook, asks it off the caller's goroutine, in the
// session's arrival order (arrival.go); then it queues the edit with run,
// or answers the refusal [IM-18.3].
func (s *Service) moderateEdit(c call, req *protocol.MessageRequest, run func(ctx context.Context) (any, committed, error)) {
	if s.cfg.Words != nil {
		if _, err := s.filterWords(req.Body); err != nil {
			c.reply(nil, err)
			return
		}
	}
	o := &op{sess: c.sess, ordered: &orderedOp{run: run, reply: c.reply}}
	if s.cfg.BeforeSend == nil {
		s.enqueueInOrder(o)
		return
	}
	s.afterPolicy(c.sess, o, func(ctx context.Context) *protocol.Error {
		v, err := s.askHook(ctx, &HookRequest{Kind: HookEdit, From: c.sess.User, Client: c.sess.Client, MsgID: req.MsgID, Body: req.Body})
		if err != nil {
			c.reply(nil, err)
			return err
		}
		if v.Body != nil {
			req.Body = v.Body
		}
		return nil
	})
}

// sendAfterHook runs the policy of a send off the caller's goroutine, as
// the webhook needs, and queues it in the session's arrival order.
func (s *Service) sendAfterHook(sess *Session, req *store.SendRequest, done func(SendOutcome)) {
	s.afterPolicy(sess, &op{sess: sess, send: req, done: done}, func(ctx context.Context) *protocol.Error {
		err := s.policy(ctx, sess, req)
		if err != nil {
			s.m.sends.WithLabelValues(err.Code).Inc()
			done(SendOutcome{Cmid: req.Cmid, Err: err})
		}
		return err
	})
}

// hookSlot takes one of the node's webhook calls in flight for a caller
// that waits for the outcome (HTTP); nil release without a webhook.
func (s *Service) hookSlot(ctx context.Context) (release func(), err *protocol.Error) {
	if s.cfg.BeforeSend == nil {
		return func() {}, nil
	}
	select {
	case s.hookSem <- struct{}{}:
		return func() { <-s.hookSem }, nil
	case <-ctx.Done():
		return nil, protocol.Errorf(protocol.CodeUnavailable, "the before-send check is busy, retry")
	}
}
