package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"golang.org/x/sync/errgroup"

	"github.com/mqim/mqim/protocol"
)

// DefaultSyncEvents is the sync scenario's default number of missed events.
const DefaultSyncEvents = 10000

// syncPage is the limit of every sync request: the most [IM-7.3-1] allows.
const syncPage = 1000

// sessionExpiry keeps a plain broker's session of the offline device.
const sessionExpiry = 3600

// RunSync runs the offline sync scenario against t: one device of a fresh
// user (bq.{run}) connects once and goes offline; cfg.Senders connections
// (cfg.Inflight publishes in flight each) then send it cfg.Messages
// messages (zero: DefaultSyncEvents); the device reconnects and pulls them
// all. The pull is what is timed: from the reconnect until the last event
// arrived.
//
// On mqimd the device pulls with the sync RPC, pages of 1,000, from cursor
// 0 [IM-7.3]. On a plain broker (bare mochi, Mosquitto) it resumes its
// persistent session (MQTT 5, session expiry one hour) and the broker
// replays the queued QoS 1 messages: the closest a broker without an IM
// store comes to a pull.
//
// In the summary, msgs_per_sec is events pulled per second of the pull,
// p50/p99/p999 are the times from the reconnect until that fraction of the
// events had arrived, acked is the events stored (PUBACKs), delivered the
// distinct events pulled, lost the acknowledged ones never pulled.
func RunSync(ctx context.Context, t Target, cfg Config) (*Summary, error) {
	if cfg.Messages == 0 {
		cfg.Messages = DefaultSyncEvents
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	id, err := runID()
	if err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, target: t, id: id, base: time.Now()}
	defer r.disconnect()
	s, err := r.syncScenario(ctx)
	if err != nil {
		return nil, fmt.Errorf("bench sync %s: %w", t.Name, err)
	}
	return s, nil
}

// puller is the device's record of what it pulled.
type puller struct {
	mu    gosync.Mutex
	start time.Time       // the reconnect; set before any goroutine reads it
	seen  []uint8         // deliveries of each message number
	at    []time.Duration // arrival (since start) of each first delivery
	dups  int64
	count atomic.Int64 // distinct events pulled
	done  chan struct{}
	want  int64 // close done at this many distinct events (plain brokers)
}

func (p *puller) record(seq int, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen = grow(p.seen, seq)
	if p.seen[seq] > 0 {
		p.dups++
		return
	}
	p.seen[seq] = 1
	p.at = append(p.at, now.Sub(p.start))
	if p.count.Add(1) == p.want {
		close(p.done)
	}
}

func (r *run) syncScenario(ctx context.Context) (*Summary, error) {
	t := r.target
	user := "bq." + r.id
	topic := "bench/sync/" + r.id // plain brokers
	expiry := uint32(0)
	if !t.im {
		expiry = sessionExpiry
	}

	// The device's first visit: the user exists (mqimd), the session and
	// its subscription are kept (plain brokers).
	dev, _, err := r.dial(ctx, user, t.addr(0, true), func(paho.PublishReceived) (bool, error) { return true, nil }, expiry)
	if err != nil {
		return nil, err
	}
	if !t.im {
		if err := subscribe(ctx, dev, topic); err != nil {
			return nil, fmt.Errorf("%s: %w", user, err)
		}
	}
	if err := dev.Disconnect(&paho.Disconnect{ReasonCode: 0}); err != nil {
		return nil, fmt.Errorf("%s: disconnect: %w", user, err)
	}

	seedStart := time.Now()
	acked, err := r.seed(ctx, user, topic)
	if err != nil {
		return nil, err
	}
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, "[%s] %d events stored for %s in %.1fs (%d errors); pulling\n",
			t.Name, acked, user, time.Since(seedStart).Seconds(), r.c.errors.Load())
	}

	// The pull is timed from here: the reconnect.
	p := &puller{done: make(chan struct{}), want: acked, start: time.Now()}
	if acked == 0 {
		close(p.done)
	}
	progressCtx, stopProgress := context.WithCancel(ctx)
	var progress gosync.WaitGroup
	if r.cfg.Progress != nil {
		progress.Go(func() { r.pullProgress(progressCtx, p, acked) })
	}
	var elapsed time.Duration
	if t.im {
		elapsed, err = r.pullRPC(ctx, user, p)
	} else {
		elapsed, err = r.pullSession(ctx, user, p, expiry)
	}
	stopProgress()
	progress.Wait()
	if err != nil {
		return nil, err
	}
	r.disconnect()

	p.mu.Lock()
	defer p.mu.Unlock()
	slices.Sort(p.at)
	got := p.count.Load()
	s := &Summary{
		Scenario: "sync", Target: t.Name,
		Senders: r.cfg.Senders, Inflight: r.cfg.Inflight, Size: r.cfg.Size,
		DurationS:  elapsed.Seconds(),
		MsgsPerSec: float64(got) / elapsed.Seconds(),
		P50ms:      ms(quantile(p.at, 0.50)),
		P99ms:      ms(quantile(p.at, 0.99)),
		P999ms:     ms(quantile(p.at, 0.999)),
		Acked:      acked,
		Delivered:  got,
		Errors:     r.c.errors.Load(),
		Lost:       max(acked-got, 0),
		Duplicates: p.dups,
	}
	s.DeliveredPerSec = s.MsgsPerSec
	r.mu.Lock()
	if r.firstErr != nil {
		s.FirstError = r.firstErr.Error()
	}
	r.mu.Unlock()
	return s, nil
}

func subscribe(ctx context.Context, c *paho.Client, topic string) error {
	sctx, cancel := context.WithTimeout(ctx, packetTimeout)
	defer cancel()
	sa, err := c.Subscribe(sctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: topic, QoS: 1}}})
	if err == nil && (sa == nil || len(sa.Reasons) != 1 || sa.Reasons[0] >= 0x80) {
		err = fmt.Errorf("refused: %+v", sa)
	}
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", topic, err)
	}
	return nil
}

// seed sends cfg.Messages messages to the offline user from cfg.Senders
// connections and returns how many were acknowledged.
func (r *run) seed(ctx context.Context, user, topic string) (int64, error) {
	t := r.target
	senders := make([]*paho.Client, r.cfg.Senders)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(connectParallelism)
	for i := range senders {
		g.Go(func() error {
			c, _, err := r.dial(gctx, senderUser(i), t.addr(i, false), r.receive, 0)
			senders[i] = c
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	var issued, acked atomic.Int64
	n := int64(r.cfg.Messages)
	var wg gosync.WaitGroup
	for i, c := range senders {
		pubTopic := topic
		if t.im {
			pubTopic = t.sendTopic(i)
		}
		for range r.cfg.Inflight {
			wg.Go(func() {
				for ctx.Err() == nil {
					seq := issued.Add(1) - 1
					if seq >= n {
						return
					}
					payload, err := t.payloadTo(r.id, stamp{run: r.id, seq: int(seq), sent: time.Since(r.base)}, r.cfg.Size, user)
					if err != nil {
						r.fail(err)
						return
					}
					pctx, cancel := context.WithTimeout(ctx, packetTimeout)
					_, err = c.Publish(pctx, &paho.Publish{QoS: 1, Topic: pubTopic, Payload: payload})
					cancel()
					if err != nil {
						r.fail(fmt.Errorf("%s: publish: %w", senderUser(i), err))
						continue
					}
					acked.Add(1)
				}
			})
		}
	}
	wg.Wait()
	r.mu.Lock()
	r.retired = map[string]bool{}
	for i := range senders {
		r.retired[senderUser(i)+"."+r.id] = true
	}
	r.mu.Unlock()
	for _, c := range senders {
		_ = c.Disconnect(&paho.Disconnect{ReasonCode: 0})
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return acked.Load(), nil
}

// syncResponse is a sync RPC response [IM-7.2].
type syncResponse struct {
	OK     bool                `json:"ok" msgpack:"ok"`
	Result protocol.SyncResult `json:"result" msgpack:"result"`
	Error  *protocol.Error     `json:"error" msgpack:"error"`
}

// pullRPC reconnects the device to mqimd and syncs from cursor 0 until
// has_more is false; it returns the time from the reconnect to the last
// page.
func (r *run) pullRPC(ctx context.Context, user string, p *puller) (time.Duration, error) {
	replies := make(chan *paho.Publish, 1)
	dev, _, err := r.dial(ctx, user, r.target.addr(0, true), func(pr paho.PublishReceived) (bool, error) {
		select {
		case replies <- pr.Packet:
		default: // not the one awaited: a duplicate
		}
		return true, nil
	}, 0)
	if err != nil {
		return 0, err
	}
	replyTopic := protocol.ReplyTopic(user, user+"."+r.id)
	if err := subscribe(ctx, dev, replyTopic); err != nil {
		return 0, fmt.Errorf("%s: %w", user, err)
	}
	var cursor int64
	for page := 0; ; page++ {
		req, err := protocol.Encode(protocol.MsgPack, &protocol.SyncRequest{After: cursor, Limit: syncPage})
		if err != nil {
			return 0, err
		}
		corr := fmt.Appendf(nil, "%d", page)
		pctx, cancel := context.WithTimeout(ctx, packetTimeout)
		_, err = dev.Publish(pctx, &paho.Publish{QoS: 1, Topic: protocol.RPCTopic(user, protocol.MethodSync), Payload: req,
			Properties: &paho.PublishProperties{ContentType: protocol.ContentTypeMsgPack, ResponseTopic: replyTopic, CorrelationData: corr}})
		if err != nil {
			cancel()
			return 0, fmt.Errorf("%s: sync request: %w", user, err)
		}
		var reply *paho.Publish
		for reply == nil {
			select {
			case pkt := <-replies:
				if pkt.Properties != nil && string(pkt.Properties.CorrelationData) == string(corr) {
					reply = pkt
				}
			case <-pctx.Done():
				cancel()
				return 0, fmt.Errorf("%s: no sync response: %w", user, pctx.Err())
			}
		}
		cancel()
		now := time.Now()
		var resp syncResponse
		if err := protocol.Decode(protocol.Detect(reply.Payload, contentTypeOf(reply)), reply.Payload, &resp); err != nil {
			return 0, fmt.Errorf("%s: sync response: %w", user, err)
		}
		if !resp.OK {
			return 0, fmt.Errorf("%s: sync: %v", user, resp.Error)
		}
		for _, ev := range resp.Result.Events {
			if ev.Seq != cursor+1 {
				r.fail(fmt.Errorf("sync: event seq %d after cursor %d", ev.Seq, cursor))
			}
			cursor = ev.Seq
			if ev.Kind != protocol.KindMessage || ev.Msg == nil {
				continue
			}
			text, _ := ev.Msg.Body["text"].(string)
			st, err := parseStamp(text)
			if err != nil || st.run != r.id {
				continue
			}
			p.record(st.seq, now)
		}
		if !resp.Result.HasMore {
			return time.Since(p.start), nil
		}
		if len(resp.Result.Events) == 0 {
			return 0, errors.New("sync: has_more with no events")
		}
	}
}

// pullSession resumes the device's session on a plain broker and waits
// until every acknowledged message was replayed, or cfg.Drain passed.
func (r *run) pullSession(ctx context.Context, user string, p *puller, expiry uint32) (time.Duration, error) {
	_, _, err := r.dial(ctx, user, r.target.addr(0, true), func(pr paho.PublishReceived) (bool, error) {
		now := time.Now()
		st, err := parseStamp(string(pr.Packet.Payload))
		if err == nil && st.run == r.id {
			p.record(st.seq, now)
		}
		return true, nil
	}, expiry)
	if err != nil {
		return 0, err
	}
	timer := time.NewTimer(r.cfg.Drain)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.at) == 0 {
		return r.cfg.Drain, nil
	}
	return slices.Max(p.at), nil // the last arrival
}

func (r *run) pullProgress(ctx context.Context, p *puller, want int64) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			fmt.Fprintf(r.cfg.Progress, "[%s] %5.1fs pulled %d of %d\n", r.target.Name, now.Sub(p.start).Seconds(), p.count.Load(), want)
		}
	}
}

func contentTypeOf(p *paho.Publish) string {
	if p.Properties == nil {
		return ""
	}
	return p.Properties.ContentType
}
