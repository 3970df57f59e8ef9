package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/protocol/authtoken"
)

var secret = []byte("cluster-test-secret")

// device is an MQTT 5 device that follows the spec's duties [IM-5.2]: it
// reconnects (to the next node when its node is gone), subscribes, syncs
// from its cursor, applies pushed events in order, drops duplicates and
// syncs on a gap. It records what it applied, for the checks.
type device struct {
	user, id string
	nodes    func() []string // MQTT addresses, in order of preference
	home     int

	mu         sync.Mutex
	client     *paho.Client
	addr       string // node of the current connection
	cursor     int64
	applied    []protocol.Event
	convSeq    map[string]int64
	violations []string
	lastApply  time.Time
	connects   int
	live, dups atomic.Int64

	inbox   chan *paho.Publish
	pending sync.Map // correlation → chan *paho.Publish
	rpcID   atomic.Int64
	lost    chan struct{} // a connection ended
}

func newDevice(user, id string, home int, nodes func() []string) *device {
	return &device{user: user, id: id, home: home, nodes: nodes, convSeq: map[string]int64{},
		inbox: make(chan *paho.Publish, 100000), lost: make(chan struct{}, 1)}
}

func (d *device) violate(format string, args ...any) {
	d.violations = append(d.violations, fmt.Sprintf(format, args...))
}

// run keeps the device connected until ctx ends.
func (d *device) run(ctx context.Context) {
	attempt := d.home
	for ctx.Err() == nil {
		addrs := d.nodes()
		a := addrs[attempt%len(addrs)]
		c, err := d.connect(ctx, a)
		if err != nil {
			attempt++
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		d.serve(ctx, c)
		_ = c.Disconnect(&paho.Disconnect{})
		d.mu.Lock()
		d.client = nil
		d.mu.Unlock()
		attempt = d.home // back home if it is up, as a load balancer would
	}
}

// rehome ends the current connection if it is not on the home node; the
// device then reconnects there.
func (d *device) rehome() {
	d.mu.Lock()
	c, addr := d.client, d.addr
	d.mu.Unlock()
	if nodes := d.nodes(); c != nil && addr != nodes[d.home%len(nodes)] {
		_ = c.Disconnect(&paho.Disconnect{})
		select {
		case d.lost <- struct{}{}:
		default:
		}
	}
}

func (d *device) connect(ctx context.Context, addr string) (*paho.Client, error) {
	var dl net.Dialer
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	nc, err := dl.DialContext(cctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	var once sync.Once
	lost := func() {
		once.Do(func() {
			select {
			case d.lost <- struct{}{}:
			default:
			}
		})
	}
	c := paho.NewClient(paho.ClientConfig{
		ClientID:           d.id,
		Conn:               packets.NewThreadSafeConn(nc),
		PacketTimeout:      5 * time.Second,
		OnPublishReceived:  []func(paho.PublishReceived) (bool, error){d.received},
		OnClientError:      func(error) { lost() },
		OnServerDisconnect: func(*paho.Disconnect) { lost() },
	})
	tok, err := authtoken.Mint(secret, d.user, "", time.Hour)
	if err != nil {
		return nil, err
	}
	// Drain a stale loss signal of an earlier connection.
	select {
	case <-d.lost:
	default:
	}
	ca, err := c.Connect(cctx, &paho.Connect{ClientID: d.id, CleanStart: true, KeepAlive: 5,
		Username: d.user, UsernameFlag: true, Password: []byte(tok), PasswordFlag: true})
	if err != nil {
		nc.Close()
		if ca != nil {
			err = fmt.Errorf("%w (CONNACK 0x%02x)", err, ca.ReasonCode)
		}
		return nil, err
	}
	sa, err := c.Subscribe(cctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{
		{Topic: protocol.InboxTopic(d.user), QoS: 1},
		{Topic: protocol.ReplyTopic(d.user, d.id), QoS: 1},
	}})
	if err != nil || len(sa.Reasons) != 2 || sa.Reasons[0] >= 0x80 || sa.Reasons[1] >= 0x80 {
		_ = c.Disconnect(&paho.Disconnect{})
		return nil, fmt.Errorf("subscribe: %v %+v", err, sa)
	}
	d.mu.Lock()
	d.client, d.addr = c, addr
	d.connects++
	d.mu.Unlock()
	return c, nil
}

func (d *device) received(pr paho.PublishReceived) (bool, error) {
	p := pr.Packet
	if p.Topic == protocol.InboxTopic(d.user) {
		select {
		case d.inbox <- p:
		default: // as a device that lost a push: the gap is found later
		}
		return true, nil
	}
	if p.Properties != nil {
		if ch, ok := d.pending.Load(string(p.Properties.CorrelationData)); ok {
			ch.(chan *paho.Publish) <- p
		}
	}
	return true, nil
}

// serve syncs, then applies pushed events until the connection ends.
func (d *device) serve(ctx context.Context, c *paho.Client) {
	needSync := true
	for {
		if needSync {
			if err := d.syncAll(ctx, c); err != nil {
				return
			}
			needSync = false
		}
		select {
		case <-ctx.Done():
			return
		case <-d.lost:
			return
		case <-c.Done():
			return
		case p := <-d.inbox:
			var ev protocol.Event
			if err := protocol.Decode(protocol.MsgPack, p.Payload, &ev); err != nil {
				d.mu.Lock()
				d.violate("undecodable event: %v", err)
				d.mu.Unlock()
				continue
			}
			if ev.Seq == 0 {
				continue // ephemeral
			}
			d.live.Add(1)
			d.mu.Lock()
			switch {
			case ev.Seq <= d.cursor:
				d.dups.Add(1)
			case ev.Seq == d.cursor+1:
				d.apply(ev)
			default:
				needSync = true
			}
			d.mu.Unlock()
		}
	}
}

// apply takes the next event; d.mu held.
func (d *device) apply(ev protocol.Event) {
	if ev.Seq != d.cursor+1 {
		d.violate("applied seq %d after %d", ev.Seq, d.cursor)
	}
	d.cursor = ev.Seq
	d.applied = append(d.applied, ev)
	d.lastApply = time.Now()
	if ev.Kind == "message" && ev.Msg != nil {
		if last := d.convSeq[ev.Conv]; ev.ConvSeq != last+1 {
			d.violate("%s: conv %s seq %d after %d", d.id, ev.Conv, ev.ConvSeq, last)
		}
		d.convSeq[ev.Conv] = ev.ConvSeq
	}
}

type rpcResponse[T any] struct {
	OK     bool            `msgpack:"ok"`
	Result T               `msgpack:"result"`
	Error  *protocol.Error `msgpack:"error"`
}

// syncAll pulls from the cursor until the device has everything.
func (d *device) syncAll(ctx context.Context, c *paho.Client) error {
	for {
		d.mu.Lock()
		after := d.cursor
		d.mu.Unlock()
		var res rpcResponse[protocol.SyncResult]
		if err := d.rpc(ctx, c, "sync", protocol.SyncRequest{After: after, Limit: 200}, &res); err != nil {
			return err
		}
		if !res.OK {
			return fmt.Errorf("sync: %+v", res.Error)
		}
		d.mu.Lock()
		for _, ev := range res.Result.Events {
			if ev.Seq <= d.cursor {
				continue
			}
			if ev.Seq != d.cursor+1 {
				d.violate("sync after %d returned seq %d", after, ev.Seq)
			}
			d.apply(ev)
		}
		caught := d.cursor >= res.Result.Latest
		d.mu.Unlock()
		if !res.Result.HasMore && caught {
			return nil
		}
	}
}

func (d *device) rpc(ctx context.Context, c *paho.Client, method string, req, res any) error {
	body, err := protocol.Encode(protocol.MsgPack, req)
	if err != nil {
		return err
	}
	corr := strconv.FormatInt(d.rpcID.Add(1), 10)
	ch := make(chan *paho.Publish, 1)
	d.pending.Store(corr, ch)
	defer d.pending.Delete(corr)
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.Publish(rctx, &paho.Publish{Topic: protocol.RPCTopic(d.user, method), QoS: 1, Payload: body,
		Properties: &paho.PublishProperties{ResponseTopic: protocol.ReplyTopic(d.user, d.id), CorrelationData: []byte(corr)}}); err != nil {
		return err
	}
	select {
	case p := <-ch:
		return protocol.Decode(protocol.MsgPack, p.Payload, res)
	case <-rctx.Done():
		return rctx.Err()
	}
}

// acked is a message the server acknowledged.
type acked struct {
	from, to, cmid, conv string
	id, seq              int64
	at                   time.Time
}

// errRefused is a PUBACK with a failure reason code.
type errRefused struct {
	reason byte
	code   string
}

func (e *errRefused) Error() string { return fmt.Sprintf("refused 0x%02x %s", e.reason, e.code) }

// send publishes one message on the device's current connection.
func (d *device) send(ctx context.Context, to, cmid, text string) (acked, error) {
	d.mu.Lock()
	c := d.client
	d.mu.Unlock()
	if c == nil {
		return acked{}, errors.New("not connected")
	}
	body, _ := protocol.Encode(protocol.MsgPack, protocol.Send{Cmid: cmid, To: to, Type: "text", Body: map[string]any{"text": text}})
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := c.Publish(pctx, &paho.Publish{Topic: protocol.SendTopic(d.user), QoS: 1, Payload: body})
	if resp != nil && resp.ReasonCode >= 0x80 {
		var code string
		if resp.Properties != nil {
			code = resp.Properties.User.Get("code")
		}
		return acked{}, &errRefused{resp.ReasonCode, code}
	}
	if err != nil {
		return acked{}, err
	}
	a := acked{from: d.user, to: to, cmid: cmid, at: time.Now()}
	if resp.Properties != nil {
		a.id, _ = strconv.ParseInt(resp.Properties.User.Get("id"), 10, 64)
		a.conv = resp.Properties.User.Get("conv")
		a.seq, _ = strconv.ParseInt(resp.Properties.User.Get("seq"), 10, 64)
	}
	if a.id == 0 || a.conv == "" || a.seq == 0 {
		return acked{}, fmt.Errorf("PUBACK without id/conv/seq: %+v", resp.Properties)
	}
	return a, nil
}

// sender sends to random peers at a pace, retrying each message with the
// same cmid until it is acknowledged.
type sender struct {
	d     *device
	peers []string
	every time.Duration

	mu      sync.Mutex
	acks    []acked
	refused map[string]int // code → count
	failed  []string       // messages never acknowledged, with why
}

func (s *sender) run(ctx context.Context) {
	s.refused = map[string]int{}
	tick := time.NewTicker(s.every)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		to := s.peers[rand.IntN(len(s.peers))]
		cmid := fmt.Sprintf("%s-%d", s.d.id, i)
		// Retry the same cmid even after ctx ends: an in-doubt message
		// must end acknowledged. The deadline only keeps a broken cluster
		// from hanging the test.
		for deadline := time.Now().Add(2 * time.Minute); ; {
			a, err := s.d.send(context.Background(), to, cmid, "m"+strconv.Itoa(i))
			if err == nil {
				s.mu.Lock()
				s.acks = append(s.acks, a)
				s.mu.Unlock()
				break
			}
			var r *errRefused
			if errors.As(err, &r) {
				s.mu.Lock()
				s.refused[r.code]++
				s.mu.Unlock()
			}
			if (r != nil && r.code != protocol.CodeUnavailable) || time.Now().After(deadline) {
				s.mu.Lock()
				s.failed = append(s.failed, fmt.Sprintf("%s: %v", cmid, err))
				s.mu.Unlock()
				break
			}
			time.Sleep(50 * time.Millisecond) // retry backoff
		}
	}
}
