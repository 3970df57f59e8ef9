package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mqim/mqim/store"
)

// Account returns user's account state and whether client is revoked.
func (s *Store) Account(ctx context.Context, user, client string) (store.Account, error) {
	var a store.Account
	var disabled int64
	err := s.pool.QueryRow(ctx, `SELECT
			coalesce((SELECT true FROM users WHERE id = $1), false),
			coalesce((SELECT disabled_at FROM users WHERE id = $1), 0),
			coalesce((SELECT not_before FROM users WHERE id = $1), 0),
			EXISTS (SELECT 1 FROM deleted_users WHERE id = $1),
			EXISTS (SELECT 1 FROM revoked_devices WHERE user_id = $1 AND client_id = $2)`, user, client).
		Scan(&a.Exists, &disabled, &a.NotBefore, &a.Deleted, &a.DeviceRevoked)
	if err != nil {
		return store.Account{}, fmt.Errorf("account of %q: %w", user, err)
	}
	a.Disabled = disabled > 0
	return a, nil
}

// updateUser runs an update of user's row that must find it.
func (s *Store) updateUser(ctx context.Context, what, user, sql string, args ...any) error {
	tag, err := s.pool.Exec(ctx, sql, append([]any{user}, args...)...)
	if err != nil {
		return fmt.Errorf("%s %q: %w", what, user, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s: %w", what, store.UnknownUserError(user))
	}
	return nil
}

// SetDisabled disables or enables user.
func (s *Store) SetDisabled(ctx context.Context, user string, disabled bool) error {
	return s.updateUser(ctx, "set disabled", user,
		`UPDATE users SET disabled_at = CASE WHEN $2 THEN greatest(disabled_at, 1, (extract(epoch from now()) * 1000)::bigint) ELSE 0 END WHERE id = $1`, disabled)
}

// RevokeTokens moves user's not-before forward.
func (s *Store) RevokeTokens(ctx context.Context, user string, notBefore int64) error {
	return s.updateUser(ctx, "revoke tokens", user, `UPDATE users SET not_before = greatest(not_before, $2) WHERE id = $1`, notBefore)
}

// RevokeDevice revokes or restores one client id of user.
func (s *Store) RevokeDevice(ctx context.Context, user, client string, revoked bool) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var ok bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 FOR KEY SHARE)`, user).Scan(&ok); err != nil {
			return err
		}
		if !ok {
			return store.UnknownUserError(user)
		}
		var err error
		if revoked {
			_, err = tx.Exec(ctx, `INSERT INTO revoked_devices (user_id, client_id, revoked_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
				user, client, store.NowMillis())
		} else {
			_, err = tx.Exec(ctx, `DELETE FROM revoked_devices WHERE user_id = $1 AND client_id = $2`, user, client)
		}
		return err
	})
	return store.WrapUserError("revoke device "+client+" of", user, err)
}

// RevokedDevices lists user's revoked client ids.
func (s *Store) RevokedDevices(ctx context.Context, user string) ([]string, error) {
	rows, _ := s.pool.Query(ctx, `SELECT client_id FROM revoked_devices WHERE user_id = $1 ORDER BY client_id COLLATE "C"`, user)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("revoked devices of %q: %w", user, err)
	}
	return ids, nil
}

// DeleteUser erases user's personal data and tombstones the id
// [IM-8.3-5]. The user's row is locked first, as Append locks it.
func (s *Store) DeleteUser(ctx context.Context, user string, ts int64) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var live, dead bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 FOR UPDATE),
				EXISTS (SELECT 1 FROM deleted_users WHERE id = $1)`, user).Scan(&live, &dead); err != nil {
			return err
		}
		if !live && !dead {
			return store.UnknownUserError(user)
		}
		b := &pgx.Batch{}
		b.Queue(`UPDATE messages SET type = $2, body = $3, mentions = '', recalled_at = CASE WHEN recalled_at = 0 THEN $4 ELSE recalled_at END
			WHERE sender = $1 AND (type <> $2 OR body <> $3)`, user, store.TypeRecalled, store.RecalledBody, ts)
		for _, q := range store.DeleteUserRows {
			b.Queue(q, user)
		}
		b.Queue(`INSERT INTO deleted_users (id, deleted_at) VALUES ($1, $2) ON CONFLICT DO NOTHING`, user, ts)
		return tx.SendBatch(ctx, b).Close()
	})
	return store.WrapUserError("delete user", user, err)
}

// AppendAudit stores an audit entry.
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEntry) (int64, error) {
	var id int64
	err := s.pool.QueryRow(ctx, `INSERT INTO audit_log (ts, actor, role, action, target, detail, remote)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`, e.TS, e.Actor, e.Role, e.Action, e.Target, e.Detail, e.Remote).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("append audit %s: %w", e.Action, err)
	}
	return id, nil
}

// Audit returns a page of the audit log, newest first.
func (s *Store) Audit(ctx context.Context, q store.AuditQuery) (store.AuditPage, error) {
	limit := store.AuditLimit(q.Limit)
	rows, _ := s.pool.Query(ctx, `SELECT id, ts, actor, role, action, target, detail, remote FROM audit_log
		WHERE ($1 = 0 OR id < $1) AND ($2 = '' OR target = $2) AND ($3 = '' OR action = $3)
		ORDER BY id DESC LIMIT $4`, q.Before, q.Target, q.Action, limit+1)
	var e store.AuditEntry
	var list []store.AuditEntry
	_, err := pgx.ForEachRow(rows, []any{&e.ID, &e.TS, &e.Actor, &e.Role, &e.Action, &e.Target, &e.Detail, &e.Remote}, func() error {
		list = append(list, e)
		return nil
	})
	if err != nil {
		return store.AuditPage{}, fmt.Errorf("audit log: %w", err)
	}
	return store.FinishAudit(list, limit), nil
}

// UserRows counts, in every table of the schema, the rows naming user in
// a column of store.UserColumns (or users.id, deleted_users.id).
func (s *Store) UserRows(ctx context.Context, user string) (map[string]int64, error) {
	rows, _ := s.pool.Query(ctx, `SELECT table_name, column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND (column_name = ANY($1) OR column_name = 'id' AND table_name IN ('users', 'deleted_users'))`,
		store.UserColumns)
	type col struct{ table, column string }
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (col, error) {
		var c col
		return c, r.Scan(&c.table, &c.column)
	})
	if err != nil {
		return nil, fmt.Errorf("user rows: %w", err)
	}
	out := make(map[string]int64, len(cols))
	for _, c := range cols {
		var n int64
		q := fmt.Sprintf(`SELECT count(*) FROM %s WHERE %s = $1`, pgx.Identifier{c.table}.Sanitize(), pgx.Identifier{c.column}.Sanitize())
		if err := s.pool.QueryRow(ctx, q, user).Scan(&n); err != nil {
			return nil, fmt.Errorf("user rows in %s.%s: %w", c.table, c.column, err)
		}
		out[c.table+"."+c.column] = n
	}
	return out, nil
}
