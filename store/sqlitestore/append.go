package sqlitestore

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// Inbox kinds as stored in inbox.kind.
const (
	kindMessage int64 = 1
	kindRead    int64 = 2
)

func kindName(k int64) string {
	if n, ok := extKinds[k]; ok { // ext.go
		return n
	}
	if k == kindRead {
		return store.KindRead
	}
	return store.KindMessage
}

// pair is a (sender, cmid) or a (conversation, user).
type pair struct{ a, b string }

func comparePairs(x, y pair) int {
	return cmp.Or(strings.Compare(x.a, y.a), strings.Compare(x.b, y.b))
}

type storedMsg struct {
	msg    store.Message
	digest []byte
}

// Append stores batch in one transaction on the writer connection.
//
// It decides every request against the state before the batch, as pgstore
// does (a recipient is known only if it existed before the batch), then
// writes the new messages in batch order.
func (s *Store) Append(ctx context.Context, batch []store.SendRequest) ([]store.SendResult, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	var res []store.SendResult
	err := s.write(ctx, func(t *txn) error {
		var err error
		res, err = appendTx(t, batch)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("append batch: %w", err)
	}
	return res, nil
}

func appendTx(t *txn, batch []store.SendRequest) ([]store.SendResult, error) {
	res := make([]store.SendResult, len(batch))
	convOf := make([]string, len(batch))

	// What exists already. The writer is the only one, so this cannot
	// change before we write.
	existing := make(map[pair]*storedMsg, len(batch))
	users := make(map[string]bool, 2*len(batch))
	convs := make(map[string]bool, len(batch))
	for i, r := range batch {
		convOf[i] = protocol.DirectConv(r.From, r.To)
		k := pair{r.From, r.Cmid}
		if _, ok := existing[k]; !ok {
			m, err := lookup(t, r.From, r.Cmid)
			if err != nil {
				return nil, err
			}
			existing[k] = m // nil if not stored
		}
		for _, u := range []string{r.From, r.To} {
			if _, ok := users[u]; !ok {
				ok, err := exists(t, qUserExists, u)
				if err != nil {
					return nil, err
				}
				users[u] = ok
			}
		}
		if _, ok := convs[convOf[i]]; !ok {
			ok, err := exists(t, qConvExists, convOf[i])
			if err != nil {
				return nil, err
			}
			convs[convOf[i]] = ok
		}
	}

	// Decide each request in batch order, so that a later request with the
	// (From, Cmid) of an earlier new one is its retry or a conflict.
	var (
		fresh    []int // indices of new messages, in batch order
		firstNew = make(map[pair]int)
		dupOf    = make(map[int]int)
	)
	for i, r := range batch {
		k := pair{r.From, r.Cmid}
		if m := existing[k]; m != nil {
			if bytes.Equal(m.digest, r.Digest) {
				res[i] = store.SendResult{Msg: m.msg, Duplicate: true}
			} else {
				res[i].Err = cmidConflict(r)
			}
			continue
		}
		if !users[r.To] {
			res[i].Err = fmt.Errorf("send to %q: %w", r.To, store.ErrUnknownUser)
			continue
		}
		if r.Blocked {
			res[i].Err = fmt.Errorf("send to %q: %w", r.To, store.ErrBlocked)
			continue
		}
		if j, ok := firstNew[k]; ok {
			if bytes.Equal(batch[j].Digest, r.Digest) {
				dupOf[i] = j
			} else {
				res[i].Err = cmidConflict(r)
			}
			continue
		}
		firstNew[k] = i
		fresh = append(fresh, i)
	}
	if len(fresh) == 0 {
		return res, nil
	}

	// Create what is missing and advance the counters, once per
	// conversation and user.
	var (
		convN  = make(map[string]int64)
		convTS = make(map[string]int64)
		userN  = make(map[string]int64)
	)
	for _, i := range fresh {
		r, c := batch[i], convOf[i]
		convN[c]++
		convTS[c] = max(convTS[c], r.TS)
		userN[r.To]++
		userN[r.From]++
		if !users[r.From] {
			users[r.From] = true
			if err := t.exec(qEnsureUser, r.From); err != nil {
				return nil, err
			}
		}
		if !convs[c] {
			convs[c] = true
			if err := t.exec(qNewConv, c, store.ConvDirect); err != nil {
				return nil, err
			}
			if err := t.exec(qNewMembers, c, r.From, c, r.To); err != nil {
				return nil, err
			}
		}
	}
	convNext := make(map[string]int64, len(convN))
	for _, c := range slices.Sorted(maps.Keys(convN)) {
		var last int64
		if err := t.queryRow(qAdvanceConv, convN[c], convTS[c], c).Scan(&last); err != nil {
			return nil, fmt.Errorf("advance seq of %q: %w", c, err)
		}
		convNext[c] = last - convN[c]
	}
	userNext := make(map[string]int64, len(userN))
	for _, u := range slices.Sorted(maps.Keys(userN)) {
		var last int64
		if err := t.queryRow(qAdvanceUser, userN[u], u).Scan(&last); err != nil {
			return nil, fmt.Errorf("advance inbox seq of %q: %w", u, err)
		}
		userNext[u] = last - userN[u]
	}

	// Number and write the messages and events in batch order.
	readSeq := make(map[pair]int64)
	for _, i := range fresh {
		r, c := batch[i], convOf[i]
		convNext[c]++
		msg := store.Message{ID: r.ID, Conv: c, Seq: convNext[c], From: r.From, Cmid: r.Cmid,
			Type: r.Type, Body: r.Body, TS: r.TS}
		if err := t.exec(qInsertMsg, r.ID, c, msg.Seq, r.From, r.Cmid, r.Type, notNil(r.Body), notNil(r.Digest),
			r.TS); err != nil {
			return nil, err
		}
		shared := msg
		events := make([]store.InboxEvent, 0, 2)
		for _, u := range []string{r.To, r.From} {
			userNext[u]++
			events = append(events, store.InboxEvent{User: u, Seq: userNext[u], Kind: store.KindMessage,
				Conv: c, ConvSeq: msg.Seq, Actor: r.From, TS: r.TS, Msg: &shared})
			if err := t.exec(qInsertInbox, u, userNext[u], kindMessage, c, msg.Seq, r.From, r.TS); err != nil {
				return nil, err
			}
		}
		res[i] = store.SendResult{Msg: msg, Events: events}
		readSeq[pair{c, r.From}] = msg.Seq // seqs grow in batch order
	}
	for i, j := range dupOf {
		res[i] = store.SendResult{Msg: res[j].Msg, Duplicate: true}
	}
	// Sending marks the conversation read by the sender up to its message.
	for _, k := range slices.SortedFunc(maps.Keys(readSeq), comparePairs) {
		if err := t.exec(qSenderRead, readSeq[k], k.a, k.b); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// lookup returns the message stored for (sender, cmid), or nil.
func lookup(t *txn, sender, cmid string) (*storedMsg, error) {
	m := &storedMsg{msg: store.Message{From: sender, Cmid: cmid}}
	err := t.queryRow(qLookup, sender, cmid).
		Scan(&m.digest, &m.msg.ID, &m.msg.Conv, &m.msg.Seq, &m.msg.Type, &m.msg.Body, &m.msg.TS)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up cmid %q of %q: %w", cmid, sender, err)
	}
	return m, nil
}

func exists(t *txn, query string, arg any) (bool, error) {
	var ok bool
	if err := t.queryRow(query, arg).Scan(&ok); err != nil {
		return false, fmt.Errorf("look up %v: %w", arg, err)
	}
	return ok, nil
}

func cmidConflict(r store.SendRequest) error {
	return fmt.Errorf("cmid %q of %q: %w", r.Cmid, r.From, store.ErrCmidConflict)
}

// notNil maps nil to an empty slice: the driver stores a nil []byte as NULL.
func notNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
