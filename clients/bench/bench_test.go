package bench

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mqim/mqim/internal/testdeps"
)

func TestStampRoundTrip(t *testing.T) {
	in := stamp{run: "0a1b2c3d", pair: 7, seq: 123456, sent: 987654321 * time.Nanosecond}
	for _, size := range []int{0, 10, 40, 200, 4096} {
		text := string(in.appendText(nil, size))
		if size > 40 && len(text) != size {
			t.Errorf("size %d: text is %d bytes", size, len(text))
		}
		out, err := parseStamp(text)
		if err != nil || out != in {
			t.Errorf("size %d: parse(%q) = %+v, %v; want %+v", size, text, out, err, in)
		}
	}
	for _, bad := range []string{"", "x", "r 1 2", "r a 2 3 ", "r 1 -2 3 ", "hello world how are you"} {
		if _, err := parseStamp(bad); err == nil {
			t.Errorf("parse(%q) succeeded", bad)
		}
	}
}

func TestPairAccounting(t *testing.T) {
	var c counters
	var p pair
	p.ack(0, &c)
	p.deliver(0, time.Millisecond, &c)
	p.deliver(1, 2*time.Millisecond, &c) // delivered before its PUBACK arrived
	p.ack(1, &c)
	p.ack(5000, &c)                      // never delivered: lost
	p.deliver(0, time.Second, &c)        // duplicate
	p.deliver(7, 3*time.Millisecond, &c) // delivered, publish failed
	if got := [...]int64{c.acked.Load(), c.delivered.Load(), c.duplicates.Load(), c.outstanding.Load()}; got != [...]int64{3, 3, 1, 1} {
		t.Errorf("acked, delivered, duplicates, outstanding = %v; want [3 3 1 1]", got)
	}
	lat := latencies([]*pair{&p})
	if len(lat) != 3 || lat[0] != time.Millisecond || lat[2] != 3*time.Millisecond {
		t.Errorf("latencies = %v", lat)
	}
}

func TestQuantile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 1000; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for q, want := range map[float64]time.Duration{0.5: 500 * time.Millisecond, 0.99: 990 * time.Millisecond, 0.999: 999 * time.Millisecond, 1: time.Second} {
		if got := quantile(d, q); got != want {
			t.Errorf("quantile(%v) = %v; want %v", q, got, want)
		}
	}
	if quantile(nil, 0.5) != 0 {
		t.Error("quantile of nothing is not 0")
	}
}

func TestParseServer(t *testing.T) {
	for in, want := range map[string]string{
		"mqtt://127.0.0.1:21883": "127.0.0.1:21883",
		"tcp://host:1":           "host:1",
		"localhost":              "localhost:1883",
		"mqtt://[::1]:1884/":     "[::1]:1884",
	} {
		if got, err := ParseServer(in); err != nil || got != want {
			t.Errorf("ParseServer(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseServer("ws://host:8083"); err == nil {
		t.Error("ws:// accepted")
	}
}

// TestMosquitto runs every scenario briefly against Mosquitto, when it is
// installed (Debian package mosquitto); skipped otherwise, but failed under
// scripts/test and CI (testdeps.Required).
func TestMosquitto(t *testing.T) {
	m, err := StartMosquitto()
	if errors.Is(err, ErrNoMosquitto) {
		testdeps.Missing(t, err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	}()
	tg := m.Target()
	s, err := Run1to1(context.Background(), tg, Config{Senders: 2, Inflight: 4, Messages: 400})
	if err != nil || s.Target != "mosquitto" || s.Acked != 400 || s.Delivered != 400 || s.Lost != 0 {
		t.Errorf("1to1: %+v, %v", s, err)
	}
	s, err = RunSync(context.Background(), tg, Config{Senders: 2, Inflight: 4, Messages: 300})
	if err != nil || s.Delivered != 300 || s.Lost != 0 || s.Duplicates != 0 {
		t.Errorf("sync: %+v, %v", s, err)
	}
	s, err = RunConns(context.Background(), tg, ConnsConfig{Conns: 30, Settle: 10 * time.Millisecond})
	if err != nil || s.Conns != 30 || s.RSSAfter <= 0 {
		t.Errorf("conns: %+v, %v", s, err)
	}
}
