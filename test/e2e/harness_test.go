// Package e2e holds the end-to-end tests of mqim: a real node (embedded
// broker, hooks, store) per test on loopback ports, driven by real MQTT
// clients over TCP and WebSocket.
//
// Every scenario runs on both stores, SQLite (the default) and PostgreSQL,
// each under MQTT 5 (paho.golang) and MQTT 3.1.1 (paho.mqtt.golang), through
// forEachStoreAndVersion, in the style of net/http's run-in-h1-and-h2 tests;
// a scenario that needs one version only runs on both stores through
// forEachStore. The few that stay on one store say why.
//
// A *device hides the two client libraries: connect as a user with a token,
// subscribe, publish QoS 1, a log of received inbox events, RPC (Response
// Topic + Correlation Data for MQTT 5, payload id + reply_to for 3.1.1),
// abrupt close.
//
// Nothing here sleeps for a fixed time: every wait is for a condition, with
// a timeout (waitTimeout), so that a slow machine makes tests slower, not
// flaky, and a broken server makes them fail.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	gosync "sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.golang/paho"
	mqtt3 "github.com/eclipse/paho.mqtt.golang"
	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/mqim/mqim/internal/testnode"
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/protocol/authtoken"
	"github.com/mqim/mqim/server"
)

var secret = []byte("e2e-test-secret")

// waitTimeout bounds every wait for something the server must do. It is
// generous: the machine is small and noisy, and a passing test never waits
// for it to expire.
const waitTimeout = 30 * time.Second

// ---------------------------------------------------------------------------
// Nodes

// testNode is a running mqimd node on loopback ports with its own
// database (testnode.DB: a SQLite file or a PostgreSQL schema).
type testNode struct {
	*testnode.Node
}

// backend is the store a scenario's nodes run on (forEachStoreAndVersion).
type backend = testnode.Backend

// startNode starts a node on a new, empty database of backend be; opts
// change its Config first.
func startNode(t *testing.T, be backend, opts ...func(*server.Config)) *testNode {
	t.Helper()
	return startNodeOn(t, testnode.NewDB(t, be), opts...)
}

// startNodeOn starts a node on an existing database: to restart a node
// (stop the old one first: a SQLite file has one owner), or, on
// PostgreSQL, to run a second node beside it.
func startNodeOn(t *testing.T, db testnode.DB, opts ...func(*server.Config)) *testNode {
	t.Helper()
	level := slog.LevelWarn
	if os.Getenv("MQIM_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	logs := &testLog{Handler: slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}), errs: &logErrors{}}
	tn := &testNode{Node: testnode.Start(t, db, secret, slog.New(logs), opts...)}
	t.Cleanup(func() {
		tn.stop(t) // before testnode's cleanup, so that shutdown's logs are checked
		// The server logs at ERROR only for its own faults.
		logs.errs.mu.Lock()
		defer logs.errs.mu.Unlock()
		for _, e := range logs.errs.msgs {
			t.Errorf("node logged an error: %s", e)
		}
	})
	return tn
}

// testLog is the node's log: it records ERROR records for the test, and
// drops the warning without a message that mochi's TCP listener logs
// whenever a connection ends (EOF, bad credentials, …), as the tests end
// thousands of connections on purpose.
type testLog struct {
	slog.Handler
	errs *logErrors
}

type logErrors struct {
	mu   gosync.Mutex
	msgs []string
}

func (l *testLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		msg := r.Message
		r.Attrs(func(a slog.Attr) bool { msg += " " + a.String(); return true })
		l.errs.mu.Lock()
		l.errs.msgs = append(l.errs.msgs, msg)
		l.errs.mu.Unlock()
	}
	if r.Message == "" && r.Level == slog.LevelWarn && os.Getenv("MQIM_TEST_LOG") == "" {
		return nil
	}
	return l.Handler.Handle(ctx, r)
}

func (l *testLog) WithAttrs(as []slog.Attr) slog.Handler {
	return &testLog{Handler: l.Handler.WithAttrs(as), errs: l.errs}
}

func (l *testLog) WithGroup(g string) slog.Handler {
	return &testLog{Handler: l.Handler.WithGroup(g), errs: l.errs}
}

// stop shuts the node down gracefully and closes its store, so that a node
// may start on its database. It is idempotent, and fails the test if the
// drain does not finish in time (a hung shutdown is a bug).
func (n *testNode) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- n.Stop(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("shutdown: %v", err)
		}
	case <-time.After(waitTimeout + 5*time.Second):
		var b strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
		t.Fatalf("shutdown did not return within %v; goroutines:\n%s", waitTimeout+5*time.Second, b.String())
	}
}

// ---------------------------------------------------------------------------
// Tokens

func token(t testing.TB, user string) string {
	t.Helper()
	tok, err := authtoken.Mint(secret, user, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// signToken signs arbitrary claims with key (HS256).
func signToken(t testing.TB, key []byte, c authtoken.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tokenFmt is a valid token for user with the fmt claim [IM-3.1-3].
func tokenFmt(t testing.TB, user, format string) string {
	return signToken(t, secret, authtoken.Claims{Format: format, RegisteredClaims: jwt.RegisteredClaims{
		Subject: user, IssuedAt: jwt.NewNumericDate(time.Now()), ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}})
}

// ---------------------------------------------------------------------------
// Waiting

// eventually polls cond until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	delay := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(delay) // a poll interval, not a wait for something to happen
		delay = min(2*delay, 50*time.Millisecond)
	}
}

func randomID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ---------------------------------------------------------------------------
// Protocol versions

// dialer dials devices of one MQTT version.
type dialer struct {
	version byte // 5 or 4 (3.1.1)
}

func (dl dialer) v5() bool { return dl.version == 5 }

func (dl dialer) String() string {
	if dl.v5() {
		return "mqtt5"
	}
	return "mqtt311"
}

// forEachStoreAndVersion runs f as a subtest on each store (SQLite,
// PostgreSQL) under MQTT 5 and under MQTT 3.1.1: sqlite/mqtt5,
// sqlite/mqtt311, postgres/mqtt5, postgres/mqtt311.
func forEachStoreAndVersion(t *testing.T, f func(t *testing.T, be backend, dl dialer)) {
	forEachStore(t, func(t *testing.T, be backend) {
		forEachVersion(t, func(t *testing.T, dl dialer) { f(t, be, dl) })
	})
}

// forEachVersion runs f as a subtest under MQTT 5 and under MQTT 3.1.1, for
// a scenario that picks its store itself (one that makes sense on one store
// only says why).
func forEachVersion(t *testing.T, f func(t *testing.T, dl dialer)) {
	for _, dl := range []dialer{{5}, {4}} {
		t.Run(dl.String(), func(t *testing.T) { f(t, dl) })
	}
}

// forEachStore runs f as a subtest on each store: sqlite, postgres.
func forEachStore(t *testing.T, f func(t *testing.T, be backend)) {
	testnode.ForEachBackend(t, f)
}

// ---------------------------------------------------------------------------
// Devices

// dialOpts configure a device.
type dialOpts struct {
	clientID    string
	token       string // password; default: a valid token for the user
	noSubscribe bool   // do not subscribe to inbox and reply topic
	format      string // MQTT 5 CONNECT user property "format"
	ws          bool   // connect over WebSocket
	addr        string // the node address (set by tryDial)
	willTopic   string // a will message (QoS 1) on this topic
	willPayload []byte
	receiveMax  uint16                   // MQTT 5 CONNECT Receive Maximum; 0: not sent
	tls         *tls.Config              // connect to the TLS listener (mqtts, or wss with ws) with this config
	noPassword  bool                     // send no password (client certificate logins)
	dial        func() (net.Conn, error) // the connection to speak MQTT over; default: dial addr
}

type dialOpt func(*dialOpts)

func withClientID(id string) dialOpt  { return func(o *dialOpts) { o.clientID = id } }
func withToken(tok string) dialOpt    { return func(o *dialOpts) { o.token = tok } }
func withFormatProp(f string) dialOpt { return func(o *dialOpts) { o.format = f } }
func overWebSocket() dialOpt          { return func(o *dialOpts) { o.ws = true } }
func overTLS(c *tls.Config) dialOpt   { return func(o *dialOpts) { o.tls = c } }
func withoutPassword() dialOpt        { return func(o *dialOpts) { o.noPassword = true } }
func withConn(dial func() (net.Conn, error)) dialOpt {
	return func(o *dialOpts) { o.dial = dial }
}
func noSubscribe() dialOpt { return func(o *dialOpts) { o.noSubscribe = true } }
func withReceiveMaximum(n uint16) dialOpt {
	return func(o *dialOpts) { o.receiveMax = n }
}
func withWill(topic string, payload []byte) dialOpt {
	return func(o *dialOpts) { o.willTopic, o.willPayload = topic, payload }
}

// pubOpts are the optional parts of a publish.
type pubOpts struct {
	contentType   string // MQTT 5 only
	responseTopic string // MQTT 5 only
	correlation   []byte // MQTT 5 only
	qos           byte
}

type pubOpt func(*pubOpts)

func withContentType(ct string) pubOpt { return func(o *pubOpts) { o.contentType = ct } }
func withResponse(topic string, corr []byte) pubOpt {
	return func(o *pubOpts) { o.responseTopic, o.correlation = topic, corr }
}

// pubResult is the outcome of a QoS 1 publish: the PUBACK (reason code,
// reason string and user properties are MQTT 5 only), or Err when there was
// no PUBACK (connection lost, timeout).
type pubResult struct {
	Code   byte
	Reason string
	Props  map[string]string
	Err    error
}

// inbound is a publish the server sent to a device.
type inbound struct {
	Topic       string
	Payload     []byte
	ContentType string // MQTT 5 only
	Correlation []byte // MQTT 5 only
}

// format is the encoding of the payload as the device would detect it.
func (in inbound) format() protocol.Format { return protocol.Detect(in.Payload, in.ContentType) }

// event is one inbox event received by a device.
type event struct {
	protocol.Event
	In  inbound
	Err error // decoding error
}

func (e event) String() string {
	if e.Err != nil {
		return fmt.Sprintf("undecodable event %q: %v", e.In.Payload, e.Err)
	}
	switch e.Kind {
	case protocol.KindMessage:
		m := e.Msg
		if m == nil {
			return fmt.Sprintf("message seq=%d without msg", e.Seq)
		}
		body := fmt.Sprint(m.Body)
		if len(body) > 60 {
			body = body[:60] + "…"
		}
		return fmt.Sprintf("message seq=%d conv=%s conv_seq=%d from=%s cmid=%.70s body=%s", e.Seq, e.Conv, e.ConvSeq, m.From, m.Cmid, body)
	case protocol.KindRead:
		return fmt.Sprintf("read seq=%d conv=%s conv_seq=%d user=%s", e.Seq, e.Conv, e.ConvSeq, e.User)
	case protocol.KindError:
		return fmt.Sprintf("error cmid=%q %v", e.Cmid, e.Error)
	}
	return fmt.Sprintf("%s seq=%d", e.Kind, e.Seq)
}

// client is what a device needs from an MQTT client library.
type client interface {
	subscribe(filter string) (byte, error)
	publish(topic string, payload []byte, o pubOpts) pubResult
	closeAbruptly()
	disconnect()
	done() <-chan struct{}
}

// device is one connected MQTT client of a user.
type device struct {
	t    *testing.T
	c    client
	v5   bool
	user string
	id   string
	in   protocol.Format // what the device sends: MessagePack for MQTT 5, JSON for 3.1.1

	mu         gosync.Mutex
	log        []event
	glog       []event       // events received on group topics [IM-11.3]
	grew       chan struct{} // closed and replaced whenever log, glog or stray grows
	cursor     int
	waiters    map[string]chan inbound
	stray      []inbound // responses nobody waited for
	unexpected []string  // publishes on topics a device must never receive
	serverDisc chan byte // MQTT 5 DISCONNECT reason codes from the server
	presence   []inbound // live presence publishes (presence_test.go)
}

// dial connects a device of user to n, subscribes it to its inbox and its
// default reply topic (unless noSubscribe), and fails the test on error.
func (dl dialer) dial(t *testing.T, n *testNode, user string, opts ...dialOpt) *device {
	t.Helper()
	d, code, err := dl.tryDial(t, n, user, opts...)
	if err != nil {
		t.Fatalf("%s: connect %s: %v (code %#x)", dl, user, err, code)
	}
	return d
}

// tryDial connects a device and returns the CONNACK code on refusal
// (MQTT 5 reason code or 3.1.1 return code).
func (dl dialer) tryDial(t *testing.T, n *testNode, user string, opts ...dialOpt) (*device, byte, error) {
	t.Helper()
	o := dialOpts{clientID: user + "." + randomID()}
	for _, f := range opts {
		f(&o)
	}
	if o.token == "" && !o.noPassword {
		o.token = token(t, user)
	}
	if o.addr == "" {
		switch {
		case o.ws && o.tls != nil:
			o.addr = n.WSSAddr()
		case o.ws:
			o.addr = n.WSAddr()
		case o.tls != nil:
			o.addr = n.MQTTSAddr()
		default:
			o.addr = n.MQTTAddr()
		}
	}
	if o.noPassword {
		o.token = ""
	}
	d := &device{t: t, v5: dl.v5(), user: user, id: o.clientID, grew: make(chan struct{}),
		waiters: make(map[string]chan inbound), serverDisc: make(chan byte, 4)}
	var code byte
	var err error
	if dl.v5() {
		d.in = protocol.MsgPack
		d.c, code, err = dialV5(d, o)
	} else {
		d.in = protocol.JSON
		d.c, code, err = dialV311(d, o)
	}
	if err != nil {
		return nil, code, err
	}
	t.Cleanup(func() {
		d.c.disconnect()
		d.mu.Lock()
		defer d.mu.Unlock()
		for _, u := range d.unexpected {
			t.Errorf("%s received a publish on a topic it must never receive: %s", d.id, u)
		}
	})
	if !o.noSubscribe {
		if c := d.subscribe(protocol.InboxTopic(user)); c != 1 {
			t.Fatalf("%s: subscribe inbox: granted %#x", d.id, c)
		}
		if c := d.subscribe(d.replyTopic()); c != 1 {
			t.Fatalf("%s: subscribe reply: granted %#x", d.id, c)
		}
	}
	return d, 0, nil
}

func (d *device) replyTopic() string { return protocol.ReplyTopic(d.user, d.id) }

// strays returns the responses received that no request waited for.
func (d *device) strays() []inbound {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]inbound(nil), d.stray...)
}

// receive is called by the client libraries for every publish received.
func (d *device) receive(in inbound) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case in.Topic == protocol.InboxTopic(d.user):
		var ev event
		ev.In = in
		ev.Err = protocol.Decode(in.format(), in.Payload, &ev.Event)
		d.log = append(d.log, ev)
	case strings.HasPrefix(in.Topic, "im/v1/g/"):
		var ev event
		ev.In = in
		ev.Err = protocol.Decode(in.format(), in.Payload, &ev.Event)
		d.glog = append(d.glog, ev)
	case strings.HasPrefix(in.Topic, protocol.ReplyPrefix(d.user)):
		key := d.responseKey(in)
		if ch, ok := d.waiters[key]; ok {
			for k, c := range d.waiters {
				if c == ch {
					delete(d.waiters, k)
				}
			}
			ch <- in
			return
		}
		d.stray = append(d.stray, in)
	case isPresenceTopic(in.Topic):
		d.presence = append(d.presence, in)
	default:
		d.unexpected = append(d.unexpected, fmt.Sprintf("%s %q", in.Topic, in.Payload))
		return
	}
	close(d.grew)
	d.grew = make(chan struct{})
}

// responseKey matches a response to its request: by Correlation Data when
// present (MQTT 5), else by the payload id (3.1.1).
func (d *device) responseKey(in inbound) string {
	if len(in.Correlation) > 0 {
		return "c:" + string(in.Correlation)
	}
	var env struct {
		ID string `json:"id" msgpack:"id"`
	}
	_ = protocol.Decode(in.format(), in.Payload, &env)
	return "i:" + env.ID
}

// subscribe subscribes with QoS 1 and returns the granted code (SUBACK).
func (d *device) subscribe(filter string) byte {
	d.t.Helper()
	code, err := d.c.subscribe(filter)
	if err != nil {
		d.t.Fatalf("%s: subscribe %q: %v", d.id, filter, err)
	}
	return code
}

// publish publishes payload with QoS 1 (unless opts say otherwise) and waits
// for the PUBACK.
func (d *device) publish(topic string, payload []byte, opts ...pubOpt) pubResult {
	d.t.Helper()
	o := pubOpts{qos: 1}
	for _, f := range opts {
		f(&o)
	}
	return d.c.publish(topic, payload, o)
}

// encode encodes v in the device's input format.
func (d *device) encode(v any) []byte {
	d.t.Helper()
	return mustEncode(d.t, d.in, v)
}

// send publishes a send payload and returns the PUBACK.
func (d *device) send(s protocol.Send) pubResult {
	d.t.Helper()
	return d.publish(protocol.SendTopic(d.user), d.encode(&s))
}

// text builds a text send.
func text(cmid, to, body string) protocol.Send {
	return protocol.Send{Cmid: cmid, To: to, Type: protocol.TypeText, Body: map[string]any{"text": body}}
}

// sent is what the sender learns about a stored message.
type sent struct {
	ID       int64
	Conv     string
	Seq      int64
	InboxSeq int64 // MQTT 5: from the PUBACK (0 if absent); 3.1.1: the event's seq
}

// sendOK sends s and fails the test unless it is stored. MQTT 5: the PUBACK
// is 0x00 with the properties of [IM-4.4-2]. 3.1.1: the PUBACK says nothing
// [IM-4.4-6], so the device must be subscribed to its inbox and success is
// the message event with its from and cmid.
func (d *device) sendOK(s protocol.Send) sent {
	d.t.Helper()
	mark := d.mark()
	r := d.send(s)
	if r.Err != nil {
		d.t.Fatalf("%s: send %s: %v", d.id, s.Cmid, r.Err)
	}
	if d.v5 {
		if r.Code != 0 {
			d.t.Fatalf("%s: send %s: PUBACK %#x %q %v", d.id, s.Cmid, r.Code, r.Reason, r.Props)
		}
		return r.sent(d.t)
	}
	ev := d.waitFrom(mark, "outcome of send "+s.Cmid, func(e event) bool {
		return e.Kind == protocol.KindMessage && e.Msg != nil && e.Msg.From == d.user && e.Msg.Cmid == s.Cmid ||
			e.Kind == protocol.KindError && e.Cmid == s.Cmid
	})
	if ev.Kind == protocol.KindError {
		d.t.Fatalf("%s: send %s failed: %v", d.id, s.Cmid, ev.Error)
	}
	return sent{ID: ev.Msg.ID, Conv: ev.Conv, Seq: ev.ConvSeq, InboxSeq: ev.Seq}
}

// sent parses the properties of a success PUBACK [IM-4.4-2].
func (r pubResult) sent(t testing.TB) sent {
	t.Helper()
	var s sent
	var err error
	if s.ID, err = strconv.ParseInt(r.Props["id"], 10, 64); err != nil || s.ID <= 0 {
		t.Fatalf("PUBACK property id %q: %v (props %v)", r.Props["id"], err, r.Props)
	}
	if s.Conv = r.Props["conv"]; s.Conv == "" {
		t.Fatalf("PUBACK without conv: %v", r.Props)
	}
	if s.Seq, err = strconv.ParseInt(r.Props["seq"], 10, 64); err != nil || s.Seq <= 0 {
		t.Fatalf("PUBACK property seq %q: %v", r.Props["seq"], err)
	}
	if v, ok := r.Props["inbox_seq"]; ok {
		if s.InboxSeq, err = strconv.ParseInt(v, 10, 64); err != nil || s.InboxSeq <= 0 {
			t.Fatalf("PUBACK property inbox_seq %q: %v", v, err)
		}
	}
	return s
}

// anyCmid tells expectRefused not to check the cmid of the error event (for
// payloads whose cmid the server may or may not have been able to read).
const anyCmid = "\x00any"

// expectRefused checks how a refused publish was reported: MQTT 5 by the
// PUBACK reason code, Reason String and user property code [IM-4.4-3];
// 3.1.1 by an error event on the device's inbox [IM-4.4-6], [IM-2.2-1]. cmid
// is the cmid the error event must carry ("" for none). mark is d.mark()
// taken before the publish.
func (d *device) expectRefused(mark int, r pubResult, code, cmid string) {
	d.t.Helper()
	if err := d.checkRefused(mark, r, code, cmid); err != nil {
		d.t.Fatal(err)
	}
}

func (d *device) checkRefused(mark int, r pubResult, code, cmid string) error {
	d.t.Helper()
	if r.Err != nil {
		return fmt.Errorf("%s: expected %s, got no PUBACK: %v", d.id, code, r.Err)
	}
	if d.v5 {
		want := (&protocol.Error{Code: code}).Reason()
		if r.Code != want || r.Props["code"] != code || r.Reason != code {
			return fmt.Errorf("%s: expected PUBACK %#x with reason string and property code %q; got %#x reason %q props %v",
				d.id, want, code, r.Code, r.Reason, r.Props)
		}
		return nil
	}
	ev := d.waitFrom(mark, "error event "+code, func(e event) bool { return e.Kind == protocol.KindError })
	if ev.Error == nil || ev.Error.Code != code || ev.Cmid != cmid && cmid != anyCmid || ev.Seq != 0 {
		return fmt.Errorf("%s: expected error event %s with cmid %q, got %v", d.id, code, cmid, ev)
	}
	return nil
}

// mark returns the position of the next inbox event in the device's log.
func (d *device) mark() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.log)
}

// events returns a copy of the inbox events received from position from on.
func (d *device) events(from int) []event {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]event(nil), d.log[from:]...)
}

// waitFrom waits for the first inbox event at or after position from that
// satisfies pred, and returns it.
func (d *device) waitFrom(from int, what string, pred func(event) bool) event {
	d.t.Helper()
	deadline := time.After(waitTimeout)
	for {
		d.mu.Lock()
		for i := from; i < len(d.log); i++ {
			ev := d.log[i]
			if ev.Err != nil {
				d.mu.Unlock()
				d.t.Fatalf("%s: %v", d.id, ev)
			}
			if pred(ev) {
				d.mu.Unlock()
				return ev
			}
		}
		from = max(from, len(d.log))
		grew := d.grew
		d.mu.Unlock()
		select {
		case <-grew:
		case <-deadline:
			d.t.Fatalf("%s: no %s within %v; events: %v", d.id, what, waitTimeout, d.events(0))
		}
	}
}

// next returns the next inbox event the test has not looked at with next.
func (d *device) next() event {
	d.t.Helper()
	d.mu.Lock()
	i := d.cursor
	d.mu.Unlock()
	ev := d.waitFrom(i, "event", func(event) bool { return true })
	d.mu.Lock()
	d.cursor = i + 1
	d.mu.Unlock()
	return ev
}

// nextMessage is next, checked to be a message event.
func (d *device) nextMessage() event {
	d.t.Helper()
	ev := d.next()
	if ev.Kind != protocol.KindMessage || ev.Msg == nil {
		d.t.Fatalf("%s: expected a message event, got %v", d.id, ev)
	}
	return ev
}

// ---------------------------------------------------------------------------
// RPC

// response is an RPC response as received.
type response struct {
	In      inbound
	ID      string
	OK      bool
	Error   *protocol.Error
	Refused *pubResult // set when the request's PUBACK refused it (MQTT 5)
}

// rpc sends a request for method with parameters req and waits for the
// response. MQTT 5 uses Response Topic and Correlation Data [IM-7.1-2];
// 3.1.1 puts id and reply_to into the payload [IM-7.1-3].
func (d *device) rpc(method string, req any) response {
	d.t.Helper()
	id := "r" + randomID()
	if d.v5 {
		return d.rpcPublish(method, d.encode(req), "c:"+id, withResponse(d.replyTopic(), []byte(id)))
	}
	// Add the envelope fields beside the parameters.
	m := map[string]any{}
	b, err := json.Marshal(req)
	if err != nil {
		d.t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		d.t.Fatal(err)
	}
	m["id"], m["reply_to"] = id, d.replyTopic()
	return d.rpcPublish(method, d.encode(m), "i:"+id)
}

// rpcRaw sends payload as is as a request. MQTT 5 adds Response Topic and
// Correlation Data; for 3.1.1 the response goes to the default reply topic
// and is matched by its (absent) id.
func (d *device) rpcRaw(method string, payload []byte, opts ...pubOpt) response {
	d.t.Helper()
	if d.v5 {
		id := "r" + randomID()
		return d.rpcPublish(method, payload, "c:"+id, append([]pubOpt{withResponse(d.replyTopic(), []byte(id))}, opts...)...)
	}
	return d.rpcPublish(method, payload, "i:", opts...)
}

// rpcPublish publishes a request and waits for the response that key
// matches (see responseKey); key may list several "|"-separated keys.
func (d *device) rpcPublish(method string, payload []byte, key string, opts ...pubOpt) response {
	d.t.Helper()
	ch := make(chan inbound, 1)
	keys := strings.Split(key, "|")
	d.mu.Lock()
	for _, k := range keys {
		d.waiters[k] = ch
	}
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		for _, k := range keys {
			delete(d.waiters, k)
		}
		d.mu.Unlock()
	}()
	r := d.publish(protocol.RPCTopic(d.user, method), payload, opts...)
	if r.Err != nil {
		d.t.Fatalf("%s: rpc %s: %v", d.id, method, r.Err)
	}
	if r.Code != 0 {
		return response{Refused: &r}
	}
	select {
	case in := <-ch:
		var resp response
		resp.In = in
		var env struct {
			ID    string          `json:"id" msgpack:"id"`
			OK    bool            `json:"ok" msgpack:"ok"`
			Error *protocol.Error `json:"error" msgpack:"error"`
		}
		if err := protocol.Decode(in.format(), in.Payload, &env); err != nil {
			d.t.Fatalf("%s: rpc %s: undecodable response %q: %v", d.id, method, in.Payload, err)
		}
		resp.ID, resp.OK, resp.Error = env.ID, env.OK, env.Error
		if resp.OK == (resp.Error != nil) {
			d.t.Fatalf("%s: rpc %s: response with ok=%v and error %v", d.id, method, resp.OK, resp.Error)
		}
		return resp
	case <-time.After(waitTimeout):
		d.t.Fatalf("%s: rpc %s: no response within %v", d.id, method, waitTimeout)
	}
	return response{}
}

// call is rpc that decodes the result of a successful response into T.
func call[T any](d *device, method string, req any) T {
	d.t.Helper()
	return decodeResult[T](d.t, method, d.rpc(method, req))
}

func decodeResult[T any](t testing.TB, method string, resp response) T {
	t.Helper()
	var w struct {
		Result T `json:"result" msgpack:"result"`
	}
	if resp.Refused != nil {
		t.Fatalf("rpc %s refused: PUBACK %#x %q", method, resp.Refused.Code, resp.Refused.Reason)
	}
	if !resp.OK {
		t.Fatalf("rpc %s failed: %v", method, resp.Error)
	}
	if err := protocol.Decode(resp.In.format(), resp.In.Payload, &w); err != nil {
		t.Fatalf("rpc %s: decode result: %v", method, err)
	}
	return w.Result
}

// rpcErr sends a request that must fail with code in its response.
func (d *device) rpcErr(method string, req any, code string) {
	d.t.Helper()
	resp := d.rpc(method, req)
	expectErrResponse(d.t, method, resp, code)
}

func expectErrResponse(t testing.TB, method string, resp response, code string) {
	t.Helper()
	if resp.Refused != nil {
		t.Fatalf("rpc %s: expected response %s, request refused with PUBACK %#x", method, code, resp.Refused.Code)
	}
	if resp.OK || resp.Error == nil || resp.Error.Code != code {
		t.Fatalf("rpc %s: expected error %s, got ok=%v error=%v (%.200q)", method, code, resp.OK, resp.Error, resp.In.Payload)
	}
}

// syncAll pages through the user's inbox from after with sync [IM-7.3] and
// returns every event.
func (d *device) syncAll(after int64) []protocol.Event {
	d.t.Helper()
	var all []protocol.Event
	for {
		res := call[protocol.SyncResult](d, protocol.MethodSync, protocol.SyncRequest{After: after, Limit: 100})
		for _, ev := range res.Events {
			if ev.Seq != after+1 {
				d.t.Fatalf("%s: sync after %d returned seq %d: events must be contiguous", d.id, after, ev.Seq)
			}
			after = ev.Seq
			all = append(all, ev)
		}
		if !res.HasMore {
			return all
		}
		if len(res.Events) == 0 {
			d.t.Fatalf("%s: sync returned has_more with no events", d.id)
		}
	}
}

// historyAll returns every message of conv, oldest first, paging forward.
func (d *device) historyAll(conv string) []protocol.Message {
	d.t.Helper()
	var all []protocol.Message
	// The first page: the oldest messages ("after 0" means no bound, so page
	// backward from the newest until the start, then forward).
	var before int64
	for {
		res := call[protocol.HistoryResult](d, protocol.MethodHistory, protocol.HistoryRequest{Conv: conv, Before: before, Limit: 200})
		all = append(append([]protocol.Message(nil), res.Messages...), all...)
		if !res.HasMore || len(res.Messages) == 0 {
			break
		}
		before = res.Messages[0].Seq
	}
	for i, m := range all {
		if m.Seq != int64(i+1) {
			d.t.Fatalf("%s: history of %s: message %d has seq %d", d.id, conv, i, m.Seq)
		}
	}
	return all
}

// expectServerDisconnect waits for the MQTT 5 DISCONNECT from the server
// (paho.golang reports it on a goroutine of its own, maybe after the end of
// the connection) and checks its reason code.
func (d *device) expectServerDisconnect(code byte) {
	d.t.Helper()
	select {
	case c := <-d.serverDisc:
		if c != code {
			d.t.Fatalf("%s: server DISCONNECT %#x, want %#x", d.id, c, code)
		}
	case <-time.After(waitTimeout):
		d.t.Fatalf("%s: no server DISCONNECT (want %#x)", d.id, code)
	}
}

// closeAbruptly drops the connection without DISCONNECT.
func (d *device) closeAbruptly() { d.c.closeAbruptly() }

// disconnect sends DISCONNECT and closes.
func (d *device) disconnect() { d.c.disconnect() }

// ---------------------------------------------------------------------------
// MQTT 5: paho.golang

type v5client struct {
	d    *device
	c    *paho.Client
	conn net.Conn
}

func dialV5(d *device, o dialOpts) (client, byte, error) {
	raw, err := o.connect()
	if err != nil {
		return nil, 0, err
	}
	// paho.golang writes a packet as several Writes (net.Buffers), from
	// more than one goroutine (pinger, acks); only a *net.TCPConn makes
	// them one syscall. Over TLS and WebSocket the packets would interleave
	// unless the conn is a sync.Locker, which paho holds per packet.
	conn := &lockedConn{Conn: raw}
	vc := &v5client{d: d, conn: conn}
	vc.c = paho.NewClient(paho.ClientConfig{
		ClientID:      o.clientID,
		Conn:          conn,
		PacketTimeout: waitTimeout,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			p := pr.Packet
			in := inbound{Topic: p.Topic, Payload: p.Payload}
			if p.Properties != nil {
				in.ContentType, in.Correlation = p.Properties.ContentType, p.Properties.CorrelationData
			}
			d.receive(in)
			return true, nil
		}},
		OnServerDisconnect: func(dc *paho.Disconnect) {
			select {
			case d.serverDisc <- dc.ReasonCode:
			default:
			}
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	cp := &paho.Connect{ClientID: o.clientID, CleanStart: true, KeepAlive: 30,
		Username: d.user, UsernameFlag: d.user != "", Password: []byte(o.token), PasswordFlag: !o.noPassword}
	if o.format != "" || o.receiveMax > 0 {
		cp.Properties = &paho.ConnectProperties{}
	}
	if o.format != "" {
		cp.Properties.User = paho.UserProperties{{Key: "format", Value: o.format}}
	}
	if o.receiveMax > 0 {
		cp.Properties.ReceiveMaximum = &o.receiveMax
	}
	if o.willTopic != "" {
		cp.WillMessage = &paho.WillMessage{Topic: o.willTopic, QoS: 1, Payload: o.willPayload}
	}
	ca, err := vc.c.Connect(ctx, cp)
	if err != nil {
		var code byte
		if ca != nil {
			code = ca.ReasonCode
		}
		conn.Close()
		return nil, code, err
	}
	return vc, 0, nil
}

func (c *v5client) subscribe(filter string) (byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	sa, err := c.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}})
	if sa == nil || len(sa.Reasons) != 1 {
		return 0, fmt.Errorf("no SUBACK: %v", err)
	}
	return sa.Reasons[0], nil
}

func (c *v5client) publish(topic string, payload []byte, o pubOpts) pubResult {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	p := &paho.Publish{Topic: topic, QoS: o.qos, Payload: payload}
	if o.contentType != "" || o.responseTopic != "" || o.correlation != nil {
		p.Properties = &paho.PublishProperties{ContentType: o.contentType, ResponseTopic: o.responseTopic, CorrelationData: o.correlation}
	}
	// paho.golang keeps a publish whose connection is gone waiting until
	// its context ends: stop waiting when the client shuts down.
	type outcome struct {
		pr  *paho.PublishResponse
		err error
	}
	ch := make(chan outcome, 1)
	go func() {
		pr, err := c.c.Publish(ctx, p)
		ch <- outcome{pr, err}
	}()
	var o2 outcome
	select {
	case o2 = <-ch:
	case <-c.c.Done():
		select {
		case o2 = <-ch: // the PUBACK made it before the end
		default:
			return pubResult{Err: errors.New("connection closed")}
		}
	}
	pr, err := o2.pr, o2.err
	if pr == nil {
		if err == nil {
			err = errors.New("no PUBACK")
		}
		return pubResult{Err: err}
	}
	r := pubResult{Code: pr.ReasonCode, Props: map[string]string{}}
	if pr.Properties != nil {
		r.Reason = pr.Properties.ReasonString
		for _, u := range pr.Properties.User {
			if _, dup := r.Props[u.Key]; dup {
				r.Props[u.Key] += "," + u.Value // would show up as a wrong value
				continue
			}
			r.Props[u.Key] = u.Value
		}
	}
	return r
}

func (c *v5client) closeAbruptly() { c.conn.Close() }

func (c *v5client) disconnect() {
	_ = c.c.Disconnect(&paho.Disconnect{})
	<-c.c.Done()
}

func (c *v5client) done() <-chan struct{} { return c.c.Done() }

// ---------------------------------------------------------------------------
// MQTT 3.1.1: paho.mqtt.golang

type v311client struct {
	d      *device
	c      mqtt3.Client
	connMu gosync.Mutex
	conn   net.Conn
	lost   chan struct{}
	once   gosync.Once
}

func dialV311(d *device, o dialOpts) (client, byte, error) {
	vc := &v311client{d: d, lost: make(chan struct{})}
	opts := mqtt3.NewClientOptions().
		SetClientID(o.clientID).SetUsername(d.user).SetPassword(o.token).
		SetProtocolVersion(4).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectRetry(false).
		SetKeepAlive(30 * time.Second).SetPingTimeout(waitTimeout).
		SetConnectTimeout(waitTimeout).SetWriteTimeout(waitTimeout).
		SetOrderMatters(true).
		SetDefaultPublishHandler(func(_ mqtt3.Client, m mqtt3.Message) {
			d.receive(inbound{Topic: m.Topic(), Payload: m.Payload()})
		}).
		SetConnectionLostHandler(func(mqtt3.Client, error) { vc.once.Do(func() { close(vc.lost) }) })
	if o.willTopic != "" {
		opts.SetBinaryWill(o.willTopic, o.willPayload, 1, false)
	}
	switch {
	case o.ws && o.tls != nil:
		opts.AddBroker("wss://" + o.addr + "/mqtt")
		opts.SetTLSConfig(o.tls)
	case o.ws:
		opts.AddBroker("ws://" + o.addr + "/mqtt")
	default:
		opts.AddBroker("tcp://" + o.addr)
		opts.SetCustomOpenConnectionFn(func(*url.URL, mqtt3.ClientOptions) (net.Conn, error) {
			conn, err := o.connect()
			if err == nil {
				vc.connMu.Lock()
				vc.conn = conn
				vc.connMu.Unlock()
			}
			return conn, err
		})
	}
	vc.c = mqtt3.NewClient(opts)
	tok := vc.c.Connect()
	if !tok.WaitTimeout(waitTimeout) {
		return nil, 0, errors.New("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, tok.(*mqtt3.ConnectToken).ReturnCode(), err
	}
	return vc, 0, nil
}

func (c *v311client) subscribe(filter string) (byte, error) {
	tok := c.c.Subscribe(filter, 1, nil)
	if !tok.WaitTimeout(waitTimeout) {
		return 0, errors.New("no SUBACK")
	}
	if err := tok.Error(); err != nil {
		return 0, err
	}
	// One filter, one code (the library keys shared subscriptions by the
	// topic without $share/{group}/).
	res := tok.(*mqtt3.SubscribeToken).Result()
	if len(res) != 1 {
		return 0, fmt.Errorf("SUBACK for %q: %v", filter, res)
	}
	for _, code := range res {
		return code, nil
	}
	return 0, nil
}

func (c *v311client) publish(topic string, payload []byte, o pubOpts) pubResult {
	// paho.mqtt.golang may block in Publish, or leave its token pending,
	// when the connection is lost meanwhile: stop waiting when it is gone.
	toks := make(chan mqtt3.Token, 1)
	go func() { toks <- c.c.Publish(topic, o.qos, false, payload) }()
	var tok mqtt3.Token
	select {
	case tok = <-toks:
	case <-c.lost:
		return pubResult{Err: errors.New("connection lost")}
	}
	select {
	case <-tok.Done():
	case <-c.lost:
		select {
		case <-tok.Done():
		default:
			return pubResult{Err: errors.New("connection lost")}
		}
	case <-time.After(waitTimeout):
		return pubResult{Err: errors.New("no PUBACK within timeout")}
	}
	if err := tok.Error(); err != nil {
		return pubResult{Err: err}
	}
	select {
	case <-c.lost:
		// paho.mqtt.golang completes pending tokens without error when
		// the connection is lost: that is not a PUBACK.
		return pubResult{Err: errors.New("connection lost")}
	default:
	}
	return pubResult{}
}

func (c *v311client) closeAbruptly() {
	c.connMu.Lock()
	conn := c.conn
	c.connMu.Unlock()
	if conn == nil {
		panic("closeAbruptly: not supported over WebSocket")
	}
	// paho.mqtt.golang notices a socket closed under it only at its next
	// keepalive; the server sees the close at once, which is the point.
	conn.Close()
}

func (c *v311client) disconnect() { c.c.Disconnect(0) }

func (c *v311client) done() <-chan struct{} { return c.lost }

// ---------------------------------------------------------------------------
// WebSocket for paho.golang

// wsNetConn is a WebSocket connection as a net.Conn carrying MQTT in binary
// frames [IM-1.1-1].
type wsNetConn struct {
	*websocket.Conn
	wmu gosync.Mutex
	r   io.Reader
}

// lockedConn is a net.Conn that paho.golang locks while it writes a packet.
type lockedConn struct {
	net.Conn
	gosync.Mutex
}

// connect opens the connection a device speaks MQTT over: TCP, TLS, ws or
// wss to o.addr, or o.dial's.
func (o dialOpts) connect() (net.Conn, error) {
	switch {
	case o.dial != nil:
		return o.dial()
	case o.ws:
		return dialWS(o.addr, o.tls)
	case o.tls != nil:
		return tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", o.addr, o.tls)
	}
	return net.DialTimeout("tcp", o.addr, 10*time.Second)
}

// dialWS opens MQTT over WebSocket, over wss with tc.
func dialWS(addr string, tc *tls.Config) (net.Conn, error) {
	dl := websocket.Dialer{Subprotocols: []string{"mqtt"}, HandshakeTimeout: 10 * time.Second, TLSClientConfig: tc}
	scheme := "ws://"
	if tc != nil {
		scheme = "wss://"
	}
	c, resp, err := dl.Dial(scheme+addr+"/mqtt", nil)
	if err != nil {
		return nil, err
	}
	if resp.Header.Get("Sec-WebSocket-Protocol") != "mqtt" {
		c.Close()
		return nil, fmt.Errorf("server chose subprotocol %q, not mqtt", resp.Header.Get("Sec-WebSocket-Protocol"))
	}
	return &wsNetConn{Conn: c}, nil
}

func (c *wsNetConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			op, r, err := c.NextReader()
			if err != nil {
				return 0, err
			}
			if op != websocket.BinaryMessage {
				return 0, fmt.Errorf("websocket: frame type %d, want binary", op)
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n == 0 {
				continue
			}
			return n, nil
		}
		return n, err
	}
}

func (c *wsNetConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *wsNetConn) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}

// ---------------------------------------------------------------------------
// Encoding

func mustEncode(t testing.TB, f protocol.Format, v any) []byte {
	t.Helper()
	b, err := protocol.Encode(f, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameBody compares message bodies after a round trip through an encoding
// (numbers may change type).
func sameBody(a, b map[string]any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}
