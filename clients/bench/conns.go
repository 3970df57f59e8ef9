package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"golang.org/x/sync/errgroup"

	"github.com/mqim/mqim/protocol"
)

// Defaults of ConnsConfig.
const (
	DefaultConns       = 1000
	DefaultSettle      = 3 * time.Second
	DefaultSourceAddrs = 8
	connsParallelism   = 64
	idleKeepAlive      = 1800 // seconds: no PINGREQ is needed during a run
)

// ConnsConfig is the load of the conns scenario.
type ConnsConfig struct {
	Conns  int           // idle connections to open; zero: DefaultConns
	Settle time.Duration // after connecting, wait this long before reading memory; zero: DefaultSettle
	// SourceAddrs spreads the connections over this many source addresses
	// 127.0.0.2, 127.0.0.3, … when the target is on loopback (each source
	// address has its own ephemeral ports); zero: DefaultSourceAddrs;
	// negative: let the kernel choose.
	SourceAddrs int
	Progress    io.Writer // one line per second while connecting; nil: none
}

// Mem is a server's memory at one moment.
type Mem struct {
	RSS   int64 // resident set size, bytes
	Heap  int64 // Go heap in use, bytes; 0 when unknown (not a Go server)
	Stack int64 // Go stacks in use, bytes; 0 when unknown
}

// ProcMemory reads the resident set size of process pid from /proc.
func ProcMemory(pid int) func() (Mem, error) {
	return func() (Mem, error) {
		rss, err := vmRSS(fmt.Sprintf("/proc/%d/status", pid))
		return Mem{RSS: rss}, err
	}
}

func vmRSS(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read memory: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("read memory: %s: %q", path, line)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("read memory: no VmRSS in %s", path)
}

// MetricsMemory reads mqimd's memory from its Prometheus endpoint (e.g.
// http://127.0.0.1:8080/metrics): process_resident_memory_bytes and
// go_memstats_heap_inuse_bytes and go_memstats_stack_inuse_bytes.
func MetricsMemory(url string) func() (Mem, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	return func() (Mem, error) {
		resp, err := client.Get(url)
		if err != nil {
			return Mem{}, fmt.Errorf("read memory: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return Mem{}, fmt.Errorf("read memory: %s: %s", url, resp.Status)
		}
		var m Mem
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			name, value, ok := strings.Cut(sc.Text(), " ")
			if !ok {
				continue
			}
			var dst *int64
			switch name {
			case "process_resident_memory_bytes":
				dst = &m.RSS
			case "go_memstats_heap_inuse_bytes":
				dst = &m.Heap
			case "go_memstats_stack_inuse_bytes":
				dst = &m.Stack
			default:
				continue
			}
			f, err := strconv.ParseFloat(value, 64)
			if err != nil {
				return Mem{}, fmt.Errorf("read memory: %s: %q", url, sc.Text())
			}
			*dst = int64(f)
		}
		if err := sc.Err(); err != nil {
			return Mem{}, fmt.Errorf("read memory: %w", err)
		}
		if m.RSS == 0 {
			return Mem{}, fmt.Errorf("read memory: %s has no process_resident_memory_bytes", url)
		}
		return m, nil
	}
}

// RunConns runs the idle-connections scenario against t, whose Memory
// must be set: it reads the server's memory, opens cfg.Conns MQTT 5
// connections (user bc{i}, each subscribed to its inbox on mqimd, to
// bench/c/{i} on a plain broker, keepalive 30 min), waits cfg.Settle,
// reads the memory again and closes them. The connections are raw sockets
// with no goroutine of their own, so the generator stays small.
//
// In the summary, conns is the connections that were open at the second
// reading, bytes_per_conn the growth of the server's resident memory
// divided by them (heap_per_conn the same for its Go heap, when known),
// msgs_per_sec the connections established per second, and p50/p99/p999
// the times from dialling to the SUBACK.
func RunConns(ctx context.Context, t Target, cfg ConnsConfig) (*Summary, error) {
	if cfg.Conns == 0 {
		cfg.Conns = DefaultConns
	}
	if cfg.Settle == 0 {
		cfg.Settle = DefaultSettle
	}
	if cfg.SourceAddrs == 0 {
		cfg.SourceAddrs = DefaultSourceAddrs
	}
	if cfg.Conns < 0 || cfg.Settle < 0 {
		return nil, errors.New("bench: conns and settle must not be negative")
	}
	if t.Memory == nil {
		return nil, fmt.Errorf("bench conns %s: no way to read the server's memory (give --metrics or --pid)", t.Name)
	}
	id, err := runID()
	if err != nil {
		return nil, err
	}
	before, err := t.Memory()
	if err != nil {
		return nil, fmt.Errorf("bench conns %s: %w", t.Name, err)
	}
	var (
		open   atomic.Int64
		errs   atomic.Int64
		mu     gosync.Mutex
		conns  = make([]net.Conn, 0, cfg.Conns)
		lat    = make([]time.Duration, 0, cfg.Conns)
		first  error
		start  = time.Now()
		dialer = sourceDialers(t.Addr, cfg.SourceAddrs)
	)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	progressCtx, stopProgress := context.WithCancel(ctx)
	var progress gosync.WaitGroup
	if cfg.Progress != nil {
		progress.Go(func() {
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-progressCtx.Done():
					return
				case now := <-tick.C:
					fmt.Fprintf(cfg.Progress, "[%s] %5.1fs open %d of %d, errors %d\n", t.Name, now.Sub(start).Seconds(), open.Load(), cfg.Conns, errs.Load())
				}
			}
		})
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(connsParallelism)
	for i := range cfg.Conns {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			t0 := time.Now()
			c, err := t.idleConn(gctx, dialer[i%len(dialer)], i, id)
			if err != nil {
				errs.Add(1)
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
				return nil
			}
			d := time.Since(t0)
			open.Add(1)
			mu.Lock()
			conns = append(conns, c)
			lat = append(lat, d)
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
	connectTime := time.Since(start)
	// Settle, then read: a server that drops idle connections shows it.
	settle := time.NewTimer(cfg.Settle)
	defer settle.Stop()
	select {
	case <-settle.C:
	case <-ctx.Done():
	}
	stopProgress()
	progress.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	after, err := t.Memory()
	if err != nil {
		return nil, fmt.Errorf("bench conns %s: %w", t.Name, err)
	}
	alive := stillOpen(conns)
	slices.Sort(lat)
	s := &Summary{
		Scenario: "conns", Target: t.Name,
		DurationS:  connectTime.Seconds(),
		MsgsPerSec: float64(len(conns)) / connectTime.Seconds(),
		P50ms:      ms(quantile(lat, 0.50)),
		P99ms:      ms(quantile(lat, 0.99)),
		P999ms:     ms(quantile(lat, 0.999)),
		Errors:     errs.Load() + int64(len(conns)-alive),
		Conns:      alive,
		RSSBefore:  before.RSS,
		RSSAfter:   after.RSS,
	}
	if alive > 0 {
		s.BytesPerConn = float64(after.RSS-before.RSS) / float64(alive)
		if after.Heap > 0 {
			s.HeapPerConn = float64(after.Heap-before.Heap) / float64(alive)
			s.StackPerConn = float64(after.Stack-before.Stack) / float64(alive)
		}
	}
	if first != nil {
		s.FirstError = first.Error()
	} else if alive < len(conns) {
		s.FirstError = fmt.Sprintf("%d connections were closed by the server while idle", len(conns)-alive)
	}
	return s, nil
}

// sourceDialers are dialers bound to n loopback source addresses when addr
// is on loopback, else the one default dialer.
func sourceDialers(addr string, n int) []*net.Dialer {
	host, _, _ := net.SplitHostPort(addr)
	ip := net.ParseIP(host)
	if n < 0 || ip == nil || ip.To4() == nil || !ip.IsLoopback() {
		return []*net.Dialer{{}}
	}
	ds := make([]*net.Dialer, n)
	for i := range ds {
		ds[i] = &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i))}}
	}
	return ds
}

// idleConn opens connection i: CONNECT, CONNACK, SUBSCRIBE, SUBACK.
func (t Target) idleConn(ctx context.Context, d *net.Dialer, i int, run string) (net.Conn, error) {
	user := "bc" + strconv.Itoa(i)
	c, err := d.DialContext(ctx, "tcp", t.addr(i, false))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", user, err)
	}
	fail := func(err error) (net.Conn, error) {
		c.Close()
		return nil, fmt.Errorf("%s: %w", user, err)
	}
	_ = c.SetDeadline(time.Now().Add(packetTimeout))
	username, password, err := t.credentials(user)
	if err != nil {
		return fail(err)
	}
	cp := &packets.Connect{
		ProtocolName: "MQTT", ProtocolVersion: 5, KeepAlive: idleKeepAlive, CleanStart: true,
		ClientID: user + "." + run, Username: username, UsernameFlag: username != "",
		Password: password, PasswordFlag: password != nil, Properties: &packets.Properties{},
	}
	if _, err := cp.WriteTo(c); err != nil {
		return fail(fmt.Errorf("CONNECT: %w", err))
	}
	r := bufio.NewReaderSize(c, 256)
	pkt, err := packets.ReadPacket(r)
	if err != nil {
		return fail(fmt.Errorf("CONNACK: %w", err))
	}
	ca, ok := pkt.Content.(*packets.Connack)
	if !ok || ca.ReasonCode != 0 {
		return fail(fmt.Errorf("CONNACK: refused: %v", pkt))
	}
	topic := "bench/c/" + strconv.Itoa(i)
	if t.im {
		topic = protocol.InboxTopic(user)
	}
	sp := &packets.Subscribe{PacketID: 1, Properties: &packets.Properties{},
		Subscriptions: []packets.SubOptions{{Topic: topic, QoS: 1}}}
	if _, err := sp.WriteTo(c); err != nil {
		return fail(fmt.Errorf("SUBSCRIBE: %w", err))
	}
	pkt, err = packets.ReadPacket(r)
	if err != nil {
		return fail(fmt.Errorf("SUBACK: %w", err))
	}
	sa, ok := pkt.Content.(*packets.Suback)
	if !ok || len(sa.Reasons) != 1 || sa.Reasons[0] >= 0x80 {
		return fail(fmt.Errorf("SUBACK: refused: %v", pkt))
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// stillOpen counts the connections the server has not closed: a short
// read times out on an open idle socket and fails with EOF or a reset on
// a closed one.
func stillOpen(conns []net.Conn) int {
	var n atomic.Int64
	var g errgroup.Group
	g.SetLimit(256)
	for _, c := range conns {
		g.Go(func() error {
			var b [1]byte
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			_, err := c.Read(b[:])
			var ne net.Error
			if err == nil || errors.As(err, &ne) && ne.Timeout() {
				n.Add(1)
			}
			return nil
		})
	}
	_ = g.Wait()
	return int(n.Load())
}
