package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	gosync "sync"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"golang.org/x/sync/errgroup"
)

const (
	connectParallelism = 16
	packetTimeout      = 30 * time.Second // per CONNECT, SUBSCRIBE and QoS 1 publish
)

// connect connects and subscribes every receiver, then connects the
// senders: a receiver user must exist before anyone sends to it.
func (r *run) connect(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(connectParallelism)
	for i := range r.cfg.Senders {
		g.Go(func() error { return r.connectReceiver(gctx, i) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	r.senders = make([]*sender, r.cfg.Senders)
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(connectParallelism)
	for i := range r.cfg.Senders {
		g.Go(func() error {
			s, err := r.connectSender(gctx, i)
			r.senders[i] = s
			return err
		})
	}
	return g.Wait()
}

func (r *run) connectReceiver(ctx context.Context, i int) error {
	user := receiverUser(i)
	c, _, err := r.dial(ctx, user, r.target.addr(i, true), r.receive, 0)
	if err != nil {
		return err
	}
	topic := r.inboxes[i]
	sctx, cancel := context.WithTimeout(ctx, packetTimeout)
	defer cancel()
	sa, err := c.Subscribe(sctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: topic, QoS: 1}}})
	if err == nil && (sa == nil || len(sa.Reasons) != 1 || sa.Reasons[0] >= 0x80) {
		err = fmt.Errorf("refused: %+v", sa)
	}
	if err != nil {
		return fmt.Errorf("%s: subscribe %s: %w", user, topic, err)
	}
	return nil
}

func (r *run) connectSender(ctx context.Context, i int) (*sender, error) {
	user := senderUser(i)
	c, ca, err := r.dial(ctx, user, r.target.addr(i, false), r.receive, 0)
	if err != nil {
		return nil, err
	}
	if ca.Properties != nil && ca.Properties.ReceiveMaximum != nil && int(*ca.Properties.ReceiveMaximum) < r.cfg.Inflight {
		return nil, fmt.Errorf("%s: --inflight %d is above the server's Receive Maximum %d",
			user, r.cfg.Inflight, *ca.Properties.ReceiveMaximum)
	}
	s := &sender{i: i, client: c, topic: r.target.sendTopic(i)}
	if r.cfg.Rate > 0 {
		s.offset = time.Duration(float64(i) / r.cfg.Rate * float64(time.Second))
	}
	return s, nil
}

// dial opens an MQTT 5 connection for user with handler for incoming
// publishes: with a clean session when expiry is 0, else resuming (or
// starting) a session that outlives the connection by expiry seconds.
func (r *run) dial(ctx context.Context, user, addr string, handler func(paho.PublishReceived) (bool, error), expiry uint32) (*paho.Client, *paho.Connack, error) {
	return r.dialID(ctx, user, user+"."+r.id, addr, handler, expiry)
}

// dialID is dial with the client id given.
func (r *run) dialID(ctx context.Context, user, clientID, addr string, handler func(paho.PublishReceived) (bool, error), expiry uint32) (*paho.Client, *paho.Connack, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", user, err)
	}
	c := paho.NewClient(paho.ClientConfig{
		ClientID:          clientID,
		Conn:              packets.NewThreadSafeConn(nc), // several goroutines publish on it
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){handler},
		PacketTimeout:     packetTimeout,
		OnClientError:     func(err error) { r.connectionError(clientID, err) },
		OnServerDisconnect: func(d *paho.Disconnect) {
			r.connectionError(clientID, fmt.Errorf("server sent DISCONNECT 0x%02x %s", d.ReasonCode, reasonString(d)))
		},
	})
	username, password, err := r.target.credentials(user)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("%s: %w", user, err)
	}
	cp := &paho.Connect{
		ClientID: clientID, CleanStart: expiry == 0, KeepAlive: 30,
		Username: username, UsernameFlag: username != "",
		Password: password, PasswordFlag: password != nil,
		Properties: &paho.ConnectProperties{},
	}
	if r.cfg.ReceiveMaximum > 0 {
		rm := uint16(r.cfg.ReceiveMaximum)
		cp.Properties.ReceiveMaximum = &rm
	}
	if expiry > 0 {
		cp.Properties.SessionExpiryInterval = &expiry
	}
	cctx, cancel := context.WithTimeout(ctx, packetTimeout)
	defer cancel()
	ca, err := c.Connect(cctx, cp)
	if err != nil {
		if ca != nil {
			err = fmt.Errorf("%w (CONNACK 0x%02x)", err, ca.ReasonCode)
		}
		return nil, nil, fmt.Errorf("%s: connect: %w", user, err)
	}
	r.mu.Lock()
	r.clients = append(r.clients, c)
	r.mu.Unlock()
	return c, ca, nil
}

func reasonString(d *paho.Disconnect) string {
	if d.Properties == nil {
		return ""
	}
	return d.Properties.ReasonString
}

// connectionError remembers the first connection failure (not counted as a
// publish error: a lost sender fails its publishes, a lost receiver loses
// messages).
func (r *run) connectionError(clientID string, err error) {
	if r.closing.Load() || errors.Is(err, net.ErrClosed) {
		return // closed by this side: a deliberate disconnect
	}
	r.mu.Lock()
	if r.retired[clientID] {
		r.mu.Unlock()
		return
	}
	if r.firstErr == nil {
		r.firstErr = fmt.Errorf("%s: connection: %w", clientID, err)
	}
	r.mu.Unlock()
}

// disconnect closes every connection and waits for their goroutines; it
// may be called more than once.
func (r *run) disconnect() {
	r.closing.Store(true)
	r.mu.Lock()
	clients := r.clients
	r.clients = nil
	r.mu.Unlock()
	var wg gosync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			// An error means the connection is already gone; Disconnect
			// still stops the client's goroutines.
			_ = c.Disconnect(&paho.Disconnect{ReasonCode: 0})
		})
	}
	wg.Wait()
}
