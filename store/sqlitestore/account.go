package sqlitestore

import (
	"context"
	"fmt"
	"slices"

	"github.com/mqim/mqim/store"
)

const (
	qUserDeleted = `SELECT EXISTS (SELECT 1 FROM deleted_users WHERE id = ?)`
	qAccount     = `SELECT
			EXISTS (SELECT 1 FROM users WHERE id = ?1),
			coalesce((SELECT disabled_at FROM users WHERE id = ?1), 0),
			coalesce((SELECT not_before FROM users WHERE id = ?1), 0),
			EXISTS (SELECT 1 FROM deleted_users WHERE id = ?1),
			EXISTS (SELECT 1 FROM revoked_devices WHERE user_id = ?1 AND client_id = ?2)`
	qAudit = `SELECT id, ts, actor, role, action, target, detail, remote FROM audit_log
		WHERE (?1 = 0 OR id < ?1) AND (?2 = '' OR target = ?2) AND (?3 = '' OR action = ?3)
		ORDER BY id DESC LIMIT ?4`
)

const (
	qEnable        = `UPDATE users SET disabled_at = 0 WHERE id = ?`
	qDisable       = `UPDATE users SET disabled_at = max(disabled_at, 1, ?2) WHERE id = ?1`
	qRevokeTokens  = `UPDATE users SET not_before = max(not_before, ?2) WHERE id = ?1`
	qRestoreDevice = `DELETE FROM revoked_devices WHERE user_id = ? AND client_id = ?`
	qRevokeDevice  = `INSERT INTO revoked_devices (user_id, client_id, revoked_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`
	qRecallAllOf   = `UPDATE messages SET type = ?2, body = ?3, mentions = '', recalled_at = CASE WHEN recalled_at = 0 THEN ?4 ELSE recalled_at END
			WHERE sender = ?1 AND (type <> ?2 OR body <> ?3)`
	qTombstone   = `INSERT INTO deleted_users (id, deleted_at) VALUES (?, ?) ON CONFLICT DO NOTHING`
	qAppendAudit = `INSERT INTO audit_log (ts, actor, role, action, target, detail, remote)
			VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`
)

func init() {
	writeQueries = append(writeQueries, qUserDeleted, qEnable, qDisable, qRevokeTokens, qRestoreDevice, qRevokeDevice, qRecallAllOf, qTombstone, qAppendAudit)
	writeQueries = append(writeQueries, store.DeleteUserRows...)
	readQueries = append(readQueries, qAccount)
}

// Account returns user's account state and whether client is revoked.
func (s *Store) Account(ctx context.Context, user, client string) (store.Account, error) {
	var a store.Account
	var disabled int64
	err := s.rps[qAccount].QueryRowContext(ctx, user, client).Scan(&a.Exists, &disabled, &a.NotBefore, &a.Deleted, &a.DeviceRevoked)
	if err != nil {
		return store.Account{}, fmt.Errorf("account of %q: %w", user, err)
	}
	a.Disabled = disabled > 0
	return a, nil
}

// updateUser runs, in a write transaction, a change of user that must
// find the user.
func (s *Store) updateUser(ctx context.Context, what, user string, fn func(*txn) error) error {
	err := s.write(ctx, func(t *txn) error {
		known, err := t.exists(qUserExists, []string{user})
		if err != nil {
			return err
		}
		if !known[user] {
			return store.UnknownUserError(user)
		}
		return fn(t)
	})
	return store.WrapUserError(what, user, err)
}

// SetDisabled disables or enables user.
func (s *Store) SetDisabled(ctx context.Context, user string, disabled bool) error {
	return s.updateUser(ctx, "set disabled", user, func(t *txn) error {
		if !disabled {
			return t.exec(qEnable, user)
		}
		return t.exec(qDisable, user, store.NowMillis())
	})
}

// RevokeTokens moves user's not-before forward.
func (s *Store) RevokeTokens(ctx context.Context, user string, notBefore int64) error {
	return s.updateUser(ctx, "revoke tokens", user, func(t *txn) error {
		return t.exec(qRevokeTokens, user, notBefore)
	})
}

// RevokeDevice revokes or restores one client id of user.
func (s *Store) RevokeDevice(ctx context.Context, user, client string, revoked bool) error {
	return s.updateUser(ctx, "revoke device", user, func(t *txn) error {
		if !revoked {
			return t.exec(qRestoreDevice, user, client)
		}
		return t.exec(qRevokeDevice,
			user, client, store.NowMillis())
	})
}

// RevokedDevices lists user's revoked client ids.
func (s *Store) RevokedDevices(ctx context.Context, user string) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT client_id FROM revoked_devices WHERE user_id = ? ORDER BY client_id`, user)
	if err != nil {
		return nil, fmt.Errorf("revoked devices of %q: %w", user, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("revoked devices of %q: %w", user, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("revoked devices of %q: %w", user, err)
	}
	return ids, nil
}

// DeleteUser erases user's personal data and tombstones the id [IM-8.3-5].
func (s *Store) DeleteUser(ctx context.Context, user string, ts int64) error {
	err := s.write(ctx, func(t *txn) error {
		live, err := t.exists(qUserExists, []string{user})
		if err != nil {
			return err
		}
		dead, err := t.exists(qUserDeleted, []string{user})
		if err != nil {
			return err
		}
		if !live[user] && !dead[user] {
			return store.UnknownUserError(user)
		}
		if err := t.exec(qRecallAllOf, user, store.TypeRecalled, store.RecalledBody, ts); err != nil {
			return err
		}
		for _, q := range store.DeleteUserRows {
			if err := t.exec(q, user); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return t.exec(qTombstone, user, ts)
	})
	return store.WrapUserError("delete user", user, err)
}

// AppendAudit stores an audit entry.
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEntry) (int64, error) {
	var id int64
	err := s.write(ctx, func(t *txn) error {
		return t.queryRow(qAppendAudit, e.TS, e.Actor, e.Role, e.Action, e.Target, e.Detail, e.Remote).Scan(&id)
	})
	if err != nil {
		return 0, fmt.Errorf("append audit %s: %w", e.Action, err)
	}
	return id, nil
}

// Audit returns a page of the audit log, newest first.
func (s *Store) Audit(ctx context.Context, q store.AuditQuery) (store.AuditPage, error) {
	limit := store.AuditLimit(q.Limit)
	rows, err := s.r.QueryContext(ctx, qAudit, q.Before, q.Target, q.Action, limit+1)
	if err != nil {
		return store.AuditPage{}, fmt.Errorf("audit log: %w", err)
	}
	defer rows.Close()
	var list []store.AuditEntry
	for rows.Next() {
		var e store.AuditEntry
		if err := rows.Scan(&e.ID, &e.TS, &e.Actor, &e.Role, &e.Action, &e.Target, &e.Detail, &e.Remote); err != nil {
			return store.AuditPage{}, fmt.Errorf("audit log: %w", err)
		}
		list = append(list, e)
	}
	if err := rows.Err(); err != nil {
		return store.AuditPage{}, fmt.Errorf("audit log: %w", err)
	}
	return store.FinishAudit(list, limit), nil
}

// UserRows counts, in every table, the rows naming user in a column of
// store.UserColumns (or users.id, deleted_users.id).
func (s *Store) UserRows(ctx context.Context, user string) (map[string]int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
		WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'`)
	if err != nil {
		return nil, fmt.Errorf("user rows: %w", err)
	}
	type col struct{ table, column string }
	var cols []col
	for rows.Next() {
		var c col
		if err := rows.Scan(&c.table, &c.column); err != nil {
			rows.Close()
			return nil, fmt.Errorf("user rows: %w", err)
		}
		if slices.Contains(store.UserColumns, c.column) || c.column == "id" && (c.table == "users" || c.table == "deleted_users") {
			cols = append(cols, c)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("user rows: %w", err)
	}
	out := make(map[string]int64, len(cols))
	for _, c := range cols {
		var n int64
		q := fmt.Sprintf(`SELECT count(*) FROM "%s" WHERE "%s" = ?`, c.table, c.column)
		if err := s.r.QueryRowContext(ctx, q, user).Scan(&n); err != nil {
			return nil, fmt.Errorf("user rows in %s.%s: %w", c.table, c.column, err)
		}
		out[c.table+"."+c.column] = n
	}
	return out, nil
}
