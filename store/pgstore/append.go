package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mqim/mqim/store"
)

// sendAttempts bounds the retries after another transaction stored the
// same (sender, cmid) between our lookup and our insert.
const sendAttempts = 3

// Append stores batch in one transaction. It takes three round trips inside
// the transaction, whatever the batch size: look up, lock and allocate,
// write.
func (s *Store) Append(ctx context.Context, batch []store.SendRequest) ([]store.SendResult, error) {
	return s.send(ctx, batch, "append batch", decideDirect)
}

// AppendGroup stores a batch of group messages in one transaction, in four
// round trips: lock the groups and look up, read the members, allocate,
// write.
func (s *Store) AppendGroup(ctx context.Context, batch []store.SendRequest) ([]store.SendResult, error) {
	return s.send(ctx, batch, "append group batch", decideGroup)
}

// decider reads what the rules of a batch need, decides it, and queues on b
// the rows its new messages need created first.
type decider func(ctx context.Context, tx pgx.Tx, batch []store.SendRequest, b *pgx.Batch) (*store.SendPlan, *store.SendWrites, error)

// send stores a batch in a transaction, again if it lost a race for a
// (sender, cmid): the retry finds the other transaction's row and answers
// with it [IM-4.5-1].
func (s *Store) send(ctx context.Context, batch []store.SendRequest, what string, decide decider) ([]store.SendResult, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	for attempt := 1; ; attempt++ {
		var res []store.SendResult
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			b := &pgx.Batch{}
			plan, w, err := decide(ctx, tx, batch, b)
			if err != nil {
				return err
			}
			res = plan.Results
			if len(plan.Fresh) == 0 {
				return nil
			}
			return writeSends(ctx, tx, b, plan, w)
		})
		if err == nil {
			return res, nil
		}
		if attempt < sendAttempts && isCmidRace(err) {
			continue
		}
		return nil, fmt.Errorf("%s: %w", what, err)
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

// decideDirect: round trip 1 looks up the cmids, users and conversations.
func decideDirect(ctx context.Context, tx pgx.Tx, batch []store.SendRequest, next *pgx.Batch) (*store.SendPlan, *store.SendWrites, error) {
	cmids, userIDs, convIDs := store.SendLookups(batch)
	stored := make(map[store.Cmid]store.Stored)
	users, convs := make(map[string]bool), make(map[string]bool)
	b := &pgx.Batch{}
	queueLookup(b, cmids, stored)
	b.Queue(`SELECT id FROM users WHERE id = ANY($1)`, userIDs).Query(collectSet(users))
	b.Queue(`SELECT id FROM conversations WHERE id = ANY($1)`, convIDs).Query(collectSet(convs))
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, nil, err
	}
	plan := store.DecideSends(batch, stored, func(r *store.SendRequest) error { return store.RefuseDirect(r, users[r.To]) })
	w := plan.Direct(users, convs)
	if len(w.NewUsers) > 0 {
		next.Queue(`INSERT INTO users (id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING`, w.NewUsers)
	}
	if len(w.NewConvs) > 0 {
		next.Queue(`INSERT INTO conversations (id, kind) SELECT unnest($1::text[]), $2 ON CONFLICT DO NOTHING`,
			w.NewConvs, store.ConvDirect)
		conv, user := make([]string, len(w.NewMembers)), make([]string, len(w.NewMembers))
		for i, m := range w.NewMembers {
			conv[i], user[i] = m.Conv, m.User
		}
		next.Queue(`INSERT INTO members (conv_id, user_id) SELECT * FROM unnest($1::text[], $2::text[])
			ON CONFLICT DO NOTHING`, conv, user)
	}
	return plan, w, nil
}

// decideGroup: round trip 1 locks the groups, in id order, and then looks
// up the cmids, so that it sees what a send that held a lock before
// committed; round trip 2 reads the members the rules need.
func decideGroup(ctx context.Context, tx pgx.Tx, batch []store.SendRequest, _ *pgx.Batch) (*store.SendPlan, *store.SendWrites, error) {
	cmids, _, _ := store.SendLookups(batch)
	ids, asked := store.GroupAsks(batch)
	groups := make(map[string]*store.GroupState)
	stored := make(map[store.Cmid]store.Stored)
	b := &pgx.Batch{}
	queueLockGroups(b, ids, groups)
	queueLookup(b, cmids, stored)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, nil, err
	}
	var all, someConv, someUser []string
	for id, g := range groups {
		only := g.MembersToRead(asked[id])
		if only == nil {
			all = append(all, id)
		}
		for _, u := range only {
			someConv, someUser = append(someConv, id), append(someUser, u)
		}
	}
	b = &pgx.Batch{}
	queueMembers(b, all, groups)
	b.Queue(`SELECT m.conv_id, m.user_id, m.role, m.muted <> 0, m.read_seq
		FROM unnest($1::text[], $2::text[]) AS k(conv_id, user_id)
		JOIN members m ON m.conv_id = k.conv_id AND m.user_id = k.user_id`, someConv, someUser).
		Query(collectMembers(groups))
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, nil, err
	}
	plan := store.DecideSends(batch, stored, func(r *store.SendRequest) error { return store.RefuseGroup(r, groups[r.Group]) })
	return plan, plan.Group(groups), nil
}

// writeSends sends b (what decide queued) with the locks and counters of
// w, numbers the rows and writes them: two round trips.
func writeSends(ctx context.Context, tx pgx.Tx, b *pgx.Batch, plan *store.SendPlan, w *store.SendWrites) error {
	convs, users := w.Convs(), w.Users()
	// NO KEY UPDATE, not UPDATE: it does not conflict with the KEY SHARE
	// locks that foreign key checks (members, devices) take on these rows.
	b.Queue(`SELECT id FROM conversations WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, convs)
	b.Queue(`SELECT id FROM users WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, users)
	// Whoever stores a direct message holds its sender's lock until commit,
	// so from here on the direct messages of our senders cannot change
	// under us. One that appeared since the lookup means another
	// transaction won a race for a (sender, cmid): start again, and the
	// retry answers with its row. Group sends of one group queue on its
	// lock before their lookup; a race through another conversation ends
	// on the unique key, which retries the same way.
	fresh := plan.FreshCmids()
	from, cmid := make([]string, len(fresh)), make([]string, len(fresh))
	for i, k := range fresh {
		from[i], cmid[i] = k.From, k.Cmid
	}
	raced := false
	b.Queue(`SELECT EXISTS (SELECT 1 FROM unnest($1::text[], $2::text[]) AS k(sender, cmid)
		JOIN messages m ON m.sender = k.sender AND m.cmid = k.cmid)`, from, cmid).
		QueryRow(func(row pgx.Row) error { return row.Scan(&raced) })
	convLast, userLast := make(map[string]int64), make(map[string]int64)
	b.Queue(`UPDATE conversations c SET last_seq = c.last_seq + x.n, last_ts = greatest(c.last_ts, x.ts)
		FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS x(id, n, ts)
		WHERE c.id = x.id
		RETURNING c.id, c.last_seq`, convs, values(convs, w.Conv), values(convs, w.ConvTS)).
		Query(collectInt(convLast))
	b.Queue(`UPDATE users u SET inbox_seq = u.inbox_seq + x.n
		FROM unnest($1::text[], $2::bigint[]) AS x(id, n)
		WHERE u.id = x.id
		RETURNING u.id, u.inbox_seq`, users, values(users, w.User)).
		Query(collectInt(userLast))
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	if raced {
		return errRaced
	}
	rows, err := w.Number(convLast, userLast)
	if err != nil {
		return err
	}

	b = &pgx.Batch{}
	queueMessages(b, rows.Messages)
	n := len(rows.Inbox)
	iUser, iConv, iActor := make([]string, n), make([]string, n), make([]string, n)
	iSeq, iConvSeq, iTS, iKind := make([]int64, n), make([]int64, n), make([]int64, n), make([]int16, n)
	for i, e := range rows.Inbox {
		iUser[i], iSeq[i], iConv[i], iConvSeq[i], iActor[i], iTS[i] = e.User, e.Seq, e.Conv, e.ConvSeq, e.Actor, e.TS
		iKind[i] = int16(store.KindCode(e.Kind)) // message, or mention [IM-11.6-2]
	}
	b.Queue(`INSERT INTO inbox (user_id, seq, kind, conv_id, conv_seq, actor, ts)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::smallint[], $4::text[], $5::bigint[], $6::text[], $7::bigint[])`,
		iUser, iSeq, iKind, iConv, iConvSeq, iActor, iTS)
	rConv, rUser, rSeq := make([]string, len(rows.Reads)), make([]string, len(rows.Reads)), make([]int64, len(rows.Reads))
	for i, r := range rows.Reads {
		rConv[i], rUser[i], rSeq[i] = r.Conv, r.User, r.Seq
	}
	b.Queue(`UPDATE members m SET read_seq = greatest(m.read_seq, x.seq)
		FROM unnest($1::text[], $2::text[], $3::bigint[]) AS x(conv_id, user_id, seq)
		WHERE m.conv_id = x.conv_id AND m.user_id = x.user_id`, rConv, rUser, rSeq)
	queuePush(b, rows.Push)
	return tx.SendBatch(ctx, b).Close()
}

// queueLookup queues the look-up of the messages stored for cmids.
func queueLookup(b *pgx.Batch, cmids []store.Cmid, into map[store.Cmid]store.Stored) {
	from, cmid := make([]string, len(cmids)), make([]string, len(cmids))
	for i, k := range cmids {
		from[i], cmid[i] = k.From, k.Cmid
	}
	b.Queue(`SELECT m.sender, m.cmid, m.digest, m.id, m.conv_id, m.seq, m.type, m.body, m.ts, m.mentions
		FROM unnest($1::text[], $2::text[]) AS k(sender, cmid)
		JOIN messages m ON m.sender = k.sender AND m.cmid = k.cmid`, from, cmid).
		Query(func(rows pgx.Rows) error {
			var (
				m     store.Stored
				ments string
			)
			_, err := pgx.ForEachRow(rows, []any{&m.Msg.From, &m.Msg.Cmid, &m.Digest, &m.Msg.ID, &m.Msg.Conv,
				&m.Msg.Seq, &m.Msg.Type, &m.Msg.Body, &m.Msg.TS, &ments}, func() error {
				m.Msg.Mentions = store.ParseMentions(ments)
				into[store.Cmid{From: m.Msg.From, Cmid: m.Msg.Cmid}] = m
				m = store.Stored{}
				return nil
			})
			return err
		})
}

// queueMessages queues the insert of new messages.
func queueMessages(b *pgx.Batch, ms []store.MessageRow) {
	n := len(ms)
	conv, sender, cmid, typ, ments := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	seq, id, ts, ref := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	body, digest := make([][]byte, n), make([][]byte, n)
	for i, m := range ms {
		conv[i], seq[i], id[i], sender[i], cmid[i] = m.Conv, m.Seq, m.ID, m.From, m.Cmid
		typ[i], body[i], digest[i], ts[i], ments[i], ref[i] = m.Type, m.Body, m.Digest, m.TS, m.Mentions, m.RefSeq
	}
	b.Queue(`INSERT INTO messages (conv_id, seq, id, sender, cmid, type, body, digest, ts, mentions, ref_seq)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[],
			$6::text[], $7::bytea[], $8::bytea[], $9::bigint[], $10::text[], $11::bigint[])`,
		conv, seq, id, sender, cmid, typ, body, digest, ts, ments, ref)
}

func values(ks []string, m map[string]int64) []int64 {
	vs := make([]int64, len(ks))
	for i, k := range ks {
		vs[i] = m[k]
	}
	return vs
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

// collectInt collects (id, number) rows.
func collectInt(into map[string]int64) func(pgx.Rows) error {
	return func(rows pgx.Rows) error {
		var (
			id string
			n  int64
		)
		_, err := pgx.ForEachRow(rows, []any{&id, &n}, func() error {
			into[id] = n
			return nil
		})
		return err
	}
}
