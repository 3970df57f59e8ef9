package push

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mqim/mqim/store"
)

// receive hands a job from the consumer to a worker: always the same one
// for a user, so that a user's notifications leave this node in commit
// order (the phone shows the last one of a collapse id, with the latest
// count). Blocking here holds the consumer back (MaxAckPending bounds what
// a node takes).
func (s *Service) receive(msg jetstream.Msg) {
	var j struct {
		User string `json:"u"`
	}
	_ = json.Unmarshal(msg.Data(), &j)
	h := fnv.New32a()
	h.Write([]byte(j.User))
	select {
	case s.work[h.Sum32()%uint32(len(s.work))] <- msg:
	case <-s.ctx.Done():
	}
}

func (s *Service) worker(work <-chan jetstream.Msg) {
	for {
		select {
		case <-s.ctx.Done():
			return
		case msg := <-work:
			s.handle(msg)
		}
	}
}

// outcome of a job.
type result struct {
	retry      bool
	retryAfter time.Duration // a provider's Retry-After, or a busy claim's lease
}

func (s *Service) handle(msg jetstream.Msg) {
	var j job
	if err := json.Unmarshal(msg.Data(), &j); err != nil {
		s.log.Error("push: undecodable job", "error", err)
		_ = msg.Term()
		return
	}
	attempt := uint64(1)
	if meta, err := msg.Metadata(); err == nil {
		attempt = meta.NumDelivered
	}
	delay, done := s.process(&j)
	switch {
	case done:
		_ = msg.Ack()
	case delay > 0:
		_ = msg.NakWithDelay(delay)
	default:
		s.m.retried.Inc()
		_ = msg.NakWithDelay(s.backoff(attempt))
	}
}

// backoff is the delay before the n-th retry: exponential from RetryMin
// to RetryMax, with half of it random (jitter), so that jobs cut off by
// one outage do not come back at once.
func (s *Service) backoff(n uint64) time.Duration {
	d := s.cfg.RetryMin
	for i := uint64(1); i < n && d < s.cfg.RetryMax; i++ {
		d *= 2
	}
	d = min(d, s.cfg.RetryMax)
	return d/2 + rand.N(d/2+1)
}

// process runs the rules on a job [IM-17.2] and sends it. It returns done
// (acknowledge the job), or a delay after which the job comes back (0:
// the backoff of a retry).
func (s *Service) process(j *job) (delay time.Duration, done bool) {
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	p := &s.cfg.Policy
	if !p.allows(j.Kind, j.Conv) {
		s.m.skipped.WithLabelValues("policy").Inc()
		return 0, true
	}
	// Push unless a device online somewhere acknowledged it within After;
	// with none online, at once [IM-17.2-1].
	if nodes := s.deviceNodes(j.User); len(nodes) > 0 {
		if wait := time.Until(time.UnixMilli(j.TS).Add(s.cfg.After)); wait > 0 {
			return wait, false
		}
		if s.ackedOn(ctx, nodes, j) {
			s.m.skipped.WithLabelValues("acked").Inc()
			return 0, true
		}
	}
	// One read for all the job needs (batched with other workers' reads).
	info, err := s.reads.do(ctx, store.PushRead{Key: j.key(), Message: !p.HideBodies})
	if err != nil {
		s.log.Warn("push: read registrations, settings and counts", "error", err)
		return 0, false
	}
	if !p.IgnoreMute && info.Muted {
		s.m.skipped.WithLabelValues("muted").Inc()
		return 0, true
	}
	seq, folded := j.ConvSeq, 0
	var win window
	if j.Kind == store.PushSystem {
		action, w, err := s.fold.decide(ctx, j.User, j.Conv, j.ConvSeq, time.Now())
		if err != nil {
			s.log.Warn("push: fold system notification", "error", err)
			return 0, false
		}
		win = w
		switch action {
		case foldDone:
			s.m.skipped.WithLabelValues("folded").Inc()
			return 0, true
		case foldClose:
			if err := s.fold.close(ctx, j.User, j.Conv, w); err != nil {
				return time.Millisecond, false // something was folded meanwhile: flush it
			}
			return 0, true
		case foldFlush:
			seq, folded = w.Last, w.Count
			// The notification is of the window's last message.
			if info, err = s.reads.do(ctx, store.PushRead{Key: store.PushKey{User: j.User, Conv: j.Conv, ConvSeq: seq}, Message: !p.HideBodies}); err != nil {
				s.log.Warn("push: read registrations, settings and counts", "error", err)
				return 0, false
			}
		}
		defer func() {
			switch {
			case !done: // a retry: comes back to the same step
			case action == foldSend || action == foldWait: // sent (claims keep it once): back at the end
				delay, done = max(time.Until(time.UnixMilli(w.End)), time.Millisecond), false
			case action == foldFlush:
				if err := s.fold.close(ctx, j.User, j.Conv, win); err != nil {
					delay, done = time.Millisecond, false
				}
			}
		}()
	}
	r := s.send(ctx, j, &info, seq, folded)
	switch {
	case !r.retry:
		return 0, true
	case r.retryAfter > 0:
		s.m.retried.Inc()
		return r.retryAfter, false
	}
	return 0, false
}

func (s *Service) deviceNodes(user string) []string {
	if s.cfg.Presence == nil {
		return nil
	}
	return s.cfg.Presence.DeviceNodes(user)
}

// ackedOn asks the nodes with a device of the user whether one of them
// acknowledged the job's message.
func (s *Service) ackedOn(ctx context.Context, nodes []string, j *job) bool {
	for _, n := range nodes {
		if n == s.cfg.Node {
			if s.acks.acked(j.User, j.Conv, j.ConvSeq) {
				return true
			}
			continue
		}
		if ask(ctx, s.cfg.NATS, n, ackQuery{User: j.User, Conv: j.Conv, Seq: j.ConvSeq}) {
			return true
		}
	}
	return false
}

// send notifies each registered device of the user once: claimed in the
// store before the provider call, settled after it.
// info is what the store said of the user and the message at seq.
func (s *Service) send(ctx context.Context, j *job, info *store.PushInfo, seq int64, folded int) result {
	if len(info.Devices) == 0 {
		s.m.skipped.WithLabelValues("no_device").Inc()
		return result{}
	}
	unread, badge := info.Unread, info.Badge
	title, body := s.cfg.Policy.alert(j.Sender, info.Message, unread, folded)
	key := store.PushKey{User: j.User, Conv: j.Conv, ConvSeq: seq}
	var r result
	for _, d := range info.Devices {
		prov := s.cfg.Providers[d.Platform]
		if prov == nil {
			s.m.failed.WithLabelValues(d.Platform, "no_provider").Inc()
			continue
		}
		c, err := s.claim(ctx, store.PushClaim{Key: key, Client: d.Client})
		switch {
		case err != nil:
			s.log.Warn("push: claim", "error", err)
			r.retry = true
			continue
		case c == store.ClaimDone:
			s.m.skipped.WithLabelValues("duplicate").Inc()
			continue
		case c == store.ClaimBusy:
			r.retry, r.retryAfter = true, max(r.retryAfter, s.cfg.Lease)
			continue
		}
		n := &Notification{Device: d, Title: title, Body: body, CollapseID: j.Conv, Conv: j.Conv, Seq: seq,
			Unread: max(unread, int64(folded)), Badge: badge, Kind: kindName(j.Kind), Expires: time.Now().Add(s.cfg.Expiry)}
		if s.cfg.failpoint("provider-call") {
			return result{retry: true} // as if the node died inside the call: the claim stays
		}
		pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err = prov.Send(pctx, n)
		cancel()
		s.settle(ctx, j, key, d, err, &r)
	}
	return r
}

// settle records a provider call's outcome.
func (s *Service) settle(ctx context.Context, j *job, key store.PushKey, d store.PushDevice, err error, r *result) {
	var se *SendError
	if err != nil && !errors.As(err, &se) {
		se = &SendError{Outcome: Retry, Reason: "error", Err: err}
	}
	sent := true
	switch {
	case se == nil:
		s.m.sent.WithLabelValues(d.Platform).Inc()
		s.m.latency.Observe(time.Since(time.UnixMilli(j.TS)).Seconds())
	case se.Outcome == Remove:
		s.m.failed.WithLabelValues(d.Platform, se.Reason).Inc()
		s.m.removed.WithLabelValues(d.Platform).Inc()
		if err := s.cfg.Store.RemovePushToken(ctx, d.Platform, d.Token); err != nil {
			s.log.Warn("push: remove refused token", "error", err)
		}
		s.log.Info("push: provider refused a device token; registration removed", "user", d.User, "client", d.Client,
			"provider", d.Platform, "reason", se.Reason)
	case se.Outcome == Drop:
		s.m.failed.WithLabelValues(d.Platform, se.Reason).Inc()
		s.log.Warn("push: provider refused a notification", "provider", d.Platform, "reason", se.Reason)
	default:
		s.m.failed.WithLabelValues(d.Platform, se.Reason).Inc()
		sent = false
		r.retry = true
		r.retryAfter = max(r.retryAfter, se.RetryAfter)
	}
	if err := s.finish(ctx, store.PushFinish{PushClaim: store.PushClaim{Key: key, Client: d.Client}, Sent: sent}); err != nil {
		s.log.Warn("push: settle claim", "error", err)
	}
}
