package pgstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mqim/mqim/store"
)

// queuePush queues the outbox rows of a batch on b, in its transaction:
// only for users with a registered push device.
func queuePush(b *pgx.Batch, cands []store.PushCandidate) {
	var (
		user, conv, sender []string
		seq, inbox, ts     []int64
		kind               []int16
	)
	for _, c := range cands {
		if c.Kind == store.PushEveryone {
			b.Queue(`INSERT INTO push_outbox (user_id, conv_id, conv_seq, inbox_seq, kind, sender, created_at)
				SELECT m.user_id, $1, $2, 0, $3, $4, $5 FROM members m
				WHERE m.conv_id = $1 AND m.user_id <> $4 AND EXISTS (SELECT 1 FROM push_devices d WHERE d.user_id = m.user_id)
				ON CONFLICT DO NOTHING`, c.Conv, c.ConvSeq, int16(c.Kind), c.Sender, c.TS)
			continue
		}
		user, conv, sender = append(user, c.User), append(conv, c.Conv), append(sender, c.Sender)
		seq, inbox, ts, kind = append(seq, c.ConvSeq), append(inbox, c.InboxSeq), append(ts, c.TS), append(kind, int16(c.Kind))
	}
	if len(user) == 0 {
		return
	}
	b.Queue(`INSERT INTO push_outbox (user_id, conv_id, conv_seq, inbox_seq, kind, sender, created_at)
		SELECT x.* FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::smallint[], $6::text[], $7::bigint[])
			AS x(user_id, conv_id, conv_seq, inbox_seq, kind, sender, created_at)
		WHERE EXISTS (SELECT 1 FROM push_devices d WHERE d.user_id = x.user_id)
		ON CONFLICT DO NOTHING`, user, conv, seq, inbox, kind, sender, ts)
}

// RegisterPush adds or replaces a registration. The user's row is locked,
// so that two registrations cannot both pass the limit.
func (s *Store) RegisterPush(ctx context.Context, d store.PushDevice, max int) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO users (id) VALUES ($1) ON CONFLICT DO NOTHING`, d.User); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE`, d.User); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM push_devices WHERE user_id = $1 AND client_id <> $2`, d.User, d.Client).Scan(&n); err != nil {
			return err
		}
		if n >= max {
			return store.Refuse(store.ErrPushLimit, "at most %d push registrations per user", max)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM push_devices WHERE platform = $1 AND token = $2 AND NOT (user_id = $3 AND client_id = $4)`,
			d.Platform, d.Token, d.User, d.Client); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO push_devices (user_id, client_id, platform, token, app, env, locale, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (user_id, client_id) DO UPDATE SET platform = $3, token = $4, app = $5, env = $6, locale = $7, created_at = $8`,
			d.User, d.Client, d.Platform, d.Token, d.App, d.Env, d.Locale, d.Created)
		return err
	})
	if err != nil {
		return fmt.Errorf("register push of %q: %w", d.User, err)
	}
	return nil
}

// UnregisterPush removes a registration.
func (s *Store) UnregisterPush(ctx context.Context, user, client string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM push_devices WHERE user_id = $1 AND client_id = $2`, user, client)
	if err != nil {
		return false, fmt.Errorf("unregister push of %q: %w", user, err)
	}
	return tag.RowsAffected() > 0, nil
}

const qPushList = `SELECT user_id, client_id, platform, token, app, env, locale, created_at
	FROM push_devices WHERE user_id = $1 ORDER BY client_id`

// PushDevices lists a user's registrations.
func (s *Store) PushDevices(ctx context.Context, user string) ([]store.PushDevice, error) {
	rows, _ := s.pool.Query(ctx, qPushList, user)
	out, err := collectPushDevices(rows)
	if err != nil {
		return nil, fmt.Errorf("push devices of %q: %w", user, err)
	}
	return out, nil
}

func collectPushDevices(rows pgx.Rows) ([]store.PushDevice, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.PushDevice, error) {
		var d store.PushDevice
		err := r.Scan(&d.User, &d.Client, &d.Platform, &d.Token, &d.App, &d.Env, &d.Locale, &d.Created)
		return d, err
	})
}

// RemovePushToken removes a token.
func (s *Store) RemovePushToken(ctx context.Context, platform, token string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM push_devices WHERE platform = $1 AND token = $2`, platform, token); err != nil {
		return fmt.Errorf("remove push token: %w", err)
	}
	return nil
}

// TakeOverClient removes other users' registrations of client.
func (s *Store) TakeOverClient(ctx context.Context, client, user string) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM push_devices WHERE client_id = $1 AND user_id <> $2`, client, user)
	if err != nil {
		return 0, fmt.Errorf("take over push registrations of client %q: %w", client, err)
	}
	return int(tag.RowsAffected()), nil
}

// PendingPush returns the oldest outbox rows.
func (s *Store) PendingPush(ctx context.Context, limit int) ([]store.PushCandidate, error) {
	rows, _ := s.pool.Query(ctx, `SELECT user_id, conv_id, conv_seq, inbox_seq, kind, sender, created_at
		FROM push_outbox ORDER BY created_at LIMIT $1`, limit)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.PushCandidate, error) {
		var (
			c    store.PushCandidate
			kind int16
		)
		err := r.Scan(&c.User, &c.Conv, &c.ConvSeq, &c.InboxSeq, &kind, &c.Sender, &c.TS)
		c.Kind = int(kind)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("pending push: %w", err)
	}
	return out, nil
}

// PushWrite applies push's writes in one transaction and (but for
// claims that conflict) one round trip. Settlements and claims lock their
// rows in key order, together, so that two nodes' transactions do not
// deadlock; a claim's row is locked while the rule decides, so that two
// nodes never both take a claim over.
func (s *Store) PushWrite(ctx context.Context, w store.PushWrites) ([]store.Claim, error) {
	type op struct {
		c     store.PushClaim
		claim int // index in w.Claim, or -1: a settlement
		sent  bool
	}
	ops := make([]op, 0, len(w.Finish)+len(w.Claim))
	for _, f := range w.Finish {
		ops = append(ops, op{c: f.PushClaim, claim: -1, sent: f.Sent})
	}
	for i, c := range w.Claim {
		ops = append(ops, op{c: c, claim: i})
	}
	slices.SortStableFunc(ops, func(a, b op) int { return comparePushClaims(a.c, b.c) })
	out := make([]store.Claim, len(w.Claim))
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		if len(w.Dequeue) > 0 {
			user, conv, seq := make([]string, len(w.Dequeue)), make([]string, len(w.Dequeue)), make([]int64, len(w.Dequeue))
			for i, k := range w.Dequeue {
				user[i], conv[i], seq[i] = k.User, k.Conv, k.ConvSeq
			}
			b.Queue(`DELETE FROM push_outbox o USING unnest($1::text[], $2::text[], $3::bigint[]) AS k(user_id, conv_id, conv_seq)
				WHERE o.user_id = k.user_id AND o.conv_id = k.conv_id AND o.conv_seq = k.conv_seq`, user, conv, seq)
		}
		// Most claims are new: insert them all; decide the ones that
		// conflicted one by one.
		var conflicts []int
		for _, o := range ops {
			k := o.c.Key
			switch {
			case o.claim < 0 && o.sent:
				b.Queue(`UPDATE push_claims SET sent = true WHERE user_id = $1 AND conv_id = $2 AND conv_seq = $3 AND client_id = $4`,
					k.User, k.Conv, k.ConvSeq, o.c.Client)
			case o.claim < 0:
				b.Queue(`DELETE FROM push_claims WHERE user_id = $1 AND conv_id = $2 AND conv_seq = $3 AND client_id = $4`,
					k.User, k.Conv, k.ConvSeq, o.c.Client)
			default:
				i := o.claim
				b.Queue(`INSERT INTO push_claims (user_id, conv_id, conv_seq, client_id, claimed_at)
					VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, k.User, k.Conv, k.ConvSeq, o.c.Client, w.Now).
					Exec(func(tag pgconn.CommandTag) error {
						if tag.RowsAffected() == 1 {
							out[i] = store.ClaimNew
						} else {
							conflicts = append(conflicts, i)
						}
						return nil
					})
			}
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		for _, i := range conflicts {
			c, err := decideClaim(ctx, tx, w.Claim[i], w.Now, w.Lease)
			if err != nil {
				return err
			}
			out[i] = c
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("push write: %w", err)
	}
	return out, nil
}

func comparePushClaims(a, b store.PushClaim) int {
	return cmp.Or(strings.Compare(a.Key.User, b.Key.User), strings.Compare(a.Key.Conv, b.Key.Conv),
		cmp.Compare(a.Key.ConvSeq, b.Key.ConvSeq), strings.Compare(a.Client, b.Client))
}

// decideClaim decides a claim that exists already, its row locked.
func decideClaim(ctx context.Context, tx pgx.Tx, c store.PushClaim, now, lease int64) (store.Claim, error) {
	k := c.Key
	var (
		sent                bool
		claimedAt, attempts int64
	)
	err := tx.QueryRow(ctx, `SELECT sent, claimed_at, attempts FROM push_claims
		WHERE user_id = $1 AND conv_id = $2 AND conv_seq = $3 AND client_id = $4 FOR UPDATE`,
		k.User, k.Conv, k.ConvSeq, c.Client).Scan(&sent, &claimedAt, &attempts)
	if errors.Is(err, pgx.ErrNoRows) { // released in between: retry as new
		return store.ClaimBusy, nil
	}
	if err != nil {
		return 0, err
	}
	claim := store.DecideClaim(true, sent, claimedAt, attempts, now, lease)
	if claim == store.ClaimTakeOver {
		_, err = tx.Exec(ctx, `UPDATE push_claims SET claimed_at = $5, attempts = attempts + 1
			WHERE user_id = $1 AND conv_id = $2 AND conv_seq = $3 AND client_id = $4`, k.User, k.Conv, k.ConvSeq, c.Client, now)
	}
	return claim, err
}

// PushReads reads what push jobs need, all in one round trip (one pgx
// batch of a few queries per job).
func (s *Store) PushReads(ctx context.Context, rs []store.PushRead) ([]store.PushInfo, error) {
	out := make([]store.PushInfo, len(rs))
	b := &pgx.Batch{}
	for i, r := range rs {
		k, info := r.Key, &out[i]
		b.Queue(qPushList, k.User).Query(func(rows pgx.Rows) error {
			var err error
			info.Devices, err = collectPushDevices(rows)
			return err
		})
		b.Queue(`SELECT coalesce((SELECT muted FROM conv_settings WHERE user_id = $1 AND conv_id = $2), false),
				coalesce(sum(greatest(0, c.last_seq - m.read_seq)), 0)::bigint,
				coalesce(sum(CASE WHEN c.id = $2 THEN greatest(0, c.last_seq - m.read_seq) ELSE 0 END), 0)::bigint
			FROM members m JOIN conversations c ON c.id = m.conv_id WHERE m.user_id = $1`, k.User, k.Conv).
			QueryRow(func(row pgx.Row) error { return row.Scan(&info.Muted, &info.Badge, &info.Unread) })
		if !r.Message {
			continue
		}
		b.Queue(`SELECT id, conv_id, seq, sender, cmid, type, body, ts, mentions FROM messages
			WHERE conv_id = $1 AND seq = $2
				AND EXISTS (SELECT 1 FROM members m WHERE m.conv_id = $1 AND m.user_id = $3)
				AND NOT EXISTS (SELECT 1 FROM hidden h WHERE h.user_id = $3 AND h.conv_id = $1 AND h.seq = $2)`,
			k.Conv, k.ConvSeq, k.User).Query(func(rows pgx.Rows) error {
			var (
				m     store.Message
				ments string
			)
			_, err := pgx.ForEachRow(rows, []any{&m.ID, &m.Conv, &m.Seq, &m.From, &m.Cmid, &m.Type, &m.Body, &m.TS, &ments}, func() error {
				m.Mentions = store.ParseMentions(ments)
				info.Message = &m
				return nil
			})
			return err
		})
	}
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("push reads: %w", err)
	}
	return out, nil
}

// ForgetPush deletes old claims.
func (s *Store) ForgetPush(ctx context.Context, before int64) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM push_claims WHERE claimed_at < $1`, before); err != nil {
		return fmt.Errorf("forget push claims: %w", err)
	}
	return nil
}
