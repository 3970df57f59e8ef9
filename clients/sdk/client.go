package sdk

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/mqim/mqim/protocol"
)

// Config configures a Client. Zero values mean the defaults noted.
type Config struct {
	// Server is the server's URL: mqtt://host:port (MQTT over TCP),
	// ws://host:port/mqtt (MQTT over WebSocket; path /mqtt when none is
	// given), or mqtts:// and wss:// with TLS. A bare host:port means
	// mqtt://host:port. Required.
	Server string
	// User is the user id; Token its JWT (mqim token). Both required.
	User  string
	Token string
	// ClientID is the device id; it should be stable per installation and
	// must be unique [IM-3.1-6]. Zero: User + "." + a random suffix.
	ClientID string

	// Cursor keeps the inbox cursor. Zero: in memory, starting at 0.
	Cursor CursorStore
	// SkipBacklog makes a new device (cursor 0) start at the server's latest
	// inbox seq instead of receiving the whole inbox [IM-5.3].
	SkipBacklog bool
	// NoEvents: do not subscribe to the inbox and deliver no events, for
	// tools that only send and call RPCs. Events returns nil.
	NoEvents bool
	// FailFast: Dial fails on the first failed connection attempt (refused,
	// no such host, a CONNACK refusal) instead of retrying until its ctx
	// ends; for commands a person waits on. Later reconnects still retry.
	FailFast bool

	// RequestTimeout bounds one attempt of a send, an RPC, a subscribe or a
	// connect; a send or RPC is retried after it. Zero: 10s.
	RequestTimeout time.Duration
	// KeepAlive is the MQTT keepalive. Zero: 30s.
	KeepAlive time.Duration
	// ReconnectMax caps the delay between connection attempts, which grows
	// from 100ms. Zero: 10s.
	ReconnectMax time.Duration
	// QuietSync: after this long without inbox traffic the client syncs, in
	// case the last event before the silence was lost [IM-5.2-5]. Zero: 2m;
	// negative: never.
	QuietSync time.Duration

	// Log receives the client's diagnostics. Zero: discarded.
	Log *slog.Logger

	hooks *testHooks // tests only (export_test.go)
}

// testHooks let tests reach into the client.
type testHooks struct {
	dropEvent  func(Event) bool // true: the received inbox publish is ignored
	beforeSync func(after int64)
	afterSync  func(after int64, res SyncResult) // before the result is applied
}

// Client is one connected device. Create it with Dial; Close it when done.
type Client struct {
	cfg        Config
	server     *url.URL
	clientID   string
	replyTopic string
	log        *slog.Logger
	hooks      testHooks

	ctx    context.Context // cancelled by Close or a fatal error: stops everything
	cancel context.CancelFunc
	cm     *autopaho.ConnectionManager

	mu       sync.Mutex
	conn     *conn         // the current connection; nil while down
	gen      uint64        // connection counter
	readyCh  chan struct{} // closed when conn is subscribed; replaced when it goes down
	failed   chan struct{} // closed when fatal is set
	fatal    error         // a connection error that stops the client
	lastErr  error         // the latest connect error, for messages
	closed   bool
	wg       sync.WaitGroup
	closeErr error
	once     sync.Once

	rpcMu   sync.Mutex
	waiters map[string]chan *paho.Publish // by correlation data
	corr    uint64

	in       inbox
	upSig    chan struct{} // a connection became ready (cap 1, coalescing)
	caughtUp chan struct{} // closed after the first complete sync
	upOnce   sync.Once
	events   chan Event
	cursor   cursorView

	fmu    sync.Mutex
	follow map[string]*follower // by group topic (FollowGroup)
}

// conn is one MQTT connection; ctx is cancelled when it goes down.
type conn struct {
	gen       uint64
	ctx       context.Context
	cancel    context.CancelFunc
	ready     bool
	maxPacket int // the server's Maximum Packet Size; 0: not announced
}

// Dial connects to the server and returns once the client is connected and
// subscribed, or fails with the reason (ErrBadCredentials, an unreachable
// server, ctx's error). From then on the client reconnects by itself until
// Close. ctx bounds only the first connection.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	u, err := ParseServer(cfg.Server)
	if err != nil {
		return nil, err
	}
	c := &Client{
		cfg:        cfg,
		server:     u,
		clientID:   cfg.ClientID,
		replyTopic: protocol.ReplyTopic(cfg.User, cfg.ClientID),
		log:        cfg.Log,
		readyCh:    make(chan struct{}),
		failed:     make(chan struct{}),
		waiters:    make(map[string]chan *paho.Publish),
		upSig:      make(chan struct{}, 1),
		caughtUp:   make(chan struct{}),
	}
	if cfg.hooks != nil {
		c.hooks = *cfg.hooks
	}
	c.in.notify = make(chan struct{}, 1)
	if !cfg.NoEvents {
		seq, err := cfg.Cursor.Load(ctx)
		if err != nil {
			return nil, err
		}
		c.cursor.set(seq)
		c.events = make(chan Event)
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())

	c.cm, err = autopaho.NewConnection(c.ctx, autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{u},
		KeepAlive:                     uint16(max(1, cfg.KeepAlive/time.Second)),
		CleanStartOnInitialConnection: true,
		ReconnectBackoff:              backoff(100*time.Millisecond, cfg.ReconnectMax),
		ConnectTimeout:                cfg.RequestTimeout,
		ConnectUsername:               cfg.User,
		ConnectPassword:               []byte(cfg.Token),
		// Clean Start on every connect [IM-1.1-3]: the broker's session is
		// not a source of truth; sends are retried and the inbox synced.
		ConnectPacketBuilder: func(cp *paho.Connect, _ *url.URL) (*paho.Connect, error) {
			cp.CleanStart = true
			return cp, nil
		},
		OnConnectionUp:   c.onUp,
		OnConnectionDown: c.onDown,
		OnConnectError:   c.onConnectError,
		ClientConfig: paho.ClientConfig{
			ClientID:           cfg.ClientID,
			OnPublishReceived:  []func(paho.PublishReceived) (bool, error){c.onPublish},
			OnServerDisconnect: c.onServerDisconnect,
			OnClientError:      func(err error) { c.log.Debug("mqim: connection error", "error", err) },
			PacketTimeout:      cfg.RequestTimeout,
		},
	})
	if err != nil {
		c.cancel()
		return nil, fmt.Errorf("mqim: %w", err)
	}
	if !cfg.NoEvents {
		c.goRun(c.process)
	}
	if _, err := c.awaitConn(ctx); err != nil {
		err = c.stopErr("cannot connect to "+u.String(), err, nil)
		c.Close()
		return nil, err
	}
	return c, nil
}

func (cfg *Config) fill() error {
	switch {
	case cfg.Server == "":
		return errors.New("mqim: no server given")
	case !protocol.ValidID(cfg.User):
		return fmt.Errorf("mqim: invalid user id %q", cfg.User)
	case cfg.Token == "":
		return errors.New("mqim: no token given")
	}
	if cfg.ClientID == "" {
		cfg.ClientID = cfg.User + "." + randomString(10)
	}
	if !protocol.ValidID(cfg.ClientID) {
		// The default reply topic level is the client id [IM-3.1-6].
		return fmt.Errorf("mqim: client id %q is not a valid id (A-Z a-z 0-9 _ . - @, at most 64)", cfg.ClientID)
	}
	if cfg.Cursor == nil {
		cfg.Cursor = &MemoryCursor{}
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 30 * time.Second
	}
	if cfg.ReconnectMax <= 0 {
		cfg.ReconnectMax = 10 * time.Second
	}
	if cfg.QuietSync == 0 {
		cfg.QuietSync = 2 * time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return nil
}

// ParseServer reads a server address as Config.Server takes it.
func ParseServer(s string) (*url.URL, error) {
	if !strings.Contains(s, "://") {
		s = "mqtt://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("mqim: bad server URL %q: %w", s, err)
	}
	switch u.Scheme {
	case "mqtt", "tcp", "mqtts", "tls", "ssl":
	case "ws", "wss":
		if u.Path == "" || u.Path == "/" {
			u.Path = "/mqtt"
		}
	default:
		return nil, fmt.Errorf("mqim: bad server URL %q: scheme must be mqtt, mqtts, ws or wss", s)
	}
	if u.Hostname() == "" || u.Port() == "" {
		return nil, fmt.Errorf("mqim: bad server URL %q: want host:port", s)
	}
	return u, nil
}

// User is the client's user id.
func (c *Client) User() string { return c.cfg.User }

// ClientID is the client's MQTT client id (its device id).
func (c *Client) ClientID() string { return c.clientID }

// Cursor is the inbox seq up to which every event has been handed to the
// application.
func (c *Client) Cursor() int64 { return c.cursor.get() }

// Done is closed when the client stops for good: closed, or failed with a
// connection error it must not retry (see Err).
func (c *Client) Done() <-chan struct{} { return c.ctx.Done() }

// Err returns why the client stopped (ErrClosed, ErrBadCredentials,
// ErrTakenOver, …), or nil while it runs.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fatal != nil {
		return c.fatal
	}
	if c.closed {
		return ErrClosed
	}
	return nil
}

// Close disconnects and stops every goroutine of the client; the Events
// channel is closed. Calls in progress return ErrClosed. It is idempotent.
func (c *Client) Close() error {
	c.once.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		// Disconnect sends DISCONNECT if connected and waits for autopaho.
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RequestTimeout)
		defer cancel()
		if err := c.cm.Disconnect(ctx); err != nil {
			c.closeErr = fmt.Errorf("mqim: disconnect: %w", err)
		}
		c.cancel()
		c.wg.Wait()
	})
	return c.closeErr
}

// goRun starts f on a goroutine Close waits for, unless the client is
// closing.
func (c *Client) goRun(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.ctx.Err() != nil {
		return
	}
	c.wg.Go(f)
}

// onUp runs on autopaho's goroutine when a connection is up; it must not
// block, so subscribing happens on a goroutine of the client.
func (c *Client) onUp(_ *autopaho.ConnectionManager, ca *paho.Connack) {
	maxPacket := 0
	if ca != nil && ca.Properties != nil && ca.Properties.MaximumPacketSize != nil {
		maxPacket = int(*ca.Properties.MaximumPacketSize)
	}
	c.mu.Lock()
	if c.conn != nil { // down was not reported; should not happen
		c.conn.cancel()
	}
	c.gen++
	ctx, cancel := context.WithCancel(c.ctx)
	cn := &conn{gen: c.gen, ctx: ctx, cancel: cancel, maxPacket: maxPacket}
	c.conn = cn
	c.lastErr = nil
	c.mu.Unlock()
	c.log.Debug("mqim: connected", "server", c.server.String(), "gen", cn.gen)
	c.goRun(func() { c.setup(cn) })
}

// setup subscribes a new connection to the inbox and the reply topic
// [IM-7.1-4] and then marks it ready, which lets sends and RPCs through
// and makes the event processor sync [IM-5.2-4].
func (c *Client) setup(cn *conn) {
	subs := []paho.SubscribeOptions{{Topic: c.replyTopic, QoS: 1}}
	if !c.cfg.NoEvents {
		subs = append(subs, paho.SubscribeOptions{Topic: protocol.InboxTopic(c.cfg.User), QoS: 1})
	}
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(cn.ctx, c.cfg.RequestTimeout)
		sa, err := c.cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: subs})
		cancel()
		if err == nil {
			for i, r := range sa.Reasons {
				if r >= 0x80 {
					c.fail(fmt.Errorf("mqim: subscribe %s refused with reason 0x%02x", subs[i].Topic, r))
					return
				}
			}
			break
		}
		c.log.Debug("mqim: subscribe failed", "error", err)
		if !sleep(cn.ctx, retryDelay(attempt)) {
			return
		}
	}
	c.mu.Lock()
	if c.conn == cn && !cn.ready {
		cn.ready = true
		close(c.readyCh)
	}
	c.mu.Unlock()
	select {
	case c.upSig <- struct{}{}:
	default:
	}
	// Followed groups: subscribe, then each pulls history [IM-11.3-5].
	if err := c.subscribeGroups(cn.ctx, c.followers()); err != nil {
		c.log.Debug("mqim: subscribe group topics failed", "error", err)
	}
}

// onDown runs on autopaho's goroutine when the connection is gone. Returning
// false stops reconnecting.
func (c *Client) onDown() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cn := c.conn; cn != nil {
		cn.cancel()
		if cn.ready {
			c.readyCh = make(chan struct{})
		}
		c.conn = nil
	}
	c.log.Debug("mqim: connection lost")
	return c.fatal == nil && !c.closed
}

func (c *Client) onConnectError(err error) {
	var ce *autopaho.ConnackError
	if errors.As(err, &ce) {
		switch ce.ReasonCode {
		case protocol.ReasonBadCredentials:
			c.fail(ErrBadCredentials)
			return
		case 0x85:
			c.fail(ErrClientIDInUse)
			return
		}
	}
	c.log.Debug("mqim: connect failed", "error", err)
	c.mu.Lock()
	first := c.gen == 0
	if !c.cfg.FailFast || !first {
		c.lastErr = err
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	if inner := errors.Unwrap(err); inner != nil {
		err = inner // autopaho's "failed to connect to URL: …"
	}
	c.fail(err)
}

func (c *Client) onServerDisconnect(d *paho.Disconnect) {
	reason := ""
	if d.Properties != nil {
		reason = d.Properties.ReasonString
	}
	c.log.Debug("mqim: server sent DISCONNECT", "reason", fmt.Sprintf("0x%02x", d.ReasonCode), "string", reason)
	if d.ReasonCode == 0x8E {
		c.fail(ErrTakenOver)
	}
}

// fail stops the client for good with err.
func (c *Client) fail(err error) {
	c.mu.Lock()
	if c.fatal == nil && !c.closed {
		c.fatal = err
		close(c.failed)
	}
	c.mu.Unlock()
	c.cancel()
}

// awaitConn waits until a connection is up and subscribed.
func (c *Client) awaitConn(ctx context.Context) (*conn, error) {
	for {
		c.mu.Lock()
		switch {
		case c.fatal != nil:
			c.mu.Unlock()
			return nil, c.fatal
		case c.closed || c.ctx.Err() != nil:
			c.mu.Unlock()
			return nil, ErrClosed
		case c.conn != nil && c.conn.ready:
			cn := c.conn
			c.mu.Unlock()
			return cn, nil
		}
		ch := c.readyCh
		c.mu.Unlock()
		select {
		case <-ch:
		case <-c.failed:
		case <-c.ctx.Done():
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// attempt is the context of one try of a request on connection cn: it ends
// with ctx, with the connection, or after RequestTimeout.
func (c *Client) attempt(ctx context.Context, cn *conn) (context.Context, context.CancelFunc) {
	actx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	stop := context.AfterFunc(cn.ctx, cancel)
	return actx, func() { stop(); cancel() }
}

// stopErr is the error of a call (what) that ends with err, because the
// client or ctx ended; last is the failure of its last attempt, if any.
func (c *Client) stopErr(what string, err, last error) error {
	if cerr := c.Err(); cerr != nil {
		err = cerr
	}
	if last == nil && !errors.Is(err, ErrClosed) {
		c.mu.Lock()
		if c.conn == nil && c.lastErr != nil {
			last = c.lastErr
			if inner := errors.Unwrap(last); inner != nil {
				last = inner // autopaho's "failed to connect to URL: …"
			}
			last = fmt.Errorf("not connected: %w", last)
		}
		c.mu.Unlock()
	}
	if last != nil {
		return fmt.Errorf("mqim: %s: %w (%w)", what, last, err)
	}
	return fmt.Errorf("mqim: %s: %w", what, err)
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// retryDelay is the pause before retry attempt+1 of a request: 50ms
// doubling to 2s, with jitter.
func retryDelay(attempt int) time.Duration {
	d := 50 * time.Millisecond << min(attempt, 6)
	d = min(d, 2*time.Second)
	return d/2 + mrand.N(d/2+1)
}

// backoff is the delay before connection attempt n: none for the first
// attempt after a drop but a little jitter (a node that shuts down sends its
// devices elsewhere [IM-6.2-2]), then from lo doubling up to hi.
func backoff(lo, hi time.Duration) autopaho.Backoff {
	return func(n int) time.Duration {
		if n <= 0 {
			return mrand.N(lo / 2)
		}
		d := min(lo<<min(n-1, 16), hi)
		return d/2 + mrand.N(d/2+1)
	}
}

const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz"

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
