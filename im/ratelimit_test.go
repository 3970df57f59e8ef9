package im

import (
	"context"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mqim/mqim/internal/ratelimit"
	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/protocol/authtoken"
)

// slow is a bucket that does not refill within a test.
func slow(burst int) ratelimit.Limit { return ratelimit.Limit{Rate: 0.001, Burst: burst} }

// withLimits replaces c's limits; their metrics go to the registry returned.
func withLimits(c *core, l Limits) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	c.limits = newLimiter(l, slog.Default(), reg)
	return reg
}

// Sends over a session's or a user's limit are refused rate_limited (0x97,
// with when to retry) and not stored; the retry of a stored send is never
// limited; other users, and bridges, are not limited by them [IM-1.3-6].
func TestSendRateLimits(t *testing.T) {
	c := newCore(t, true, "alice", "bob", "carol")
	reg := withLimits(c, Limits{ConnSends: slow(3), UserSends: slow(5)})
	phone, laptop := session("alice"), &Session{User: "alice", Client: "alice-laptop", Format: protocol.JSON}
	var stored []SendOutcome
	for _, cmid := range []string{"p1", "p2", "p3"} {
		o := c.send(t, phone, text(cmid, "bob", "hi"))
		if o.Err != nil {
			t.Fatalf("%s within the burst: %v", cmid, o.Err)
		}
		stored = append(stored, o)
	}
	refused := func(o SendOutcome, cmid string) {
		t.Helper()
		if o.Err == nil || o.Err.Code != protocol.CodeRateLimited || o.Err.Reason() != protocol.ReasonQuotaExceeded ||
			o.Err.RetryAfterMs <= 0 || o.Cmid != cmid {
			t.Fatalf("%s: %+v (%v); want rate_limited with a retry after", cmid, o, o.Err)
		}
		if ok, err := c.store.Stored(context.Background(), "alice", cmid); err != nil || ok {
			t.Fatalf("%s refused but stored (%v)", cmid, err)
		}
	}
	refused(c.send(t, phone, text("p4", "bob", "hi")), "p4")
	// The retry of a stored send goes through, over the limit or not.
	if o := c.send(t, phone, text("p1", "bob", "hi")); o.Err != nil || !o.Duplicate || o.Msg.ID != stored[0].Msg.ID {
		t.Fatalf("retry of a stored send: %+v", o)
	}
	// Another device of alice has its own bucket, but the user's is shared:
	// 5 in all (the phone's refused p4 did not use the user's).
	for _, cmid := range []string{"l1", "l2"} {
		if o := c.send(t, laptop, text(cmid, "bob", "hi")); o.Err != nil {
			t.Fatalf("%s: %v", cmid, o.Err)
		}
	}
	refused(c.send(t, laptop, text("l3", "bob", "hi")), "l3")
	if o := c.send(t, session("carol"), text("c1", "bob", "hi")); o.Err != nil {
		t.Fatalf("carol limited by alice: %v", o.Err)
	}
	bridge := &Session{User: "alerts", Role: authtoken.RoleBridge, Format: protocol.JSON}
	for i := range 10 {
		o := c.send(t, bridge, map[string]any{"cmid": "n" + string(rune('a'+i)), "to": "bob", "type": protocol.TypeText, "body": map[string]any{"text": "x"}})
		if o.Err != nil {
			t.Fatalf("bridge send %d: %v", i, o.Err)
		}
	}
	limited := byLabel(t, reg, "mqim_rate_limited_total")
	// The stored retry hit the limit too (and went through).
	if limited[limitConnSends] != 2 || limited[limitUserSends] != 1 || limited[limitConnRPCs] != 0 {
		t.Errorf("limit hits counted %v, want conn_send 2, user_send 1", limited)
	}
	if users := byLabel(t, reg, "mqim_rate_limit_users"); users["send"] != 2 || users["rpc"] != 0 {
		t.Errorf("users kept %v, want the send buckets of alice and carol", users)
	}
}

// byLabel returns the values of the series of metric name by their label
// "limit".
func byLabel(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "limit" {
					out[l.GetValue()] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
				}
			}
		}
	}
	return out
}

// Every RPC request counts, unknown methods too; a refused one gets a
// rate_limited response with its id [IM-1.3-6].
func TestRPCRateLimits(t *testing.T) {
	c := newCore(t, true, "alice", "bob")
	withLimits(c, Limits{ConnRPCs: slow(2), UserRPCs: slow(10)})
	alice := session("alice")
	if r := c.call(t, alice, protocol.MethodSync, map[string]any{"id": "r1", "limit": 0}); !r.OK {
		t.Fatalf("r1: %v", r.Error)
	}
	if r := c.call(t, alice, "no.such.method", map[string]any{"id": "r2"}); code(r) != protocol.CodeUnknownMethod {
		t.Fatalf("r2: %+v", r)
	}
	r := c.call(t, alice, protocol.MethodSync, map[string]any{"id": "r3", "limit": 0})
	if r.OK || code(r) != protocol.CodeRateLimited || r.ID != "r3" || r.Error.RetryAfterMs <= 0 {
		t.Fatalf("r3 over the limit: %+v %+v", r, r.Error)
	}
	if r := c.call(t, session("bob"), protocol.MethodSync, map[string]any{"limit": 0}); !r.OK {
		t.Fatalf("bob limited by alice: %v", r.Error)
	}
	// Sends have their own buckets.
	if o := c.send(t, alice, text("s1", "bob", "hi")); o.Err != nil {
		t.Fatalf("send after the RPC limit: %v", o.Err)
	}
}

func TestLimitsValidate(t *testing.T) {
	if err := (Limits{UserSends: ratelimit.Limit{Rate: 1}}).Validate(); err == nil {
		t.Error("a rate without a burst accepted")
	}
	if err := (Limits{ConnRPCs: ratelimit.Limit{Rate: -1, Burst: 1}}).Validate(); err == nil {
		t.Error("a negative rate accepted")
	}
	if err := (Limits{UserSends: slow(1), ConnSends: slow(1), UserRPCs: slow(1), ConnRPCs: slow(1)}).Validate(); err != nil {
		t.Error(err)
	}
}
