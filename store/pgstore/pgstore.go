// Package pgstore implements store.Store on PostgreSQL with pgx.
//
// Several nodes may share one database. Sequences are allocated inside the
// transaction that writes the rows they number, by updating counter rows
// (conversations.last_seq, users.inbox_seq) that are locked in one global
// order: conversations before users, each sorted by id. Concurrent
// transactions therefore serialise on the counters they share but never
// deadlock, and a rolled back transaction allocates nothing.
//
// A Store is safe for concurrent use.
package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mqim/mqim/store"
	"github.com/mqim/mqim/store/internal/migrations"
)

// Store is a store.Store on PostgreSQL.
type Store struct {
	store.MessageChanges // Recall, Edit, DeleteForMe on changeMsg (edits.go)

	pool *pgxpool.Pool
}

var _ store.Store = (*Store)(nil)

// ErrInvalidOption is wrapped by Open when an Option is invalid.
var ErrInvalidOption = errors.New("pgstore: invalid option")

type config struct {
	maxConns int32
}

// Option configures Open.
type Option func(*config) error

// WithMaxConns sets the size of the connection pool. Zero means the pgxpool
// default (pool_max_conns in the URL, else max(4, number of CPUs)).
func WithMaxConns(n int32) Option {
	return func(c *config) error {
		if n < 0 {
			return fmt.Errorf("%w: max conns %d", ErrInvalidOption, n)
		}
		c.maxConns = n
		return nil
	}
}

// defaultConnectTimeout bounds each connection attempt when the URL does not
// set connect_timeout, so that an unreachable host fails instead of hanging.
const defaultConnectTimeout = 10 * time.Second

// Open connects to the database at url (a postgres:// URL or a keyword/value
// string), checks that it answers, and applies the embedded migrations that
// are missing. Its sessions run with enable_seqscan=off and jit=off unless
// url sets them.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	var c config
	for _, o := range opts {
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse postgres url: %w", err)
	}
	if c.maxConns > 0 {
		pc.MaxConns = c.maxConns
	}
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	// Every query of the store is a key lookup or a short range scan. On
	// new tables, whose statistics say they are nearly empty, the planner
	// picks sequential scans, and prepared statements keep those plans after
	// the tables have grown, until autovacuum analyzes them: Append measured
	// 3x slower. JIT never pays off for such queries. The URL may override.
	for k, v := range map[string]string{"enable_seqscan": "off", "jit": "off"} {
		if _, ok := pc.ConnConfig.RuntimeParams[k]; !ok {
			pc.ConnConfig.RuntimeParams[k] = v
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, &connectError{err}
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, &connectError{err}
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("migrate postgres schema: %w", err)
	}
	s := &Store{pool: pool}
	s.MessageChanges = store.NewMessageChanges(s.changeMsg)
	return s, nil
}

// Close closes the connection pool.
func (s *Store) Close() {
	s.pool.Close()
}

// connectError says in one line that the database could not be reached; pgx
// puts the error of each address tried on a line of its own.
type connectError struct{ err error }

func (e *connectError) Error() string {
	var b strings.Builder
	b.WriteString("connect to postgres:")
	prev := ""
	for line := range strings.Lines(e.err.Error()) {
		line = strings.TrimSpace(line)
		if line == "" || line == prev {
			continue // sslmode=prefer tries each address twice
		}
		if prev != "" && !strings.HasSuffix(prev, ":") {
			b.WriteString(";")
		}
		b.WriteString(" " + line)
		prev = line
	}
	return b.String()
}

func (e *connectError) Unwrap() error { return e.err }

//go:embed migrations/*.sql
var schema embed.FS

// migrate applies the migrations not yet recorded in schema_migrations, in
// name order, in one transaction.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// Nodes starting together queue here. The key includes the schema
		// so that separate schemas (tests) migrate independently.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('mqim.migrate.' || coalesce(current_schema(), '')))`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    text PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `SELECT version FROM schema_migrations`)
		done, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		return migrations.Apply(schema, "migrations", done, func(f migrations.File) error {
			// Without arguments pgx uses the simple protocol, which runs a
			// file of several statements.
			if _, err := tx.Exec(ctx, f.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, f.Name)
			return err
		})
	})
}

// EnsureUser creates user if missing and records device as seen now.
func (s *Store) EnsureUser(ctx context.Context, user, device string) error {
	b := &pgx.Batch{}
	var deleted bool
	b.Queue(`SELECT EXISTS (SELECT 1 FROM deleted_users WHERE id = $1)`, user).QueryRow(func(r pgx.Row) error { return r.Scan(&deleted) })
	// A deleted id is never created again [IM-3.1-5].
	b.Queue(`INSERT INTO users (id) SELECT $1 WHERE NOT EXISTS (SELECT 1 FROM deleted_users WHERE id = $1) ON CONFLICT DO NOTHING`, user)
	if device != "" {
		b.Queue(`INSERT INTO devices (user_id, device_id) SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM deleted_users WHERE id = $1)
			ON CONFLICT (user_id, device_id) DO UPDATE SET last_seen = now()`, user, device)
	}
	// A batch runs in one implicit transaction, so the device row sees
	// the user row.
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("ensure user %q: %w", user, err)
	}
	if deleted {
		return fmt.Errorf("ensure user: %w", store.UserDeletedError(user))
	}
	return nil
}

// UserExists reports whether user exists.
func (s *Store) Stored(ctx context.Context, from, cmid string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM messages WHERE sender = $1 AND cmid = $2)`, from, cmid).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("stored %q: %w", from, err)
	}
	return ok, nil
}

func (s *Store) UserExists(ctx context.Context, user string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)`, user).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("user exists %q: %w", user, err)
	}
	return ok, nil
}
