package sdk

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/mqim/mqim/protocol"
)

// groupTopicPrefix is the prefix of every group topic [IM-2.1-5].
const groupTopicPrefix = "im/v1/g/"

// historyPage is the limit of each history request of a follower.
const historyPage = 200

// follower follows the topic of one read-fan-out group [IM-11.3-5]: it
// owns the group cursor, applies live events by conv seq, and pulls
// history after the cursor when it (re)subscribes and on a gap.
type follower struct {
	c      *Client
	group  string
	topic  string
	cursor int64
	held   map[int64]Event
	in     inbox
	out    chan Event
	up     chan struct{} // cap 1: subscribed on a new connection
	gone   chan struct{} // closed when a resubscription is refused
	goneMu sync.Once
}

// FollowGroup follows a group that fans out on read [IM-11.3]: the
// returned channel gets the group's events (kind message, no inbox seq)
// with conv seq above after, in conv seq order, each once: messages, group
// events (type group) and the recalls and edits of earlier messages (type
// recall or edit, read with ChangeOf) [IM-14.4-3]. The client
// subscribes to the group topic on every connection and pulls history
// after its group cursor on each (re)connect and on a gap, as [IM-11.3-5]
// asks. after is the device's group cursor: the read_from of the group's
// switch event (which arrives on the inbox) for a device that had every
// earlier event, 0 for everything.
//
// The channel is closed when ctx ends or the client closes. If the user is
// not (or no longer) a member, the last event before the close is of kind
// error with code not_member. One group can be followed once at a time.
func (c *Client) FollowGroup(ctx context.Context, group string, after int64) (<-chan Event, error) {
	if !protocol.IsGroupConv(group) || after < 0 {
		return nil, &Error{Code: protocol.CodeBadRequest, Message: "FollowGroup needs a group id (g:…) and after >= 0"}
	}
	f := &follower{c: c, group: group, topic: protocol.GroupTopic(group), cursor: after,
		held: make(map[int64]Event), out: make(chan Event), up: make(chan struct{}, 1), gone: make(chan struct{})}
	f.in.notify = make(chan struct{}, 1)
	c.fmu.Lock()
	if c.follow == nil {
		c.follow = make(map[string]*follower)
	}
	if _, dup := c.follow[f.topic]; dup {
		c.fmu.Unlock()
		return nil, fmt.Errorf("mqim: already following %s", group)
	}
	c.follow[f.topic] = f
	c.fmu.Unlock()
	// On the current connection here; setup subscribes on later ones.
	if err := c.subscribeGroups(ctx, []*follower{f}); err != nil {
		c.unfollow(f)
		return nil, err
	}
	c.goRun(func() { f.run(ctx) })
	return f.out, nil
}

func (c *Client) unfollow(f *follower) {
	c.fmu.Lock()
	if c.follow[f.topic] == f {
		delete(c.follow, f.topic)
	}
	c.fmu.Unlock()
}

func (c *Client) followers() []*follower {
	c.fmu.Lock()
	defer c.fmu.Unlock()
	fs := make([]*follower, 0, len(c.follow))
	for _, f := range c.follow {
		fs = append(fs, f)
	}
	return fs
}

// subscribeGroups subscribes the current connection to the topics of fs
// and tells each follower to pull. A refused topic (not a member,
// [IM-2.2-4]) ends its follower; for a single follower it is the error.
func (c *Client) subscribeGroups(ctx context.Context, fs []*follower) error {
	if len(fs) == 0 {
		return nil
	}
	subs := make([]paho.SubscribeOptions, len(fs))
	for i, f := range fs {
		subs[i] = paho.SubscribeOptions{Topic: f.topic, QoS: 1}
	}
	sctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	if _, err := c.awaitConn(sctx); err != nil {
		return fmt.Errorf("mqim: follow: %w", err)
	}
	sa, err := c.cm.Subscribe(sctx, &paho.Subscribe{Subscriptions: subs})
	if err != nil && (sa == nil || len(sa.Reasons) != len(subs)) {
		// paho also fails a SUBACK with refusals: those are read below.
		return fmt.Errorf("mqim: follow: %w", err)
	}
	var refused error
	for i, f := range fs {
		if i < len(sa.Reasons) && sa.Reasons[i] >= 0x80 {
			refused = &Error{Code: protocol.CodeNotMember, Reason: sa.Reasons[i], Message: "subscription to " + f.topic + " refused"}
			f.goneMu.Do(func() { close(f.gone) })
			continue
		}
		select {
		case f.up <- struct{}{}:
		default:
		}
	}
	if len(fs) == 1 {
		return refused
	}
	return nil
}

// onGroupPublish queues an event of a followed group topic. It runs on
// paho's goroutine and must not block.
func (c *Client) onGroupPublish(p *paho.Publish) {
	c.fmu.Lock()
	f := c.follow[p.Topic]
	c.fmu.Unlock()
	if f == nil {
		return
	}
	var ev Event
	if err := protocol.Decode(protocol.Detect(p.Payload, contentType(p)), p.Payload, &ev); err != nil {
		c.log.Warn("mqim: undecodable group event ignored", "group", f.group, "error", err)
		return
	}
	if !f.in.push(ev) {
		c.log.Warn("mqim: group event queue full; event dropped, history will fetch it", "group", f.group)
	}
}

func (f *follower) run(ctx context.Context) {
	c := f.c
	defer close(f.out)
	defer func() {
		c.unfollow(f)
		// Best effort: a later connection does not subscribe again anyway.
		uctx, cancel := context.WithTimeout(context.Background(), c.cfg.RequestTimeout)
		defer cancel()
		if c.ctx.Err() == nil {
			_, _ = c.cm.Unsubscribe(uctx, &paho.Unsubscribe{Topics: []string{f.topic}})
		}
	}()
	pull, failures := false, 0
	for {
		if pull {
			err := f.catchUp(ctx)
			var e *Error
			switch {
			case err == nil:
				pull, failures = false, 0
			case ctx.Err() != nil || c.ctx.Err() != nil:
				return
			case errors.As(err, &e) && !e.Retryable():
				f.emit(ctx, Event{Kind: KindError, Conv: f.group, Error: &protocol.Error{Code: e.Code, Message: e.Message}})
				return
			default:
				failures++
				c.log.Warn("mqim: group history failed", "group", f.group, "error", err)
				select {
				case <-ctx.Done():
					return
				case <-c.ctx.Done():
					return
				case <-time.After(retryDelay(failures + 4)):
				}
				continue
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-c.ctx.Done():
			return
		case <-f.gone:
			f.emit(ctx, Event{Kind: KindError, Conv: f.group, Error: &protocol.Error{Code: protocol.CodeNotMember,
				Message: "subscription to the group topic refused"}})
			return
		case <-f.up:
			pull = true // after every (re)subscribe [IM-11.3-5]
		case <-f.in.notify:
			for _, ev := range f.in.take() {
				if !f.apply(ctx, ev) {
					return
				}
			}
			if len(f.held) > 0 {
				pull = true // a gap
			}
		}
	}
}

// apply takes one event, live or from history; false when stopped.
func (f *follower) apply(ctx context.Context, ev Event) bool {
	switch {
	case ev.Conv != f.group || ev.ConvSeq <= f.cursor:
		return true // a duplicate
	case ev.ConvSeq > f.cursor+1:
		if len(f.held) < maxQueued {
			f.held[ev.ConvSeq] = ev
		}
		return true
	}
	if !f.emit(ctx, ev) {
		return false
	}
	f.cursor = ev.ConvSeq
	for {
		next, ok := f.held[f.cursor+1]
		if !ok {
			break
		}
		if !f.emit(ctx, next) {
			return false
		}
		f.cursor = next.ConvSeq
	}
	for s := range f.held {
		if s <= f.cursor {
			delete(f.held, s)
		}
	}
	return true
}

func (f *follower) emit(ctx context.Context, ev Event) bool {
	select {
	case f.out <- ev:
		return true
	case <-ctx.Done():
	case <-f.c.ctx.Done():
	}
	return false
}

// catchUp pages history after the cursor until there is no more. history
// with after = 0 means "no bound", so from 0 the first message is asked
// for as "before 2".
func (f *follower) catchUp(ctx context.Context) error {
	for {
		req := HistoryRequest{Conv: f.group, After: f.cursor, Limit: historyPage}
		if f.cursor == 0 {
			req = HistoryRequest{Conv: f.group, Before: 2, Limit: 1}
		}
		res, err := f.c.History(ctx, req)
		if err != nil {
			return err
		}
		before := f.cursor
		for i := range res.Messages {
			m := res.Messages[i]
			if !f.apply(ctx, Event{Kind: KindMessage, Conv: m.Conv, ConvSeq: m.Seq, Msg: &m, TS: m.TS}) {
				return ctx.Err()
			}
		}
		if f.cursor == before || !res.HasMore && before != 0 {
			return nil
		}
	}
}

// Message types of the timeline events of a recall or an edit in a group
// that fans out on read [IM-14.4-3].
const (
	TypeRecall = protocol.TypeRecall
	TypeEdit   = protocol.TypeEdit
)

// TimelineChange is a recall or an edit of a message of a group that fans
// out on read, as its timeline records it [IM-14.4-3]: apply it to the
// message at ConvSeq (recall: type recalled, body {}; edit: Body).
type TimelineChange struct {
	Recall  bool // a recall; else an edit
	MsgID   int64
	ConvSeq int64
	// Body is an edit's new body; nil once the message was recalled, or
	// for a recall.
	Body map[string]any
}

// ChangeOf reads a recall or edit event of a group's timeline (a message
// of type TypeRecall or TypeEdit from FollowGroup or History); ok is false
// for any other message.
func ChangeOf(m *Message) (ch TimelineChange, ok bool) {
	if m == nil || m.Type != TypeRecall && m.Type != TypeEdit {
		return TimelineChange{}, false
	}
	id, _ := m.Body["msg_id"].(string)
	ch.MsgID, _ = strconv.ParseInt(id, 10, 64)
	ch.ConvSeq = int64(number(m.Body["conv_seq"]))
	ch.Recall = m.Type == TypeRecall
	ch.Body, _ = m.Body["body"].(map[string]any)
	return ch, ch.MsgID > 0 && ch.ConvSeq > 0
}

// number reads a decoded number of either encoding (JSON: float64;
// MessagePack: an integer type).
func number(v any) float64 {
	switch x := reflect.ValueOf(v); {
	case x.CanInt():
		return float64(x.Int())
	case x.CanUint():
		return float64(x.Uint())
	case x.CanFloat():
		return x.Float()
	}
	return 0
}

// isGroupTopic reports whether topic is a group topic.
func isGroupTopic(topic string) bool { return strings.HasPrefix(topic, groupTopicPrefix) }
