package pgstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/mqim/mqim/store"
	"github.com/mqim/mqim/store/internal/groupsql"
)

// The group part of the store is groupsql's, run on the pool through
// database/sql so that sqlitestore shares it.
var dialect = groupsql.Dialect{Postgres: true}

func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback() //nolint:errcheck // fn's error says what went wrong
		return err
	}
	return tx.Commit()
}

// EnsureUsers creates the users that are missing.
func (s *Store) EnsureUsers(ctx context.Context, users []string) error {
	if err := groupsql.EnsureUsers(ctx, s.db, dialect, users); err != nil {
		return fmt.Errorf("ensure %d users: %w", len(users), err)
	}
	return nil
}

// ChangeGroup creates or changes a group.
func (s *Store) ChangeGroup(ctx context.Context, c store.GroupChange) (store.GroupResult, error) {
	var res store.GroupResult
	err := s.inTx(ctx, func(tx *sql.Tx) (err error) {
		res, err = groupsql.Change(ctx, tx, dialect, c)
		return err
	})
	if err != nil {
		return store.GroupResult{}, fmt.Errorf("group %s of %q: %w", c.Op, c.Group, err)
	}
	return res, nil
}

// AppendGroup stores a batch of group messages in one transaction.
func (s *Store) AppendGroup(ctx context.Context, batch []store.SendRequest) ([]store.SendResult, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	var res []store.SendResult
	err := s.inTx(ctx, func(tx *sql.Tx) (err error) {
		res, err = groupsql.AppendGroup(ctx, tx, dialect, batch)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("append group batch: %w", err)
	}
	return res, nil
}

// Group describes a group to a member.
func (s *Store) Group(ctx context.Context, user, group string, memberLimit int) (store.GroupInfo, error) {
	info, err := groupsql.Info(ctx, s.db, dialect, user, group, memberLimit)
	if err != nil {
		return store.GroupInfo{}, fmt.Errorf("group %q: %w", group, err)
	}
	return info, nil
}

// IsMember reports whether user is a member of conv.
func (s *Store) IsMember(ctx context.Context, conv, user string) (bool, error) {
	ok, err := groupsql.IsMember(ctx, s.db, dialect, conv, user)
	if err != nil {
		return false, fmt.Errorf("is %q a member of %q: %w", user, conv, err)
	}
	return ok, nil
}

func (s *Store) markReadGroup(ctx context.Context, user, conv string, seq int64) (store.ReadState, []store.InboxEvent, error) {
	var (
		st     store.ReadState
		events []store.InboxEvent
	)
	err := s.inTx(ctx, func(tx *sql.Tx) (err error) {
		st, events, err = groupsql.MarkRead(ctx, tx, dialect, user, conv, seq)
		return err
	})
	if err != nil {
		return store.ReadState{}, nil, fmt.Errorf("mark read %q in %q: %w", user, conv, err)
	}
	return st, events, nil
}

// CoMembers reports, for each pair, whether Owner and Peer share a group.
func (s *Store) CoMembers(ctx context.Context, pairs []store.Pair) ([]bool, error) {
	out, err := groupsql.CoMembers(ctx, s.db, dialect, pairs)
	if err != nil {
		return nil, fmt.Errorf("co-members: %w", err)
	}
	return out, nil
}
