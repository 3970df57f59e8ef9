package pgstore

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// Inbox kinds as stored in inbox.kind.
const (
	kindMessage int16 = 1
	kindRead    int16 = 2
)

func kindName(k int16) string {
	if n, ok := extKinds[k]; ok { // ext.go
		return n
	}
	if k == kindRead {
		return store.KindRead
	}
	return store.KindMessage
}

// appendAttempts bounds the retries after another transaction stored the
// same (sender, cmid) between our lookup and our insert.
const appendAttempts = 3

// Append stores batch in one transaction. It takes three round trips inside
// the transaction, whatever the batch size: look up, lock and allocate,
// write.
func (s *Store) Append(ctx context.Context, batch []store.SendRequest) ([]store.SendResult, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	for attempt := 1; ; attempt++ {
		res, err := s.appendOnce(ctx, batch)
		if err == nil {
			return res, nil
		}
		// The retry finds the other transaction's row and answers with it.
		if attempt < appendAttempts && isCmidRace(err) {
			continue
		}
		return nil, fmt.Errorf("append batch: %w", err)
	}
}

// errRaced says that another transaction stored one of our (sender, cmid)
// after we looked them up.
var errRaced = errors.New("concurrent append of the same cmid")

func isCmidRace(err error) bool {
	var pe *pgconn.PgError
	return errors.Is(err, errRaced) ||
		errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "messages_sender_cmid_key"
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

func (s *Store) appendOnce(ctx context.Context, batch []store.SendRequest) ([]store.SendResult, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit

	res := make([]store.SendResult, len(batch))
	convOf := make([]string, len(batch))

	// Round trip 1: what exists already.
	var (
		keyFrom, keyCmid []string
		seenKey          = make(map[pair]bool, len(batch))
		userIDs          = make(map[string]bool, 2*len(batch))
		convIDs          = make(map[string]bool, len(batch))
	)
	for i, r := range batch {
		k := pair{r.From, r.Cmid}
		if !seenKey[k] {
			seenKey[k] = true
			keyFrom = append(keyFrom, r.From)
			keyCmid = append(keyCmid, r.Cmid)
		}
		userIDs[r.From] = true
		userIDs[r.To] = true
		convOf[i] = protocol.DirectConv(r.From, r.To)
		convIDs[convOf[i]] = true
	}
	existing := make(map[pair]storedMsg)
	users := make(map[string]bool, len(userIDs))
	convs := make(map[string]bool, len(convIDs))
	b := &pgx.Batch{}
	b.Queue(`SELECT m.sender, m.cmid, m.digest, m.id, m.conv_id, m.seq, m.type, m.body, m.ts
		FROM unnest($1::text[], $2::text[]) AS k(sender, cmid)
		JOIN messages m ON m.sender = k.sender AND m.cmid = k.cmid`, keyFrom, keyCmid).
		Query(func(rows pgx.Rows) error {
			var m storedMsg
			_, err := pgx.ForEachRow(rows, []any{&m.msg.From, &m.msg.Cmid, &m.digest, &m.msg.ID,
				&m.msg.Conv, &m.msg.Seq, &m.msg.Type, &m.msg.Body, &m.msg.TS}, func() error {
				existing[pair{m.msg.From, m.msg.Cmid}] = m
				m = storedMsg{}
				return nil
			})
			return err
		})
	b.Queue(`SELECT id FROM users WHERE id = ANY($1)`, keys(userIDs)).Query(collectSet(users))
	b.Queue(`SELECT id FROM conversations WHERE id = ANY($1)`, keys(convIDs)).Query(collectSet(convs))
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
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
		if m, ok := existing[k]; ok {
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
		return res, nil // nothing to write; the deferred Rollback ends tx
	}

	// Round trip 2: create what is missing, lock and advance the counters.
	var (
		newUsers, newConvs []string
		members            []pair
		convN              = make(map[string]int64)
		convTS             = make(map[string]int64)
		userN              = make(map[string]int64)
	)
	for _, i := range fresh {
		r, c := batch[i], convOf[i]
		convN[c]++
		convTS[c] = max(convTS[c], r.TS)
		userN[r.To]++
		userN[r.From]++
		if !users[r.From] {
			users[r.From] = true
			newUsers = append(newUsers, r.From)
		}
		if !convs[c] {
			convs[c] = true
			newConvs = append(newConvs, c)
			members = append(members, pair{c, r.From}, pair{c, r.To})
		}
	}
	// Inserts that may wait for a concurrent insert of the same key go in
	// sorted order too, like the locks.
	slices.Sort(newUsers)
	slices.Sort(newConvs)
	slices.SortFunc(members, comparePairs)
	members = slices.Compact(members)
	memberConv, memberUser := split(members)
	convList, userList := keys(convN), keys(userN)

	b = &pgx.Batch{}
	if len(newUsers) > 0 {
		b.Queue(`INSERT INTO users (id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING`, newUsers)
	}
	if len(newConvs) > 0 {
		b.Queue(`INSERT INTO conversations (id, kind) SELECT unnest($1::text[]), $2 ON CONFLICT DO NOTHING`,
			newConvs, store.ConvDirect)
		b.Queue(`INSERT INTO members (conv_id, user_id) SELECT * FROM unnest($1::text[], $2::text[])
			ON CONFLICT DO NOTHING`, memberConv, memberUser)
	}
	// NO KEY UPDATE, not UPDATE: it does not conflict with the KEY SHARE
	// locks that foreign key checks (members, devices) take on these rows.
	b.Queue(`SELECT id FROM conversations WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, convList)
	b.Queue(`SELECT id FROM users WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, userList)
	// Whoever stores a message holds its sender's lock until commit, so from
	// here on the messages of our senders cannot change under us. One that
	// appeared since round trip 1 means another transaction won a race for
	// a (sender, cmid): start again, and the retry answers with its row.
	raced := false
	freshFrom, freshCmid := make([]string, len(fresh)), make([]string, len(fresh))
	for x, i := range fresh {
		freshFrom[x], freshCmid[x] = batch[i].From, batch[i].Cmid
	}
	b.Queue(`SELECT EXISTS (SELECT 1 FROM unnest($1::text[], $2::text[]) AS k(sender, cmid)
		JOIN messages m ON m.sender = k.sender AND m.cmid = k.cmid)`, freshFrom, freshCmid).
		QueryRow(func(row pgx.Row) error { return row.Scan(&raced) })
	convNext := make(map[string]int64, len(convN))
	b.Queue(`UPDATE conversations c SET last_seq = c.last_seq + x.n, last_ts = greatest(c.last_ts, x.ts)
		FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS x(id, n, ts)
		WHERE c.id = x.id
		RETURNING c.id, c.last_seq`, convList, values(convList, convN), values(convList, convTS)).
		Query(collectBase(convNext, convN))
	userNext := make(map[string]int64, len(userN))
	b.Queue(`UPDATE users u SET inbox_seq = u.inbox_seq + x.n
		FROM unnest($1::text[], $2::bigint[]) AS x(id, n)
		WHERE u.id = x.id
		RETURNING u.id, u.inbox_seq`, userList, values(userList, userN)).
		Query(collectBase(userNext, userN))
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	if raced {
		return nil, errRaced
	}
	if len(convNext) != len(convN) || len(userNext) != len(userN) {
		return nil, errors.New("counter rows missing after insert")
	}

	// Number the messages and events in batch order.
	n := len(fresh)
	var (
		mConv, mSender, mCmid, mType = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		mSeq, mID, mTS               = make([]int64, n), make([]int64, n), make([]int64, n)
		mBody, mDigest               = make([][]byte, n), make([][]byte, n)
		iUser, iConv, iActor         = make([]string, 0, 2*n), make([]string, 0, 2*n), make([]string, 0, 2*n)
		iSeq, iConvSeq, iTS          = make([]int64, 0, 2*n), make([]int64, 0, 2*n), make([]int64, 0, 2*n)
		readSeq                      = make(map[pair]int64)
	)
	for x, i := range fresh {
		r, c := batch[i], convOf[i]
		convNext[c]++
		msg := store.Message{ID: r.ID, Conv: c, Seq: convNext[c], From: r.From, Cmid: r.Cmid,
			Type: r.Type, Body: r.Body, TS: r.TS}
		mConv[x], mSeq[x], mID[x], mSender[x], mCmid[x] = c, msg.Seq, r.ID, r.From, r.Cmid
		mType[x], mBody[x], mDigest[x], mTS[x] = r.Type, notNil(r.Body), notNil(r.Digest), r.TS

		shared := msg
		events := make([]store.InboxEvent, 0, 2)
		for _, u := range []string{r.To, r.From} {
			userNext[u]++
			events = append(events, store.InboxEvent{User: u, Seq: userNext[u], Kind: store.KindMessage,
				Conv: c, ConvSeq: msg.Seq, Actor: r.From, TS: r.TS, Msg: &shared})
			iUser, iSeq, iConv = append(iUser, u), append(iSeq, userNext[u]), append(iConv, c)
			iConvSeq, iActor, iTS = append(iConvSeq, msg.Seq), append(iActor, r.From), append(iTS, r.TS)
		}
		res[i] = store.SendResult{Msg: msg, Events: events}
		readSeq[pair{c, r.From}] = msg.Seq // seqs grow in batch order
	}
	for i, j := range dupOf {
		res[i] = store.SendResult{Msg: res[j].Msg, Duplicate: true}
	}
	reads := slices.SortedFunc(maps.Keys(readSeq), comparePairs)
	rConv, rUser := split(reads)
	rSeq := make([]int64, len(reads))
	for i, k := range reads {
		rSeq[i] = readSeq[k]
	}

	// Round trip 3: write, then commit.
	b = &pgx.Batch{}
	b.Queue(`INSERT INTO messages (conv_id, seq, id, sender, cmid, type, body, digest, ts)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[],
			$6::text[], $7::bytea[], $8::bytea[], $9::bigint[])`,
		mConv, mSeq, mID, mSender, mCmid, mType, mBody, mDigest, mTS)
	b.Queue(`INSERT INTO inbox (user_id, seq, kind, conv_id, conv_seq, actor, ts)
		SELECT u, s, $3, c, cs, a, t FROM unnest($1::text[], $2::bigint[], $4::text[], $5::bigint[], $6::text[], $7::bigint[])
			AS x(u, s, c, cs, a, t)`,
		iUser, iSeq, kindMessage, iConv, iConvSeq, iActor, iTS)
	// Sending marks the conversation read by the sender up to its message.
	b.Queue(`UPDATE members m SET read_seq = greatest(m.read_seq, x.seq)
		FROM unnest($1::text[], $2::text[], $3::bigint[]) AS x(conv_id, user_id, seq)
		WHERE m.conv_id = x.conv_id AND m.user_id = x.user_id`, rConv, rUser, rSeq)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	return res, nil
}

func cmidConflict(r store.SendRequest) error {
	return fmt.Errorf("cmid %q of %q: %w", r.Cmid, r.From, store.ErrCmidConflict)
}

// notNil maps nil to an empty slice: pgx sends a nil []byte as NULL.
func notNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// keys returns the keys of m sorted, the order in which rows are locked.
func keys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func values(ks []string, m map[string]int64) []int64 {
	vs := make([]int64, len(ks))
	for i, k := range ks {
		vs[i] = m[k]
	}
	return vs
}

func split(ps []pair) (as, bs []string) {
	as, bs = make([]string, len(ps)), make([]string, len(ps))
	for i, p := range ps {
		as[i], bs[i] = p.a, p.b
	}
	return as, bs
}

func collectSet(set map[string]bool) func(pgx.Rows) error {
	return func(rows pgx.Rows) error {
		var id string
		_, err := pgx.ForEachRow(rows, []any{&id}, func() error {
			set[id] = true
			return nil
		})
		return err
	}
}

// collectBase records, for each returned (id, counter), the counter value
// before this transaction added n[id]: the next seq is base+1.
func collectBase(base, n map[string]int64) func(pgx.Rows) error {
	return func(rows pgx.Rows) error {
		var id string
		var last int64
		_, err := pgx.ForEachRow(rows, []any{&id, &last}, func() error {
			base[id] = last - n[id]
			return nil
		})
		return err
	}
}
