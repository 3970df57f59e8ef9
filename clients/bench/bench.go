// Package bench is mqim's load generator. It drives a server over MQTT 5
// (paho.golang) the way devices would and measures what a device sees:
// publishes acknowledged per second, events delivered per second,
// send-to-deliver latency, and whether anything acknowledged was lost or
// delivered twice.
//
// The 1:1 scenario (Run1to1) pairs sender i (user bs{i}) with receiver i
// (user br{i}): each sender connection keeps Inflight QoS 1 publishes in
// flight to its receiver, which has one connection subscribed to its inbox.
// The same load can run against a bare mochi broker (package bare), the
// ceiling the IM server is compared with.
//
// The sync scenario (RunSync) times an offline device pulling N missed
// events; the conns scenario (RunConns) measures the server's memory per
// idle connection; the group scenario (RunGroup, group.go) measures
// fan-out to the members of one group; the push scenario (RunPush,
// push.go) measures offline push to a webhook receiver in this process and
// its cost to the send rate. Reference brokers run in-process
// (bare.Start, in tests) or as child processes (StartBareProcess with
// cmd/mqim-bare, StartMosquitto),
// and results go to a file (AppendResults) that Report turns into Markdown
// tables and SVG charts (BarChart).
//
// Every message body is a text stamped with the run id, the pair, a
// per-pair sequence number and the send time (see stamp.go); receivers
// parse it back, so latency is measured from just before Publish to the
// receiver's handler, on one clock.
package bench

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// Config is the load of one run. Zero values mean the defaults noted.
type Config struct {
	Senders  int           // sending connections, each with its own receiver; zero: 10
	Inflight int           // QoS 1 publishes in flight per sender connection; zero: 1
	Rate     float64       // total publishes per second, paced; zero: as fast as possible
	Duration time.Duration // how long to send; zero: 10s (ignored when Messages is set)
	Messages int           // send this many messages in total instead of running for Duration
	Size     int           // bytes of message text; zero: 200 (at least the stamp, ~40 bytes)
	Drain    time.Duration // after sending, wait at most this long for PUBACKs and deliveries; zero: 5s
	Progress io.Writer     // one line per second while sending; nil: none

	// ReceiveMaximum, when positive, is announced in every CONNECT. By
	// default none is, which in MQTT 5 means 65535, above any Inflight.
	// mochi v2.7.9 can deadlock a client that announces one (see
	// docs/BENCHMARKS.md): this knob reproduces it.
	ReceiveMaximum int

	Members int // the group scenario: members of the group; zero: 100
}

// Defaults of Config.
const (
	DefaultSenders  = 10
	DefaultInflight = 1
	DefaultDuration = 10 * time.Second
	DefaultSize     = 200
	DefaultDrain    = 5 * time.Second
)

func (c *Config) setDefaults() error {
	if c.Senders == 0 {
		c.Senders = DefaultSenders
	}
	if c.Inflight == 0 {
		c.Inflight = DefaultInflight
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Size == 0 {
		c.Size = DefaultSize
	}
	if c.Drain == 0 {
		c.Drain = DefaultDrain
	}
	switch {
	case c.Senders < 0:
		return errors.New("bench: senders must be positive")
	case c.Inflight < 0 || c.Inflight > 65535:
		return errors.New("bench: inflight must be 1..65535")
	case c.Rate < 0:
		return errors.New("bench: rate must not be negative")
	case c.Duration < 0 || c.Messages < 0 || c.Drain < 0:
		return errors.New("bench: duration, messages and drain must not be negative")
	case c.ReceiveMaximum < 0 || c.ReceiveMaximum > 65535:
		return errors.New("bench: receive maximum must be 0..65535")
	case c.Size < 0 || c.Size > 1<<20:
		return fmt.Errorf("bench: size must be 0..%d", 1<<20)
	}
	return nil
}

// Summary is the outcome of one run against one target. The JSON names
// are the ones `mqim bench --json` prints.
type Summary struct {
	Scenario        string  `json:"scenario"`
	Target          string  `json:"target"`
	Senders         int     `json:"senders"`
	Inflight        int     `json:"inflight"`
	Rate            float64 `json:"rate"`
	DurationS       float64 `json:"duration_s"` // the measured sending window
	Size            int     `json:"size"`
	MsgsPerSec      float64 `json:"msgs_per_sec"`      // successful PUBACKs per second in the window
	DeliveredPerSec float64 `json:"delivered_per_sec"` // first deliveries per second in the window
	P50ms           float64 `json:"p50_ms"`
	P99ms           float64 `json:"p99_ms"`
	P999ms          float64 `json:"p999_ms"`
	Acked           int64   `json:"acked"`     // successful PUBACKs, the window's tail included
	Delivered       int64   `json:"delivered"` // distinct messages delivered
	Errors          int64   `json:"errors"`    // failed publishes: PUBACK reason ≥ 0x80, timeouts, lost connections
	Lost            int64   `json:"lost"`      // acknowledged, never delivered by the end of the drain
	Duplicates      int64   `json:"duplicates"`
	FirstError      string  `json:"first_error,omitempty"`

	// The group scenario only: MsgsPerSec and DeliveredPerSec count
	// deliveries (a message times the members that got it) per second.
	Members    int    `json:"members,omitempty"`
	Fanout     string `json:"fanout,omitempty"`       // mqimd: the group's fan-out model, "write" or "read"
	OutOfOrder int64  `json:"out_of_order,omitempty"` // deliveries of a message older than one the member had seen

	// The push scenario only.
	Push       string `json:"push,omitempty"`       // "on": recipients with a registration; "off": without
	Round      int    `json:"round,omitempty"`      // the unpaced runs' round (push on and off alternate); 0: the paced run
	Recipients int    `json:"recipients,omitempty"` // offline recipients

	// The conns scenario only.
	Conns        int     `json:"conns,omitempty"`          // idle connections open when memory was read
	BytesPerConn float64 `json:"bytes_per_conn,omitempty"` // growth of the server's RSS per connection
	HeapPerConn  float64 `json:"heap_per_conn,omitempty"`  // growth of its Go heap in use per connection, when known
	StackPerConn float64 `json:"stack_per_conn,omitempty"` // growth of its goroutine stacks per connection, when known
	RSSBefore    int64   `json:"rss_before,omitempty"`     // server RSS before connecting, bytes
	RSSAfter     int64   `json:"rss_after,omitempty"`      // server RSS with the connections open, bytes
}
