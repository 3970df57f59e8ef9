package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/mqim/mqim/store"
)

const (
	qPushOutbox = `INSERT INTO push_outbox (user_id, conv_id, conv_seq, inbox_seq, kind, sender, created_at)
		SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE EXISTS (SELECT 1 FROM push_devices WHERE user_id = ?1)
		ON CONFLICT DO NOTHING`
	qPushEveryone = `INSERT INTO push_outbox (user_id, conv_id, conv_seq, inbox_seq, kind, sender, created_at)
		SELECT m.user_id, ?1, ?2, 0, ?3, ?4, ?5 FROM members m
		WHERE m.conv_id = ?1 AND m.user_id <> ?4 AND EXISTS (SELECT 1 FROM push_devices d WHERE d.user_id = m.user_id)
		ON CONFLICT DO NOTHING`
	qPushCount    = `SELECT count(*) FROM push_devices WHERE user_id = ? AND client_id <> ?`
	qPushDelToken = `DELETE FROM push_devices WHERE platform = ? AND token = ? AND NOT (user_id = ? AND client_id = ?)`
	qPushPut      = `INSERT INTO push_devices (user_id, client_id, platform, token, app, env, locale, created_at)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
		ON CONFLICT (user_id, client_id) DO UPDATE SET platform = ?3, token = ?4, app = ?5, env = ?6, locale = ?7, created_at = ?8`
	qPushUnreg    = `DELETE FROM push_devices WHERE user_id = ? AND client_id = ?`
	qPushList     = `SELECT user_id, client_id, platform, token, app, env, locale, created_at FROM push_devices WHERE user_id = ? ORDER BY client_id`
	qPushRemove   = `DELETE FROM push_devices WHERE platform = ? AND token = ?`
	qPushOthers   = `SELECT EXISTS (SELECT 1 FROM push_devices WHERE client_id = ? AND user_id <> ?)`
	qPushTakeOve  = `DELETE FROM push_devices WHERE client_id = ? AND user_id <> ?`
	qPushPending  = `SELECT user_id, conv_id, conv_seq, inbox_seq, kind, sender, created_at FROM push_outbox ORDER BY created_at LIMIT ?`
	qPushDequeue  = `DELETE FROM push_outbox WHERE user_id = ? AND conv_id = ? AND conv_seq = ?`
	qPushClaimNew = `INSERT INTO push_claims (user_id, conv_id, conv_seq, client_id, claimed_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	qPushClaimed  = `SELECT sent, claimed_at, attempts FROM push_claims WHERE user_id = ? AND conv_id = ? AND conv_seq = ? AND client_id = ?`
	qPushClaim    = `INSERT INTO push_claims (user_id, conv_id, conv_seq, client_id, claimed_at) VALUES (?1, ?2, ?3, ?4, ?5)
		ON CONFLICT DO UPDATE SET claimed_at = ?5, attempts = attempts + 1`
	qPushSent    = `UPDATE push_claims SET sent = 1 WHERE user_id = ? AND conv_id = ? AND conv_seq = ? AND client_id = ?`
	qPushRelease = `DELETE FROM push_claims WHERE user_id = ? AND conv_id = ? AND conv_seq = ? AND client_id = ?`
	qPushForget  = `DELETE FROM push_claims WHERE claimed_at < ?`
	// muted, then the unread counts over all conversations and in conv
	qPushState = `SELECT coalesce((SELECT muted FROM conv_settings WHERE user_id = ?1 AND conv_id = ?2), 0),
			coalesce(sum(max(0, c.last_seq - m.read_seq)), 0),
			coalesce(sum(CASE WHEN c.id = ?2 THEN max(0, c.last_seq - m.read_seq) ELSE 0 END), 0)
		FROM members m JOIN conversations c ON c.id = m.conv_id WHERE m.user_id = ?1`
	qPushMessage = historyCols + `WHERE conv_id = ?1 AND seq = ?2
		AND EXISTS (SELECT 1 FROM members m WHERE m.conv_id = ?1 AND m.user_id = ?3)
		AND NOT EXISTS (SELECT 1 FROM hidden h WHERE h.user_id = ?3 AND h.conv_id = ?1 AND h.seq = ?2)`
)

func init() {
	writeQueries = append(writeQueries, qPushOutbox, qPushEveryone, qPushCount, qPushDelToken, qPushPut, qPushUnreg,
		qPushRemove, qPushTakeOve, qPushDequeue, qPushClaimNew, qPushClaimed, qPushClaim, qPushSent, qPushRelease, qPushForget)
	readQueries = append(readQueries, qPushList, qPushOthers, qPushPending, qPushState, qPushMessage)
}

// writePush writes the outbox rows of a batch, in its transaction: only
// for users with a registered push device.
func (t *txn) writePush(cands []store.PushCandidate) error {
	for _, c := range cands {
		var err error
		if c.Kind == store.PushEveryone {
			err = t.exec(qPushEveryone, c.Conv, c.ConvSeq, c.Kind, c.Sender, c.TS)
		} else {
			err = t.exec(qPushOutbox, c.User, c.Conv, c.ConvSeq, c.InboxSeq, c.Kind, c.Sender, c.TS)
		}
		if err != nil {
			return fmt.Errorf("write push outbox: %w", err)
		}
	}
	return nil
}

// RegisterPush adds or replaces a registration.
func (s *Store) RegisterPush(ctx context.Context, d store.PushDevice, max int) error {
	err := s.write(ctx, func(t *txn) error {
		var n int
		if err := t.queryRow(qPushCount, d.User, d.Client).Scan(&n); err != nil {
			return err
		}
		if n >= max {
			return store.Refuse(store.ErrPushLimit, "at most %d push registrations per user", max)
		}
		if err := t.exec(qPushDelToken, d.Platform, d.Token, d.User, d.Client); err != nil {
			return err
		}
		return t.exec(qPushPut, d.User, d.Client, d.Platform, d.Token, d.App, d.Env, d.Locale, d.Created)
	})
	if err != nil {
		return fmt.Errorf("register push of %q: %w", d.User, err)
	}
	return nil
}

// UnregisterPush removes a registration.
func (s *Store) UnregisterPush(ctx context.Context, user, client string) (bool, error) {
	var n int64
	err := s.write(ctx, func(t *txn) error {
		r, err := t.stmt(qPushUnreg).ExecContext(t.ctx, user, client)
		if err == nil {
			n, err = r.RowsAffected()
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("unregister push of %q: %w", user, err)
	}
	return n > 0, nil
}

// PushDevices lists a user's registrations.
func (s *Store) PushDevices(ctx context.Context, user string) ([]store.PushDevice, error) {
	var out []store.PushDevice
	err := s.read(ctx, func(t *txn) error {
		var err error
		out, err = t.pushDevices(user)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("push devices of %q: %w", user, err)
	}
	return out, nil
}

func (t *txn) pushDevices(user string) ([]store.PushDevice, error) {
	rows, err := t.query(qPushList, user)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.PushDevice
	for rows.Next() {
		var d store.PushDevice
		if err := rows.Scan(&d.User, &d.Client, &d.Platform, &d.Token, &d.App, &d.Env, &d.Locale, &d.Created); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// PushReads reads what push jobs need, in one read transaction: a
// transaction (and a pool connection) per read cost the push workers more
// than the queries (docs/BENCHMARKS.md, "Offline push").
func (s *Store) PushReads(ctx context.Context, rs []store.PushRead) ([]store.PushInfo, error) {
	out := make([]store.PushInfo, len(rs))
	err := s.read(ctx, func(t *txn) error {
		for i, r := range rs {
			k, info := r.Key, store.PushInfo{}
			var err error
			if info.Devices, err = t.pushDevices(k.User); err != nil {
				return err
			}
			if err := t.queryRow(qPushState, k.User, k.Conv).Scan(&info.Muted, &info.Badge, &info.Unread); err != nil {
				return err
			}
			if len(info.Devices) == 0 {
				out[i] = store.PushInfo{Muted: info.Muted}
				continue
			}
			if r.Message {
				var (
					m     store.Message
					ments string
				)
				err := t.queryRow(qPushMessage, k.Conv, k.ConvSeq, k.User).Scan(&m.ID, &m.Conv, &m.Seq, &m.From, &m.Cmid, &m.Type, &m.Body, &m.TS, &ments)
				switch {
				case err == nil:
					m.Mentions = store.ParseMentions(ments)
					info.Message = &m
				case !errors.Is(err, sql.ErrNoRows):
					return err
				}
			}
			out[i] = info
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("push reads: %w", err)
	}
	return out, nil
}

// RemovePushToken removes a token.
func (s *Store) RemovePushToken(ctx context.Context, platform, token string) error {
	if err := s.write(ctx, func(t *txn) error { return t.exec(qPushRemove, platform, token) }); err != nil {
		return fmt.Errorf("remove push token: %w", err)
	}
	return nil
}

// TakeOverClient removes other users' registrations of client. It reads
// first: a CONNECT must not take the single writer when there is nothing
// to remove, which is nearly always.
func (s *Store) TakeOverClient(ctx context.Context, client, user string) (int, error) {
	var found bool
	if err := s.read(ctx, func(t *txn) error { return t.queryRow(qPushOthers, client, user).Scan(&found) }); err != nil {
		return 0, fmt.Errorf("push registrations of client %q: %w", client, err)
	}
	if !found {
		return 0, nil
	}
	var n int64
	err := s.write(ctx, func(t *txn) error {
		r, err := t.stmt(qPushTakeOve).ExecContext(t.ctx, client, user)
		if err == nil {
			n, err = r.RowsAffected()
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("take over push registrations of client %q: %w", client, err)
	}
	return int(n), nil
}

// PendingPush returns the oldest outbox rows.
func (s *Store) PendingPush(ctx context.Context, limit int) ([]store.PushCandidate, error) {
	var out []store.PushCandidate
	err := s.read(ctx, func(t *txn) error {
		out = nil
		rows, err := t.query(qPushPending, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c store.PushCandidate
			if err := rows.Scan(&c.User, &c.Conv, &c.ConvSeq, &c.InboxSeq, &c.Kind, &c.Sender, &c.TS); err != nil {
				return err
			}
			out = append(out, c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("pending push: %w", err)
	}
	return out, nil
}

// PushWrite applies push's writes in one write transaction (one fsync
// on the writer the sends use too): outbox rows handed to the work queue,
// settlements, then claims.
func (s *Store) PushWrite(ctx context.Context, w store.PushWrites) ([]store.Claim, error) {
	var out []store.Claim
	err := s.write(ctx, func(t *txn) error {
		for _, k := range w.Dequeue {
			if err := t.exec(qPushDequeue, k.User, k.Conv, k.ConvSeq); err != nil {
				return fmt.Errorf("dequeue: %w", err)
			}
		}
		for _, f := range w.Finish {
			q := qPushRelease
			if f.Sent {
				q = qPushSent
			}
			if err := t.exec(q, f.Key.User, f.Key.Conv, f.Key.ConvSeq, f.Client); err != nil {
				return fmt.Errorf("finish: %w", err)
			}
		}
		var err error
		if out, err = t.claimPush(w.Claim, w.Now, w.Lease); err != nil {
			return fmt.Errorf("claim: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("push write: %w", err)
	}
	return out, nil
}

func (t *txn) claimPush(cs []store.PushClaim, now, lease int64) ([]store.Claim, error) {
	out := make([]store.Claim, len(cs))
	for i, c := range cs {
		var (
			sent                bool
			claimedAt, attempts int64
		)
		k := c.Key
		// Most claims are new: insert first, read only on a conflict.
		r, err := t.stmt(qPushClaimNew).ExecContext(t.ctx, k.User, k.Conv, k.ConvSeq, c.Client, now)
		if err != nil {
			return nil, err
		}
		if n, err := r.RowsAffected(); err != nil {
			return nil, err
		} else if n == 1 {
			out[i] = store.ClaimNew
			continue
		}
		err = t.queryRow(qPushClaimed, k.User, k.Conv, k.ConvSeq, c.Client).Scan(&sent, &claimedAt, &attempts)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
		out[i] = store.DecideClaim(err == nil, sent, claimedAt, attempts, now, lease)
		if out[i] == store.ClaimNew || out[i] == store.ClaimTakeOver {
			if err := t.exec(qPushClaim, k.User, k.Conv, k.ConvSeq, c.Client, now); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// ForgetPush deletes old claims.
func (s *Store) ForgetPush(ctx context.Context, before int64) error {
	if err := s.write(ctx, func(t *txn) error { return t.exec(qPushForget, before) }); err != nil {
		return fmt.Errorf("forget push claims: %w", err)
	}
	return nil
}
