package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/mqim/mqim/store"
)

// Every statement the store runs. They are prepared once per connection:
// parsing took 40% of Append's time when each call prepared its own. The
// statements of a feature are in its file, added to these lists.
const (
	qUserExists  = `SELECT EXISTS (SELECT 1 FROM users WHERE id = ?)`
	qConvExists  = `SELECT EXISTS (SELECT 1 FROM conversations WHERE id = ?)`
	qIsMember    = `SELECT EXISTS (SELECT 1 FROM members WHERE conv_id = ? AND user_id = ?)`
	qEnsureUser  = `INSERT INTO users (id) VALUES (?) ON CONFLICT DO NOTHING`
	qTouchDevice = `INSERT INTO devices (user_id, device_id, last_seen) VALUES (?, ?, ?)
		ON CONFLICT (user_id, device_id) DO UPDATE SET last_seen = excluded.last_seen`
	qStored      = `SELECT EXISTS (SELECT 1 FROM messages WHERE sender = ? AND cmid = ?)`
	qLookup      = `SELECT digest, id, conv_id, seq, type, body, ts, mentions FROM messages WHERE sender = ? AND cmid = ?`
	qNewConv     = `INSERT INTO conversations (id, kind) VALUES (?, ?)`
	qNewMember   = `INSERT INTO members (conv_id, user_id, role) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`
	qAdvanceConv = `UPDATE conversations SET last_seq = last_seq + ?, last_ts = max(last_ts, ?)
		WHERE id = ? RETURNING last_seq`
	qAdvanceUser = `UPDATE users SET inbox_seq = inbox_seq + ? WHERE id = ? RETURNING inbox_seq`
	qInsertMsg   = `INSERT INTO messages (id, conv_id, seq, sender, cmid, type, body, digest, ts, mentions, ref_seq)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qInsertInbox = `INSERT INTO inbox (user_id, seq, kind, conv_id, conv_seq, actor, ts) VALUES (?, ?, ?, ?, ?, ?, ?)`
	qSenderRead  = `UPDATE members SET read_seq = max(read_seq, ?) WHERE conv_id = ? AND user_id = ?`
	qLastSeq     = `SELECT last_seq FROM conversations WHERE id = ?`
	qReadSeqs    = `SELECT user_id, read_seq FROM members WHERE conv_id = ?`
	qReadSeq     = `SELECT read_seq FROM members WHERE conv_id = ? AND user_id = ?`
	qSetRead     = `UPDATE members SET read_seq = ? WHERE conv_id = ? AND user_id = ?`
	qSyncEvents  = `SELECT i.seq, i.kind, i.conv_id, i.conv_seq, i.actor, i.ts,
			m.id, m.sender, m.cmid, m.type, m.body, m.ts, m.mentions
		FROM inbox i
		LEFT JOIN messages m ON i.kind <> ? AND m.conv_id = i.conv_id AND m.seq = i.conv_seq
		WHERE i.user_id = ? AND i.seq > ?
		ORDER BY i.seq
		LIMIT ?`
	qLatest        = `SELECT coalesce((SELECT inbox_seq FROM users WHERE id = ?), 0)`
	historyCols    = `SELECT id, conv_id, seq, sender, cmid, type, body, ts, mentions FROM messages `
	qHistoryAfter  = historyCols + `WHERE conv_id = ?1 AND seq > ?2 AND seq < ?3 AND NOT EXISTS (SELECT 1 FROM hidden h WHERE h.user_id = ?5 AND h.conv_id = messages.conv_id AND h.seq = messages.seq) ORDER BY seq LIMIT ?4`
	qHistoryBefore = historyCols + `WHERE conv_id = ?1 AND seq < ?2 AND NOT EXISTS (SELECT 1 FROM hidden h WHERE h.user_id = ?4 AND h.conv_id = messages.conv_id AND h.seq = messages.seq) ORDER BY seq DESC LIMIT ?3`
	qConversations = `SELECT c.id, c.kind, c.last_seq, me.read_seq,
			coalesce(p.user_id, ''), coalesce(p.read_seq, 0), coalesce(g.name, ''),
			m.id, m.sender, m.cmid, m.type, m.body, m.ts, m.mentions
		FROM members me
		JOIN conversations c ON c.id = me.conv_id
		LEFT JOIN groups g ON g.id = c.id
		LEFT JOIN members p ON c.kind = '` + store.ConvDirect + `' AND p.conv_id = c.id AND p.user_id <> me.user_id
		LEFT JOIN messages m ON m.conv_id = c.id AND m.seq = c.last_seq
		WHERE me.user_id = ?
		ORDER BY c.last_ts DESC, c.id
		LIMIT ?`
)

var (
	writeQueries = []string{qUserExists, qConvExists, qEnsureUser, qTouchDevice, qLookup, qNewConv, qNewMember,
		qAdvanceConv, qAdvanceUser, qInsertMsg, qInsertInbox, qSenderRead, qLastSeq, qReadSeqs, qReadSeq, qSetRead}
	readQueries = []string{qUserExists, qStored, qIsMember, qSyncEvents, qLatest, qHistoryAfter, qHistoryBefore,
		qConversations, qReadSeqs}
)

// stmts are the prepared statements of one *sql.DB, by query. database/sql
// prepares each again on every connection of the pool the first time it is
// used there, and keeps it.
type stmts map[string]*sql.Stmt

func prepare(ctx context.Context, db *sql.DB, queries []string) (stmts, error) {
	ps := make(stmts, len(queries))
	for _, q := range queries {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			ps.close()
			return nil, fmt.Errorf("prepare %q: %w", q, err)
		}
		ps[q] = st
	}
	return ps, nil
}

func (ps stmts) close() {
	for _, st := range ps {
		st.Close()
	}
}

// txn is a transaction that runs the prepared statements.
type txn struct {
	ctx context.Context
	tx  *sql.Tx
	ps  stmts
	own map[string]*sql.Stmt // ps bound to tx
}

func (t *txn) stmt(q string) *sql.Stmt {
	st, ok := t.own[q]
	if !ok {
		p, ok := t.ps[q]
		if !ok {
			panic("sqlitestore: query not prepared: " + q)
		}
		st = t.tx.StmtContext(t.ctx, p)
		t.own[q] = st
	}
	return st
}

func (t *txn) exec(q string, args ...any) error {
	_, err := t.stmt(q).ExecContext(t.ctx, args...)
	return err
}

func (t *txn) queryRow(q string, args ...any) *sql.Row {
	return t.stmt(q).QueryRowContext(t.ctx, args...)
}

func (t *txn) query(q string, args ...any) (*sql.Rows, error) {
	return t.stmt(q).QueryContext(t.ctx, args...)
}

// inTx runs fn in a transaction on db and commits it if fn returns nil.
func inTx(ctx context.Context, db *sql.DB, ps stmts, opts *sql.TxOptions, fn func(*txn) error) error {
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	if err := fn(&txn{ctx: ctx, tx: tx, ps: ps, own: make(map[string]*sql.Stmt)}); err != nil {
		tx.Rollback() //nolint:errcheck // the error of fn says what went wrong
		return err
	}
	return tx.Commit()
}

// write runs fn in a transaction on the writer connection.
func (s *Store) write(ctx context.Context, fn func(*txn) error) error {
	return inTx(ctx, s.w, s.wps, nil, fn)
}

// read runs fn in a read transaction on the read pool, so that its queries
// see one snapshot. It never commits anything.
func (s *Store) read(ctx context.Context, fn func(*txn) error) error {
	return inTx(ctx, s.r, s.rps, &sql.TxOptions{ReadOnly: true}, fn)
}

// exists looks each of keys up with query (an EXISTS of one argument).
func (t *txn) exists(query string, keys []string) (map[string]bool, error) {
	out := make(map[string]bool, len(keys))
	for _, k := range keys {
		var ok bool
		if err := t.queryRow(query, k).Scan(&ok); err != nil {
			return nil, fmt.Errorf("look up %q: %w", k, err)
		}
		out[k] = ok
	}
	return out, nil
}

// addEvents adds an event like ev to the inbox of each of users (who
// exist) and returns the events.
func (t *txn) addEvents(users []string, ev store.InboxEvent) ([]store.InboxEvent, error) {
	seqs := make(map[string]int64, len(users))
	for _, u := range users {
		var seq int64
		if err := t.queryRow(qAdvanceUser, 1, u).Scan(&seq); err != nil {
			return nil, fmt.Errorf("advance inbox seq of %q: %w", u, err)
		}
		seqs[u] = seq
	}
	events, err := store.EventsFor(users, seqs, ev)
	if err != nil {
		return nil, err
	}
	return events, t.insertInbox(events)
}

func (t *txn) insertInbox(events []store.InboxEvent) error {
	for _, e := range events {
		if err := t.exec(qInsertInbox, e.User, e.Seq, store.KindCode(e.Kind), e.Conv, e.ConvSeq, e.Actor, e.TS); err != nil {
			return err
		}
	}
	return nil
}

func (t *txn) insertMessage(m *store.MessageRow) error {
	return t.exec(qInsertMsg, m.ID, m.Conv, m.Seq, m.From, m.Cmid, m.Type, m.Body, m.Digest, m.TS, m.Mentions, m.RefSeq)
}
