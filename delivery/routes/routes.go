// Package routes keeps the cluster's routing table in a NATS KV bucket:
// which devices of which user are connected to which node. It is soft state
// [DESIGN: connections carry no business state]: each node writes the
// entries of its own connections and refreshes them on a heartbeat; the
// bucket's TTL expires the entries of a node that died. A user is online if
// any of their devices has an entry.
//
// A second bucket lists the live nodes and the address clients should use to
// reach each, so a draining node can point its MQTT 5 clients at another
// (DISCONNECT 0x9C with a Server Reference).
//
// Delivery does not depend on this table (delivery/cluster broadcasts), so a stale
// or missing entry costs presence accuracy for at most one TTL, never an
// event.
package routes

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	gosync "sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mqim/mqim/internal/run"
)

const (
	routesBucket = "mqim_routes"
	nodesBucket  = "mqim_nodes"
)

// Config configures a Table. Zero values mean the defaults noted.
type Config struct {
	Node      string        // this node's name, unique in the cluster; required
	Advertise string        // host:port MQTT clients may be sent to; "" = none
	TTL       time.Duration // entry lifetime without refresh; zero: 30 s
	Replicas  int           // KV replicas; zero: 1
	Log       *slog.Logger
	// TakenOver is called when another node now holds a device connected
	// here (same client id): the local connection must go [MQTT-3.1.4-2].
	TakenOver func(user, client string)
	// Changed, if set, is called when a user comes online (its first
	// device anywhere) or goes offline (its last), in the order the table
	// learns it, from a goroutine of its own (a backlog over 4,096 changes
	// is dropped: presence subscribers also read the presence RPC).
	Changed func(user string, online bool)
}

// Entry is one device's route.
type Entry struct {
	Node  string `json:"node"`
	Since int64  `json:"since"` // unix ms of the connect
}

type gone struct {
	key string
	rev uint64
}

type local struct {
	user, client string
	owner        any // the connection, so that a stale Offline is ignored
	entry        Entry
	rev          uint64 // revision of our last put; 0 if none succeeded
}

// Table is a node's view of, and contribution to, the routing table.
type Table struct {
	cfg Config
	js  jetstream.JetStream
	log *slog.Logger

	mu     gosync.Mutex
	kv     jetstream.KeyValue // nil until the bucket is reachable
	nodes  jetstream.KeyValue
	locals map[string]*local           // key → our connection
	gone   []gone                      // our entries to delete
	users  map[string]map[string]Entry // user → key → entry, from the watch
	peers  map[string]string           // node → advertised address

	kick    chan struct{}
	changes chan change // for cfg.Changed, in order
	ctx     context.Context
	cancel  context.CancelFunc
	loops   run.Group
}

// New returns a Table on nc; Start starts it.
func New(nc *nats.Conn, cfg Config) (*Table, error) {
	if cfg.Node == "" {
		return nil, errors.New("routes: node name required")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 30 * time.Second
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	return &Table{
		cfg: cfg, js: js, log: cfg.Log,
		locals:  map[string]*local{},
		users:   map[string]map[string]Entry{},
		peers:   map[string]string{},
		kick:    make(chan struct{}, 1),
		changes: make(chan change, 4096),
	}, nil
}

// Key is the KV key of a device: user id and client id in unpadded
// base64url, joined by a dot (ids may hold characters KV keys may not).
func Key(user, client string) string {
	return b64.EncodeToString([]byte(user)) + "." + b64.EncodeToString([]byte(client))
}

var b64 = base64.RawURLEncoding

func parseKey(key string) (user, client string, ok bool) {
	u, c, ok := strings.Cut(key, ".")
	if !ok {
		return "", "", false
	}
	ub, err1 := b64.DecodeString(u)
	cb, err2 := b64.DecodeString(c)
	if err1 != nil || err2 != nil {
		return "", "", false
	}
	return string(ub), string(cb), true
}

// Start opens the buckets (retrying in the background while NATS is
// unavailable), and starts the heartbeat and the watch.
func (t *Table) Start(context.Context) error {
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.loops.Go(t.run)
	if t.cfg.Changed != nil {
		t.loops.Go(t.notifyLoop)
	}
	return nil
}

// Online records that client of user connected here. owner identifies the
// connection: Offline with another owner does not remove the entry.
func (t *Table) Online(user, client string, owner any) {
	t.mu.Lock()
	t.locals[Key(user, client)] = &local{user: user, client: client, owner: owner,
		entry: Entry{Node: t.cfg.Node, Since: time.Now().UnixMilli()}}
	t.mu.Unlock()
	t.poke()
}

// Offline removes the entry of client of user if owner still holds it. It
// does not wait for NATS.
func (t *Table) Offline(user, client string, owner any) {
	key := Key(user, client)
	t.mu.Lock()
	l, ok := t.locals[key]
	if ok && l.owner == owner {
		delete(t.locals, key)
		if l.rev != 0 {
			t.gone = append(t.gone, gone{key, l.rev})
		}
	}
	t.mu.Unlock()
	t.poke()
}

// UserOnline reports whether any device of user is connected to any node,
// as far as this node has heard.
func (t *Table) UserOnline(user string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.users[user]) > 0
}

// Devices returns the routes of user's devices: client id → entry.
func (t *Table) Devices(user string) map[string]Entry {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]Entry, len(t.users[user]))
	for k, e := range t.users[user] {
		if _, c, ok := parseKey(k); ok {
			out[c] = e
		}
	}
	return out
}

// Peers returns the advertised addresses of the other live nodes, sorted.
func (t *Table) Peers() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for n, a := range t.peers {
		if n != t.cfg.Node && a != "" {
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out
}

// Nodes returns the live nodes (this one included) and their advertised
// addresses.
func (t *Table) Nodes() map[string]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]string, len(t.peers))
	for n, a := range t.peers {
		out[n] = a
	}
	return out
}

// Shutdown stops the loops (waiting for them until ctx ends) and removes
// this node's entries and its node record (those left expire by TTL).
func (t *Table) Shutdown(ctx context.Context) error {
	if t.cancel == nil {
		return nil
	}
	t.cancel()
	var err error
	if werr := t.loops.Wait(ctx); werr != nil {
		err = fmt.Errorf("routes: %w", werr)
	}
	t.mu.Lock()
	kv, nodes := t.kv, t.nodes
	dels := t.gone
	for k, l := range t.locals {
		if l.rev != 0 {
			dels = append(dels, gone{k, l.rev})
		}
	}
	t.locals, t.gone = map[string]*local{}, nil
	t.mu.Unlock()
	if kv == nil {
		return err
	}
	for _, g := range dels {
		_ = kv.Delete(ctx, g.key, jetstream.LastRevision(g.rev))
	}
	_ = nodes.Delete(ctx, t.cfg.Node)
	return err
}

func (t *Table) poke() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

func (t *Table) run() {
	backoff := 100 * time.Millisecond
	for {
		if err := t.open(); err != nil {
			t.log.Warn("routing table unavailable; presence is unknown until NATS is back", "error", err)
			select {
			case <-t.ctx.Done():
				return
			case <-time.After(backoff):
				backoff = min(2*backoff, 5*time.Second)
				continue
			}
		}
		break
	}
	t.loops.Go(func() { t.watchLoop(routesBucket, t.kv, t.applyRoute) })
	t.loops.Go(func() { t.watchLoop(nodesBucket, t.nodes, t.applyNode) })

	heartbeat := time.NewTicker(t.cfg.TTL / 3)
	defer heartbeat.Stop()
	t.refresh(true)
	for {
		t.refresh(false)
		select {
		case <-t.ctx.Done():
			return
		case <-t.kick:
		case <-heartbeat.C:
			t.refresh(true)
		}
	}
}

func (t *Table) open() error {
	ctx, cancel := context.WithTimeout(t.ctx, 5*time.Second)
	defer cancel()
	kv, err := t.bucket(ctx, routesBucket, t.cfg.TTL)
	if err != nil {
		return err
	}
	nodes, err := t.bucket(ctx, nodesBucket, t.cfg.TTL)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.kv, t.nodes = kv, nodes
	t.mu.Unlock()
	return nil
}

// bucket opens a bucket whose entries expire after ttl. Expired keys
// leave a delete marker (where the server supports it), so watchers hear
// that a crashed node's devices went away.
func (t *Table) bucket(ctx context.Context, name string, ttl time.Duration) (jetstream.KeyValue, error) {
	cfg := jetstream.KeyValueConfig{
		Bucket: name, TTL: ttl, History: 1, Storage: jetstream.FileStorage,
		Replicas: t.cfg.Replicas, LimitMarkerTTL: ttl,
	}
	kv, err := t.js.CreateOrUpdateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrLimitMarkerTTLNotSupported) {
		cfg.LimitMarkerTTL = 0
		kv, err = t.js.CreateOrUpdateKeyValue(ctx, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("open KV bucket %s: %w", name, err)
	}
	return kv, nil
}

// refresh writes this node's record and its devices' entries: all of them
// on a heartbeat, else only those never written.
func (t *Table) refresh(all bool) {
	t.mu.Lock()
	kv, nodes := t.kv, t.nodes
	var todo []*local
	for _, l := range t.locals {
		if all || l.rev == 0 {
			todo = append(todo, l)
		}
	}
	dels := t.gone
	t.gone = nil
	t.mu.Unlock()
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.TTL/3)
	defer cancel()
	// Only our own write is deleted: another node may hold the device now.
	for _, g := range dels {
		if err := kv.Delete(ctx, g.key, jetstream.LastRevision(g.rev)); err != nil {
			t.log.Debug("remove route", "key", g.key, "error", err)
		}
	}
	if all {
		rec, _ := json.Marshal(map[string]string{"addr": t.cfg.Advertise})
		if _, err := nodes.Put(ctx, t.cfg.Node, rec); err != nil {
			t.log.Debug("node heartbeat", "error", err)
		}
	}
	for _, l := range todo {
		val, _ := json.Marshal(l.entry)
		rev, err := kv.Put(ctx, Key(l.user, l.client), val)
		if err != nil {
			t.log.Debug("write route", "user", l.user, "client", l.client, "error", err)
			continue
		}
		t.mu.Lock()
		if t.locals[Key(l.user, l.client)] == l {
			l.rev = rev
		}
		t.mu.Unlock()
	}
}

// watchLoop keeps the local view of a bucket, re-watching after errors.
func (t *Table) watchLoop(name string, kv jetstream.KeyValue, apply func(jetstream.KeyValueEntry)) {
	for t.ctx.Err() == nil {
		w, err := kv.WatchAll(t.ctx)
		if err != nil {
			t.log.Debug("watch", "bucket", name, "error", err)
			select {
			case <-t.ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		for e := range w.Updates() {
			if e != nil { // nil marks the end of the initial values
				apply(e)
			}
		}
		_ = w.Stop()
	}
}

func (t *Table) applyRoute(e jetstream.KeyValueEntry) {
	user, _, ok := parseKey(e.Key())
	if !ok {
		return
	}
	t.mu.Lock()
	was := len(t.users[user]) > 0
	t.applyRouteLocked(e)
	now := len(t.users[user]) > 0
	t.mu.Unlock()
	if was != now && t.cfg.Changed != nil {
		// Off the watch goroutine: Changed may be slow (it publishes, and
		// checks each subscriber's right to see it), and the watch keeps
		// takeovers and presence current.
		select {
		case t.changes <- change{user, now}:
		default:
			t.log.Warn("presence change dropped: too many pending", "user", user)
		}
	}
}

type change struct {
	user   string
	online bool
}

func (t *Table) notifyLoop() {
	for {
		select {
		case <-t.ctx.Done():
			return
		case c := <-t.changes:
			t.cfg.Changed(c.user, c.online)
		}
	}
}

func (t *Table) applyRouteLocked(e jetstream.KeyValueEntry) {
	user, client, ok := parseKey(e.Key())
	if !ok {
		return
	}
	if e.Operation() != jetstream.KeyValuePut {
		if m := t.users[user]; m != nil {
			delete(m, e.Key())
			if len(m) == 0 {
				delete(t.users, user)
			}
		}
		return
	}
	var ent Entry
	if json.Unmarshal(e.Value(), &ent) != nil {
		return
	}
	m := t.users[user]
	if m == nil {
		m = map[string]Entry{}
		t.users[user] = m
	}
	m[e.Key()] = ent
	// Another node connected the same device after ours did: ours is stale.
	if l, ok := t.locals[e.Key()]; ok && ent.Node != t.cfg.Node && ent.Since >= l.entry.Since && t.cfg.TakenOver != nil {
		delete(t.locals, e.Key())
		go t.cfg.TakenOver(user, client)
	}
}

func (t *Table) applyNode(e jetstream.KeyValueEntry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(t.peers, e.Key())
		return
	}
	var rec struct {
		Addr string `json:"addr"`
	}
	_ = json.Unmarshal(e.Value(), &rec)
	t.peers[e.Key()] = rec.Addr
}
