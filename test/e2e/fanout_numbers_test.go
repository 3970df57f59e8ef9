package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"golang.org/x/sync/errgroup"

	"github.com/mqim/mqim/clients/bench"
	"github.com/mqim/mqim/hooks/auth"
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// TestGroupFanoutNumbers measures group message fan-out (deliveries per
// second, send-to-last-delivery p99) for groups of N connected members
// against the same fan-out through a bare mochi broker in the same run. It
// is a measurement, not a check, and runs only when MQIM_FANOUT_NUMBERS
// lists the sizes, e.g. MQIM_FANOUT_NUMBERS=100,500,5000.
func TestGroupFanoutNumbers(t *testing.T) {
	sizes := os.Getenv("MQIM_FANOUT_NUMBERS")
	if sizes == "" {
		t.Skip("set MQIM_FANOUT_NUMBERS=100,500,5000 to measure")
	}
	const messages = 50
	for _, s := range strings.Split(sizes, ",") {
		size, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || size < 1 {
			t.Fatalf("bad size %q", s)
		}
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			m := measureMqim(t, size, messages)
			b := measureBare(t, size, messages)
			t.Logf("N=%d: mqim %s; bare mochi %s", size, m, b)
		})
	}
}

// fanStats is one measurement.
type fanStats struct {
	deliveries int
	elapsed    time.Duration
	p99        time.Duration
	model      string
}

func (s fanStats) String() string {
	return fmt.Sprintf("%.0f deliveries/s, p99 send→last delivery %v (%d in %v%s)",
		float64(s.deliveries)/s.elapsed.Seconds(), s.p99.Round(time.Millisecond), s.deliveries,
		s.elapsed.Round(time.Millisecond), s.model)
}

// fanRecorder keeps, per message index, when its last delivery arrived and
// how many arrived.
type fanRecorder struct {
	mu    gosync.Mutex
	last  map[int64]time.Time
	count int
	done  chan struct{}
	want  int
}

func newFanRecorder(want int) *fanRecorder {
	return &fanRecorder{last: make(map[int64]time.Time), done: make(chan struct{}), want: want}
}

func (r *fanRecorder) got(idx int64) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last[idx] = now
	r.count++
	if r.count == r.want {
		close(r.done)
	}
}

func (r *fanRecorder) stats(t *testing.T, sentAt map[int64]time.Time, start time.Time) fanStats {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("%d of %d deliveries", r.count, r.want)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var lat []time.Duration
	end := start
	for idx, at := range sentAt {
		lat = append(lat, r.last[idx].Sub(at))
		if r.last[idx].After(end) {
			end = r.last[idx]
		}
	}
	slices.Sort(lat)
	return fanStats{deliveries: r.count, elapsed: end.Sub(start), p99: lat[(len(lat)*99)/100]}
}

// dialRecorder connects a paho client that hands every publish's message
// index (by decode) to rec, and subscribes it to topic.
func dialRecorder(ctx context.Context, addr, user, password, topic string, decode func([]byte) int64, rec *fanRecorder) (*paho.Client, error) {
	conn, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := paho.NewClient(paho.ClientConfig{
		ClientID:      user + ".f",
		Conn:          conn,
		PacketTimeout: waitTimeout,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			rec.got(decode(pr.Packet.Payload))
			return true, nil
		}},
	})
	cp := &paho.Connect{ClientID: user + ".f", CleanStart: true, KeepAlive: 60, Username: user, UsernameFlag: true}
	if password != "" {
		cp.Password, cp.PasswordFlag = []byte(password), true
	}
	if _, err := c.Connect(ctx, cp); err != nil {
		conn.Close()
		return nil, err
	}
	if sa, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: topic, QoS: 1}}}); err != nil || sa.Reasons[0] >= 0x80 {
		return nil, fmt.Errorf("subscribe %s: %v %v", topic, sa, err)
	}
	return c, nil
}

func measureMqim(t *testing.T, size, messages int) fanStats {
	n := startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	users := make([]string, size+1)
	for i := range users {
		users[i] = fmt.Sprintf("f%05d", i)
	}
	if err := n.store.EnsureUsers(ctx, users); err != nil {
		t.Fatal(err)
	}
	const gid = "g:fan"
	res, err := n.store.ChangeGroup(ctx, store.GroupChange{Group: gid, Actor: users[0], Op: store.OpCreate,
		Users: users[1:], ID: 1, TS: time.Now().UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	rec := newFanRecorder(size * messages)
	decode := func(p []byte) int64 {
		var ev protocol.Event
		_ = protocol.Decode(protocol.MsgPack, p, &ev)
		return ev.ConvSeq
	}
	clients := make([]*paho.Client, size)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range clients {
		user := users[i+1]
		topic := protocol.InboxTopic(user) // write fan-out: on the inbox
		if res.Fanout == store.FanoutRead {
			topic = protocol.GroupTopic(gid)
		}
		g.Go(func() error {
			tok, err := auth.Mint(secret, user, "", time.Hour)
			if err != nil {
				return err
			}
			clients[i], err = dialRecorder(gctx, n.MQTTAddr(), user, tok, topic, decode, rec)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, c := range clients {
			_ = c.Disconnect(&paho.Disconnect{})
		}
	}()
	sender := dialer{5}.dial(t, n, users[0])
	sentAt := make(map[int64]time.Time, messages)
	start := time.Now()
	for i := 0; i < messages; i++ {
		at := time.Now()
		r := sender.send(gtext(fmt.Sprintf("f%d", i), gid, "fan-out measurement, a message of ordinary length"))
		if r.Err != nil || r.Code != 0 {
			t.Fatalf("send: %+v", r)
		}
		seq, _ := strconv.ParseInt(r.Props["seq"], 10, 64)
		sentAt[seq] = at
	}
	st := rec.stats(t, sentAt, start)
	st.model = ", " + res.Fanout + " fan-out"
	return st
}

func measureBare(t *testing.T, size, messages int) fanStats {
	b, err := bench.StartBare("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rec := newFanRecorder(size * messages)
	decode := func(p []byte) int64 { return int64(binary.BigEndian.Uint64(p)) }
	clients := make([]*paho.Client, size)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range clients {
		g.Go(func() error {
			var err error
			clients[i], err = dialRecorder(gctx, b.Addr(), fmt.Sprintf("b%05d", i), "", "bench/group", decode, rec)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, c := range clients {
			_ = c.Disconnect(&paho.Disconnect{})
		}
	}()
	pub, err := dialRecorder(ctx, b.Addr(), "sender", "", "bench/none", decode, rec)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Disconnect(&paho.Disconnect{})
	payload := make([]byte, 200) // about the size of an mqim message event
	sentAt := make(map[int64]time.Time, messages)
	start := time.Now()
	for i := 1; i <= messages; i++ {
		binary.BigEndian.PutUint64(payload, uint64(i))
		sentAt[int64(i)] = time.Now()
		if _, err := pub.Publish(ctx, &paho.Publish{Topic: "bench/group", QoS: 1, Payload: slices.Clone(payload)}); err != nil {
			t.Fatal(err)
		}
	}
	return rec.stats(t, sentAt, start)
}
