package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mqim/mqim/store"
)

// The work queue: one JetStream stream with work-queue retention, one
// durable consumer that every node pulls from (a job goes to one node at
// a time), explicit acks.
const (
	streamName   = "MQIM_PUSH"
	jobSubject   = "mqim.push.jobs"
	consumerName = "push-workers"
	// dupWindow is JetStream's duplicate window: a job the relays publish
	// twice within it (two nodes, or a retry after a lost ack) is stored
	// once; past it, the store's claim still sends it once.
	dupWindow = 2 * time.Minute
)

// job is a push candidate on the work queue.
type job struct {
	User     string `json:"u"`
	Conv     string `json:"c"`
	ConvSeq  int64  `json:"s"`
	InboxSeq int64  `json:"i,omitempty"`
	Kind     int    `json:"k"`
	Sender   string `json:"f"`
	TS       int64  `json:"t"` // commit, unix ms
}

func (j *job) key() store.PushKey {
	return store.PushKey{User: j.User, Conv: j.Conv, ConvSeq: j.ConvSeq}
}

// msgID is the job's JetStream message id (duplicate detection).
func (j *job) msgID() string {
	return j.User + "\x00" + j.Conv + "\x00" + strconv.FormatInt(j.ConvSeq, 10)
}

func (s *Service) ensureStream(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:       streamName,
		Subjects:   []string{jobSubject},
		Retention:  jetstream.WorkQueuePolicy,
		Storage:    jetstream.FileStorage,
		Replicas:   s.cfg.Replicas,
		MaxMsgs:    s.cfg.MaxQueued,
		Discard:    jetstream.DiscardNew, // full: the outbox keeps the rest
		Duplicates: dupWindow,
	})
	if err != nil {
		return fmt.Errorf("push: create stream %s: %w", streamName, err)
	}
	_, err = s.js.CreateOrUpdateConsumer(ctx, streamName, jetstream.ConsumerConfig{
		Durable:       consumerName,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.cfg.After + 30*time.Second,
		MaxDeliver:    -1, // an outage is waited out; nothing is dropped
		MaxAckPending: s.cfg.MaxInFlight,
	})
	if err != nil {
		return fmt.Errorf("push: create consumer %s: %w", consumerName, err)
	}
	return nil
}

// relayLoop moves the outbox to the work queue: at a nudge (a local
// commit) and every RelayInterval (rows committed on other nodes, or left
// by a crash or a full queue). A row is deleted only once JetStream
// stored its job.
func (s *Service) relayLoop() {
	tick := time.NewTicker(s.cfg.RelayInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.nudge:
		case <-tick.C:
		}
		for s.ctx.Err() == nil {
			n, err := s.relay()
			if err != nil {
				s.log.Warn("push: outbox to work queue", "error", err)
				break
			}
			if n < relayBatch {
				break
			}
		}
	}
}

const relayBatch = 256

// relay moves one batch; it returns how many rows it read.
func (s *Service) relay() (int, error) {
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	cands, err := s.cfg.Store.PendingPush(ctx, relayBatch)
	if err != nil {
		return 0, err
	}
	s.m.outbox.Set(float64(len(cands)))
	if len(cands) == 0 {
		return 0, nil
	}
	if s.cfg.failpoint("before-enqueue") {
		return 0, errors.New("failpoint before-enqueue")
	}
	futures := make([]jetstream.PubAckFuture, len(cands))
	for i, c := range cands {
		j := job{User: c.User, Conv: c.Conv, ConvSeq: c.ConvSeq, InboxSeq: c.InboxSeq, Kind: c.Kind, Sender: c.Sender, TS: c.TS}
		data, _ := json.Marshal(&j)
		if futures[i], err = s.js.PublishMsgAsync(&nats.Msg{Subject: jobSubject, Data: data}, jetstream.WithMsgID(j.msgID())); err != nil {
			futures = futures[:i]
			break
		}
	}
	var done []store.PushKey
	var failed error
	for i, f := range futures {
		select {
		case <-f.Ok():
			done = append(done, store.PushKey{User: cands[i].User, Conv: cands[i].Conv, ConvSeq: cands[i].ConvSeq})
		case e := <-f.Err():
			failed = e // e.g. the queue is full (DiscardNew): the row stays
		case <-ctx.Done():
			failed = ctx.Err()
		}
	}
	if err := s.dequeue(ctx, done); err != nil {
		return 0, err
	}
	s.m.queued.Add(float64(len(done)))
	if failed != nil {
		return 0, fmt.Errorf("work queue took %d of %d jobs: %w", len(done), len(cands), failed)
	}
	if err == nil && len(futures) < len(cands) {
		return 0, errors.New("work queue: publish failed")
	}
	return len(cands), nil
}

// depthLoop keeps the queue depth metric.
func (s *Service) depthLoop() {
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
		if st, err := s.js.Stream(ctx, streamName); err == nil {
			if info, err := st.Info(ctx); err == nil {
				s.m.depth.Set(float64(info.State.Msgs))
			}
		}
		s.acks.sweep(time.Now())
		if n%120 == 0 { // every 10 minutes
			if err := s.cfg.Store.ForgetPush(ctx, time.Now().Add(-claimLife).UnixMilli()); err != nil {
				s.log.Warn("push: forget old claims", "error", err)
			}
		}
		cancel()
	}
}

// claimLife is how long a sent claim is kept: far longer than a job can
// wait in the queue for a provider, so that a late duplicate finds it.
const claimLife = 7 * 24 * time.Hour
