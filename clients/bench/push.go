package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"golang.org/x/sync/errgroup"

	"github.com/mqim/mqim/protocol"
)

// The push scenario (RunPush): Recipients users, each with one device
// registered for webhook push [IM-17.1] and none connected, get 1:1
// messages from Senders connections; mqimd's webhook provider posts every
// notification to a PushReceiver in this process, which reads the stamp
// back from the notification's body. Latency is from just before the
// publish to the provider's request: an upper bound of commit → provider.
//
// Its cost to the send rate is measured in the same invocation: runs as
// fast as possible alternate between those recipients (push on) and as
// many recipients without a registration (push off: the outbox gets no
// row, nothing is queued or sent), and the medians are compared.

// PushConfig is the load of the push scenario. Zero values mean the
// defaults noted.
type PushConfig struct {
	Config                     // Rate: the paced run's total messages per second (zero: 1,000); Drain: zero 60 s
	Recipients   int           // offline recipients with a registration (bp{i}); as many without (bq{i}); zero: 1,000
	Rounds       int           // alternating push-on/push-off runs as fast as possible; zero: 3; negative: none
	CostDuration time.Duration // each of those runs; zero: Duration
	Receiver     *PushReceiver // where mqimd's webhook provider posts (--push-webhook-url Receiver.URL())
}

// Defaults of PushConfig.
const (
	DefaultPushRecipients = 1000
	DefaultPushRate       = 1000
	DefaultPushRounds     = 3
)

func pushRecipient(i int, push bool) string {
	if push {
		return "bp" + strconv.Itoa(i)
	}
	return "bq" + strconv.Itoa(i)
}

// pushToken is recipient user's webhook token.
func pushToken(user string) string { return "bench-" + user }

// RunPush runs the push scenario against t (mqimd with a webhook
// provider posting to cfg.Receiver): the paced run with push on, then
// cfg.Rounds pairs of unpaced runs, push on and off. Summaries: the paced
// run first, then the unpaced ones in the order run.
func RunPush(ctx context.Context, t Target, cfg PushConfig) ([]*Summary, error) {
	if !t.im {
		return nil, errors.New("bench push: mqimd only (no reference broker pushes)")
	}
	if cfg.Receiver == nil {
		return nil, errors.New("bench push: no receiver for the webhook")
	}
	if cfg.Recipients == 0 {
		cfg.Recipients = DefaultPushRecipients
	}
	if cfg.Rate == 0 {
		cfg.Rate = DefaultPushRate
	}
	if cfg.Drain == 0 {
		cfg.Drain = 60 * time.Second
	}
	if cfg.Rounds == 0 {
		cfg.Rounds = DefaultPushRounds
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if cfg.CostDuration == 0 {
		cfg.CostDuration = cfg.Duration
	}
	if cfg.Recipients < 1 {
		return nil, errors.New("bench push: recipients must be positive")
	}
	if err := setupRecipients(ctx, t, cfg); err != nil {
		return nil, fmt.Errorf("bench push: %w", err)
	}
	var sums []*Summary
	paced := cfg.Config
	s, err := runPushOnce(ctx, t, cfg, paced, true, 0)
	if err != nil {
		return nil, err
	}
	sums = append(sums, s)
	cost := cfg.Config
	cost.Rate, cost.Duration = 0, cfg.CostDuration
	for round := 1; round <= cfg.Rounds && ctx.Err() == nil; round++ {
		for _, on := range []bool{true, false} {
			s, err := runPushOnce(ctx, t, cfg, cost, on, round)
			if err != nil {
				return sums, err
			}
			sums = append(sums, s)
		}
	}
	return sums, nil
}

// setupRecipients connects every recipient once (a user exists once it
// has connected), registers the bp{i} device for webhook push and
// disconnects it: with no device connected, a message is pushed at once
// [IM-17.2-1].
func setupRecipients(ctx context.Context, t Target, cfg PushConfig) error {
	id, err := runID()
	if err != nil {
		return err
	}
	r := &run{cfg: cfg.Config, target: t, id: id, base: time.Now()}
	defer r.disconnect()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(connectParallelism)
	for i := range cfg.Recipients {
		for _, on := range []bool{true, false} {
			g.Go(func() error { return r.setupRecipient(gctx, pushRecipient(i, on), on) })
		}
	}
	return g.Wait()
}

func (r *run) setupRecipient(ctx context.Context, user string, register bool) error {
	clientID := user + ".phone" // the same each invocation: registering again replaces it
	c, _, err := r.dialID(ctx, user, clientID, r.target.addr(0, true), r.reply, 0)
	if err != nil {
		return err
	}
	defer r.retire(c, clientID)
	if !register {
		return nil
	}
	reply := protocol.ReplyTopic(user, clientID)
	if err := subscribe(ctx, c, reply); err != nil {
		return fmt.Errorf("%s: %w", user, err)
	}
	var dev protocol.PushDevice
	return r.call(ctx, c, user, reply, protocol.MethodPushRegister,
		&protocol.PushRegisterRequest{Platform: "webhook", Token: pushToken(user), App: "mqim-bench"}, &dev)
}

// retire disconnects c on purpose.
func (r *run) retire(c *paho.Client, clientID string) {
	r.mu.Lock()
	if r.retired == nil {
		r.retired = map[string]bool{}
	}
	r.retired[clientID] = true
	r.mu.Unlock()
	_ = c.Disconnect(&paho.Disconnect{ReasonCode: 0})
}

// runPushOnce is one run: Senders connections send to the recipients with
// (on) or without a registration; sender i's k-th message goes to
// recipient (i + k·Senders) mod Recipients.
func runPushOnce(ctx context.Context, t Target, pc PushConfig, cfg Config, on bool, round int) (*Summary, error) {
	id, err := runID()
	if err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, target: t, id: id, base: time.Now(), silent: !on}
	r.pairs = make([]*pair, cfg.Senders)
	for i := range r.pairs {
		r.pairs[i] = &pair{}
	}
	r.to = func(pair, seq int) string { return pushRecipient((pair+seq*cfg.Senders)%pc.Recipients, on) }
	if cfg.Rate > 0 {
		r.interval = time.Duration(float64(cfg.Senders) / cfg.Rate * float64(time.Second))
	}
	defer r.disconnect()
	r.senders = make([]*sender, cfg.Senders)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(connectParallelism)
	for i := range cfg.Senders {
		g.Go(func() (err error) {
			r.senders[i], err = r.connectSender(gctx, i)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("bench push: %w", err)
	}
	pc.Receiver.current.Store(r)
	defer pc.Receiver.current.CompareAndSwap(r, nil)
	s := r.execute(ctx)
	s.Scenario, s.Round, s.Recipients = "push", round, pc.Recipients
	s.Push = "off"
	if on {
		s.Push = "on"
		// Pushes per second: from the first send to the last push (the
		// queue may still be draining when sending ends).
		if last := time.Duration(r.lastPush.Load()); last > 0 {
			s.DeliveredPerSec = float64(s.Delivered) / (last - r.start.Sub(r.base)).Seconds()
		}
	} else {
		s.Delivered, s.DeliveredPerSec, s.Lost = 0, 0, 0
	}
	return s, nil
}

// PushReceiver is the webhook receiver mqimd's push provider posts to
// [IM-17.5-3]: it checks the signature and hands each notification to the
// run in progress.
type PushReceiver struct {
	ln      net.Listener
	srv     *http.Server
	secret  []byte
	current atomic.Pointer[run]
	served  chan error
	refused atomic.Int64 // bad signatures or bodies
}

// StartPushReceiver listens on addr (host:port; port 0: any) for posts
// signed with secret.
func StartPushReceiver(addr string, secret []byte) (*PushReceiver, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("push receiver: %w", err)
	}
	p := &PushReceiver{ln: ln, secret: secret, served: make(chan error, 1)}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { p.served <- p.srv.Serve(ln) }()
	return p, nil
}

// URL is the address to give mqimd (--push-webhook-url).
func (p *PushReceiver) URL() string { return "http://" + p.ln.Addr().String() + "/push" }

// Refused says how many posts had a bad signature or body.
func (p *PushReceiver) Refused() int64 { return p.refused.Load() }

// Close stops the receiver and waits for it.
func (p *PushReceiver) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := p.srv.Shutdown(ctx)
	if serr := <-p.served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

func (p *PushReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 8192))
	if err == nil {
		err = protocol.VerifyWebhook(p.secret, req.Header.Get(protocol.WebhookHeaderTimestamp),
			req.Header.Get(protocol.WebhookHeaderSignature), body, time.Now())
	}
	var n protocol.WebhookPush
	if err == nil {
		err = json.Unmarshal(body, &n)
	}
	if err != nil {
		p.refused.Add(1)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	w.WriteHeader(http.StatusNoContent)
	r := p.current.Load()
	if r == nil {
		return
	}
	now := time.Since(r.base)
	st, err := parseStamp(n.Body)
	if err != nil || st.run != r.id || st.pair >= len(r.pairs) || n.Token != pushToken(n.User) ||
		n.User != r.to(st.pair, st.seq) {
		// Not this run's (or its body is not the message's text): lost,
		// unless it is.
		r.c.foreign.Add(1)
		r.mu.Lock()
		if r.firstErr == nil {
			r.firstErr = fmt.Errorf("a notification to %s (%s seq %d) that is not one of the messages sent: %q", n.User, n.Conv, n.Seq, n.Body)
		}
		r.mu.Unlock()
		return
	}
	r.pairs[st.pair].deliver(st.seq, now-st.sent, &r.c)
	for {
		last := r.lastPush.Load()
		if int64(now) <= last || r.lastPush.CompareAndSwap(last, int64(now)) {
			break
		}
	}
}

// PushCost returns the median send rates of the unpaced push-on and
// push-off runs among sums (0 if there are none).
func PushCost(sums []*Summary) (on, off float64) {
	var ons, offs []float64
	for _, s := range sums {
		if s.Scenario != "push" || s.Rate != 0 {
			continue
		}
		if s.Push == "on" {
			ons = append(ons, s.MsgsPerSec)
		} else {
			offs = append(offs, s.MsgsPerSec)
		}
	}
	return median(ons), median(offs)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}
