package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"golang.org/x/sync/errgroup"

	"github.com/mqim/mqim/protocol"
)

// The group scenario (RunGroup) measures fan-out: one group of
// Config.Members members (users bg0…bg{M-1}, each with one device), one
// sender connection of bg0 (the group's owner) sending QoS 1 messages into
// the group, one at a time (Inflight 1, so that every member must see them
// in send order), paced by Config.Rate. Every member device is subscribed
// to its inbox and, once a group event of the new group says it fans out
// on read ([IM-11.3-5]), to the group topic. On a plain broker every member
// subscribes to one topic and the sender publishes there.
//
// A delivery is one message arriving at one member. The summary's
// MsgsPerSec (and DeliveredPerSec) is deliveries per second, from the start
// of sending to the last delivery; latency is per message, from just before
// its publish to its delivery to the last member; Lost counts member
// deliveries missing at the end of the drain, Duplicates deliveries after
// the first, OutOfOrder deliveries of a message older than one the member
// had already seen.

// DefaultMembers is the group size of the group scenario.
const DefaultMembers = 100

// groupChunk is how many users one group.create or group.add carries
// ([IM-11.4-1]: at most 1,000).
const groupChunk = 1000

func memberUser(i int) string { return "bg" + strconv.Itoa(i) }

// groupRun is one execution of the group scenario.
type groupRun struct {
	*run
	members []*member
	topic   string // plain brokers: the group's topic
	conv    atomic.Pointer[string]

	mmu  gosync.Mutex
	msgs []groupMsg // by seq
	last time.Duration

	outOfOrder atomic.Int64
}

// groupMsg is what happened to one message.
type groupMsg struct {
	acked bool
	sent  time.Duration // since base
	count int           // members that got it
	last  time.Duration // since base, its latest first delivery
}

// member is one member device.
type member struct {
	i      int
	client *paho.Client
	mu     gosync.Mutex
	seen   []uint8
	max    int // highest seq seen, -1 before any
	groups map[string]groupState
}

// groupState is what a member learnt of a group from its events.
type groupState struct {
	read       bool // the group fans out on read
	subscribed bool // subscribed to its topic
}

// RunGroup runs the group scenario (above) against t.
func RunGroup(ctx context.Context, t Target, cfg Config) (*Summary, error) {
	if cfg.Members == 0 {
		cfg.Members = DefaultMembers
	}
	if cfg.Members < 2 {
		return nil, errors.New("bench: a group needs at least 2 members")
	}
	cfg.Senders, cfg.Inflight = 1, 1
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	id, err := runID()
	if err != nil {
		return nil, err
	}
	g := &groupRun{run: &run{cfg: cfg, target: t, id: id, base: time.Now()}}
	g.topic = "bench/group/" + id
	if cfg.Rate > 0 {
		g.interval = time.Duration(float64(time.Second) / cfg.Rate)
	}
	defer g.disconnect()
	sender, err := g.setup(ctx)
	if err != nil {
		return nil, fmt.Errorf("bench %s: %w", t.Name, err)
	}
	return g.execute(ctx, sender), nil
}

// setup connects the members and the sender and, on mqimd, creates the
// group and waits until every member device is ready to receive it.
func (g *groupRun) setup(ctx context.Context) (*paho.Client, error) {
	t := g.target
	g.members = make([]*member, g.cfg.Members)
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(connectParallelism)
	for i := range g.members {
		m := &member{i: i, max: -1, groups: map[string]groupState{}}
		g.members[i] = m
		eg.Go(func() error {
			user := memberUser(i)
			c, _, err := g.dialID(ectx, user, user+"."+g.id, t.addr(i, true), g.receive(m), 0)
			if err != nil {
				return err
			}
			m.mu.Lock()
			m.client = c
			m.mu.Unlock()
			topic := g.topic
			if t.im {
				topic = protocol.InboxTopic(user)
			}
			if err := subscribe(ectx, c, topic); err != nil {
				return fmt.Errorf("%s: %w", user, err)
			}
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	owner := memberUser(0)
	clientID := owner + ".send." + g.id
	sender, _, err := g.dialID(ctx, owner, clientID, t.addr(0, false), g.reply, 0)
	if err != nil {
		return nil, err
	}
	if !t.im {
		return sender, nil
	}
	replyTopic := protocol.ReplyTopic(owner, clientID)
	if err := subscribe(ctx, sender, replyTopic); err != nil {
		return nil, fmt.Errorf("%s: %w", owner, err)
	}
	var res protocol.GroupChangeResult
	for lo := 1; lo < g.cfg.Members; lo += groupChunk {
		users := make([]string, 0, groupChunk)
		for i := lo; i < min(lo+groupChunk, g.cfg.Members); i++ {
			users = append(users, memberUser(i))
		}
		method, req := protocol.MethodGroupCreate, protocol.GroupRequest{Members: users}
		if lo > 1 {
			method, req = protocol.MethodGroupAdd, protocol.GroupRequest{Group: res.Group, Users: users}
		}
		if err := g.call(ctx, sender, owner, replyTopic, method, &req, &res); err != nil {
			return nil, err
		}
		if lo == 1 {
			g.conv.Store(&res.Group)
		}
	}
	return sender, g.awaitReady(ctx, res.Group, res.Fanout == "read")
}

// awaitReady waits until every member device has seen a group event of
// conv and, when it fans out on read, subscribed to its topic.
func (g *groupRun) awaitReady(ctx context.Context, conv string, read bool) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second+time.Duration(len(g.members))*10*time.Millisecond)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		waiting := 0
		for _, m := range g.members {
			m.mu.Lock()
			st, ok := m.groups[conv]
			m.mu.Unlock()
			if !ok || (read && !st.subscribed) {
				waiting++
			}
		}
		if waiting == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d member devices not ready for group %s (read fan-out: %v): %w", waiting, len(g.members), conv, read, ctx.Err())
		case <-tick.C:
		}
	}
}

// receive returns the handler of member m's device.
func (g *groupRun) receive(m *member) func(paho.PublishReceived) (bool, error) {
	return func(pr paho.PublishReceived) (bool, error) {
		now := time.Since(g.base)
		text := string(pr.Packet.Payload)
		if g.target.im {
			var ev protocol.Event
			if err := protocol.Decode(protocol.Detect(pr.Packet.Payload, contentTypeOf(pr.Packet)), pr.Packet.Payload, &ev); err != nil ||
				ev.Kind != protocol.KindMessage || ev.Msg == nil {
				g.c.foreign.Add(1)
				return true, nil
			}
			if ev.Msg.Type == protocol.TypeGroup {
				g.groupEvent(m, ev.Msg)
				return true, nil
			}
			conv := g.conv.Load()
			if conv == nil || ev.Msg.Conv != *conv {
				g.c.foreign.Add(1)
				return true, nil
			}
			text, _ = ev.Msg.Body["text"].(string)
		}
		st, err := parseStamp(text)
		if err != nil || st.run != g.id {
			g.c.foreign.Add(1)
			return true, nil
		}
		g.deliver(m, st.seq, now)
		return true, nil
	}
}

// groupEvent notes a group event on member m's device and, when the group
// fans out on read, subscribes the device to its topic (once).
func (g *groupRun) groupEvent(m *member, msg *protocol.Message) {
	read := msg.Body["fanout"] == "read"
	m.mu.Lock()
	st := m.groups[msg.Conv]
	subscribe := read && !st.read
	st.read = st.read || read
	m.groups[msg.Conv] = st
	c := m.client
	m.mu.Unlock()
	if !subscribe {
		return
	}
	// Not in the handler: the SUBACK comes through the same connection.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), packetTimeout)
		defer cancel()
		if err := subscribeTopic(ctx, c, protocol.GroupTopic(msg.Conv)); err != nil {
			g.fail(fmt.Errorf("%s: %w", memberUser(m.i), err))
			return
		}
		m.mu.Lock()
		st := m.groups[msg.Conv]
		st.subscribed = true
		m.groups[msg.Conv] = st
		m.mu.Unlock()
	}()
}

func subscribeTopic(ctx context.Context, c *paho.Client, topic string) error {
	if c == nil {
		return errors.New("no connection")
	}
	return subscribe(ctx, c, topic)
}

// deliver records the delivery of message seq to member m.
func (g *groupRun) deliver(m *member, seq int, now time.Duration) {
	m.mu.Lock()
	m.seen = grow(m.seen, seq)
	n := m.seen[seq]
	if n < 255 {
		m.seen[seq] = n + 1
	}
	if n == 0 && seq < m.max {
		g.outOfOrder.Add(1)
	}
	m.max = max(m.max, seq)
	m.mu.Unlock()
	if n > 0 {
		g.c.duplicates.Add(1)
		return
	}
	g.c.delivered.Add(1)
	g.mmu.Lock()
	g.msgs = grow(g.msgs, seq)
	msg := &g.msgs[seq]
	msg.count++
	msg.last = max(msg.last, now)
	g.last = max(g.last, now)
	g.mmu.Unlock()
}

// execute sends, drains and summarises.
func (g *groupRun) execute(ctx context.Context, sender *paho.Client) *Summary {
	g.start = time.Now()
	var sendCtx context.Context
	var stopSending context.CancelFunc
	if g.cfg.Messages > 0 {
		sendCtx, stopSending = context.WithCancel(ctx)
	} else {
		sendCtx, stopSending = context.WithDeadline(ctx, g.start.Add(g.cfg.Duration))
	}
	defer stopSending()

	progressCtx, stopProgress := context.WithCancel(ctx)
	var progress gosync.WaitGroup
	if g.cfg.Progress != nil {
		progress.Go(func() { g.progress(progressCtx) })
	}

	var conv string
	if c := g.conv.Load(); c != nil {
		conv = *c
	}
send:
	for seq := 0; sendCtx.Err() == nil && (g.cfg.Messages == 0 || seq < g.cfg.Messages); seq++ {
		if g.interval > 0 && !sleepUntil(sendCtx, g.start.Add(time.Duration(seq)*g.interval)) {
			break
		}
		sent := time.Since(g.base)
		payload, err := g.payload(conv, stamp{run: g.id, seq: seq, sent: sent})
		if err != nil {
			g.fail(err)
			break
		}
		topic := g.topic
		if g.target.im {
			topic = protocol.SendTopic(memberUser(0))
		}
		g.mmu.Lock()
		g.msgs = grow(g.msgs, seq)
		g.msgs[seq].sent = sent
		g.mmu.Unlock()
		pctx, cancel := context.WithTimeout(ctx, packetTimeout)
		_, err = sender.Publish(pctx, &paho.Publish{QoS: 1, Topic: topic, Payload: payload})
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			g.fail(fmt.Errorf("%s: publish: %w", memberUser(0), err))
			select {
			case <-sender.Done():
				break send // connection lost
			default:
				continue
			}
		}
		g.mmu.Lock()
		g.msgs[seq].acked = true
		g.mmu.Unlock()
		g.c.acked.Add(1)
	}
	window := time.Since(g.start)
	stopSending()

	drainCtx, stopDraining := context.WithTimeout(ctx, g.cfg.Drain)
	defer stopDraining()
	tick := time.NewTicker(10 * time.Millisecond)
	for g.missing() > 0 && drainCtx.Err() == nil {
		select {
		case <-drainCtx.Done():
		case <-tick.C:
		}
	}
	tick.Stop()
	stopProgress()
	progress.Wait()
	g.disconnect()

	g.mmu.Lock()
	var lat []time.Duration
	var lost int64
	for _, m := range g.msgs {
		if !m.acked {
			continue
		}
		lost += int64(len(g.members) - m.count)
		if m.count == len(g.members) {
			lat = append(lat, m.last-m.sent)
		}
	}
	span := g.last - g.start.Sub(g.base)
	g.mmu.Unlock()
	slices.Sort(lat)
	delivered := g.c.delivered.Load()
	var perSec float64
	if span > 0 {
		perSec = float64(delivered) / span.Seconds()
	}
	s := &Summary{
		Scenario: "group", Target: g.target.Name,
		Senders: 1, Inflight: 1, Rate: g.cfg.Rate, Size: g.cfg.Size,
		Members:         len(g.members),
		DurationS:       window.Seconds(),
		MsgsPerSec:      perSec,
		DeliveredPerSec: perSec,
		P50ms:           ms(quantile(lat, 0.50)),
		P99ms:           ms(quantile(lat, 0.99)),
		P999ms:          ms(quantile(lat, 0.999)),
		Acked:           g.c.acked.Load(),
		Delivered:       delivered,
		Errors:          g.c.errors.Load(),
		Lost:            lost,
		Duplicates:      g.c.duplicates.Load(),
		OutOfOrder:      g.outOfOrder.Load(),
	}
	if g.target.im {
		s.Fanout = "write"
		for _, m := range g.members[:1] {
			m.mu.Lock()
			if m.groups[conv].read {
				s.Fanout = "read"
			}
			m.mu.Unlock()
		}
	}
	g.mu.Lock()
	if g.firstErr != nil {
		s.FirstError = g.firstErr.Error()
	}
	g.mu.Unlock()
	return s
}

// payload is the publish of message s: a group send on mqimd, the text on
// a plain broker.
func (g *groupRun) payload(conv string, s stamp) ([]byte, error) {
	text := s.appendText(make([]byte, 0, g.cfg.Size+32), g.cfg.Size)
	if !g.target.im {
		return text, nil
	}
	b, err := protocol.Encode(protocol.MsgPack, &protocol.Send{
		Cmid:  g.id + "-g-" + strconv.Itoa(s.seq),
		Group: conv,
		Type:  protocol.TypeText,
		Body:  map[string]any{"text": string(text)},
	})
	if err != nil {
		return nil, fmt.Errorf("encode send: %w", err)
	}
	return b, nil
}

// missing is the number of member deliveries of acknowledged messages
// still outstanding.
func (g *groupRun) missing() int64 {
	if g.c.delivered.Load() < g.c.acked.Load()*int64(len(g.members)) {
		return 1
	}
	g.mmu.Lock()
	defer g.mmu.Unlock()
	var n int64
	for _, m := range g.msgs {
		if m.acked {
			n += int64(len(g.members) - m.count)
		}
	}
	return n
}

func (g *groupRun) progress(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastDelivered int64
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			delivered := g.c.delivered.Load()
			fmt.Fprintf(g.cfg.Progress, "[%s] %5.1fs sent %d delivered %d (%d/s) to %d members errors %d dups %d\n",
				g.target.Name, now.Sub(g.start).Seconds(), g.c.acked.Load(), delivered, delivered-lastDelivered,
				len(g.members), g.c.errors.Load(), g.c.duplicates.Load())
			lastDelivered = delivered
		}
	}
}
