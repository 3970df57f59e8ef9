package push

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// folder keeps the windows of system notifications [IM-17.2-5] in a KV
// bucket, one entry per (user, conversation), changed by compare-and-set
// so that any node may handle any job. The window's first job is sent at
// once and comes back at the window's end (the queue's delayed
// redelivery) to send one notification for the ones folded into it.
type folder struct {
	kv       jetstream.KeyValue
	interval time.Duration
}

const foldBucket = "mqim-push-fold"

func newFolder(ctx context.Context, js jetstream.JetStream, replicas int, interval time.Duration) (*folder, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: foldBucket, Replicas: replicas,
		TTL: interval + time.Hour, Storage: jetstream.FileStorage})
	if err != nil {
		return nil, fmt.Errorf("push: create KV %s: %w", foldBucket, err)
	}
	return &folder{kv: kv, interval: interval}, nil
}

// window is a fold window.
type window struct {
	First int64 `json:"first"` // the seq of the job sent at once (and flushing at End)
	End   int64 `json:"end"`   // unix ms
	Last  int64 `json:"last"`  // the latest folded seq; 0: none
	Count int   `json:"count"` // folded notifications

	rev uint64 // the KV revision decide read
}

func foldKey(user, conv string) string {
	sum := sha256.Sum256([]byte(user + "\x00" + conv))
	return hex.EncodeToString(sum[:16])
}

// Fold actions.
const (
	foldSend  = iota // send now: the window's first; come back at its end
	foldWait         // the window's first, redelivered before its end: send (once, by the claims), come back at its end
	foldFlush        // the window's end: send one for the Count folded, then close
	foldClose        // the window's end with nothing folded: close
	foldDone         // folded into a window (or an old job): nothing to send
)

// decide records the job's seq and says what to do with it.
func (f *folder) decide(ctx context.Context, user, conv string, seq int64, now time.Time) (int, window, error) {
	key := foldKey(user, conv)
	for range 10 {
		e, err := f.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			w := window{First: seq, End: now.Add(f.interval).UnixMilli()}
			data, _ := json.Marshal(&w)
			if _, err := f.kv.Create(ctx, key, data); errors.Is(err, jetstream.ErrKeyExists) {
				continue
			} else if err != nil {
				return 0, w, err
			}
			return foldSend, w, nil
		}
		if err != nil {
			return 0, window{}, err
		}
		w := window{rev: e.Revision()}
		if err := json.Unmarshal(e.Value(), &w); err != nil {
			return 0, w, err
		}
		switch {
		case seq == w.First && now.UnixMilli() < w.End:
			return foldWait, w, nil
		case seq == w.First && w.Count == 0:
			return foldClose, w, nil
		case seq == w.First:
			return foldFlush, w, nil
		case seq <= w.Last || seq < w.First:
			return foldDone, w, nil // counted already, or from an earlier window
		}
		w.Last, w.Count = seq, w.Count+1
		data, _ := json.Marshal(&w)
		if _, err := f.kv.Update(ctx, key, data, e.Revision()); err != nil {
			continue // changed meanwhile: decide again
		}
		return foldDone, w, nil
	}
	return 0, window{}, errors.New("push: fold window changed too often")
}

// close ends the window w (after its flush was sent). If a notification
// was folded into it since, it fails: the caller flushes again.
func (f *folder) close(ctx context.Context, user, conv string, w window) error {
	return f.kv.Delete(ctx, foldKey(user, conv), jetstream.LastRevision(w.rev))
}
