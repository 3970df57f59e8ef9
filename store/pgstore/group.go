package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mqim/mqim/store"
)

// The group part of the store [IM-11]: the rules are store's
// (PlanGroupChange, RefuseGroup), the statements these. Group transactions
// lock as Append does: conversation rows first, then user rows, each in id
// order.

// queueLockGroups queues locking the conversation rows of groups (sorted)
// and reading their state into into; a group that does not exist stays
// out.
func queueLockGroups(b *pgx.Batch, groups []string, into map[string]*store.GroupState) {
	b.Queue(`SELECT c.id, c.last_seq, g.fanout, g.read_from FROM conversations c JOIN groups g ON g.id = c.id
		WHERE c.id = ANY($1) AND c.kind = $2 ORDER BY c.id FOR NO KEY UPDATE OF c`, groups, store.ConvGroup).
		Query(func(rows pgx.Rows) error {
			var (
				id string
				g  store.GroupState
			)
			_, err := pgx.ForEachRow(rows, []any{&id, &g.LastSeq, &g.Fanout, &g.ReadFrom}, func() error {
				into[id] = &store.GroupState{LastSeq: g.LastSeq, Fanout: g.Fanout, ReadFrom: g.ReadFrom,
					Members: make(map[string]store.Member)}
				return nil
			})
			return err
		})
}

// queueMembers queues reading every member of groups into their states.
func queueMembers(b *pgx.Batch, groups []string, into map[string]*store.GroupState) {
	b.Queue(`SELECT conv_id, user_id, role, muted <> 0, read_seq FROM members WHERE conv_id = ANY($1)`, groups).
		Query(collectMembers(into))
}

// collectMembers collects (conv, user, role, muted, read seq) rows.
func collectMembers(into map[string]*store.GroupState) func(pgx.Rows) error {
	return func(rows pgx.Rows) error {
		var (
			conv string
			m    store.Member
		)
		_, err := pgx.ForEachRow(rows, []any{&conv, &m.User, &m.Role, &m.Muted, &m.ReadSeq}, func() error {
			if g := into[conv]; g != nil {
				g.Members[m.User] = m
			}
			return nil
		})
		return err
	}
}

// queueEvents queues adding an event like ev to the inbox of each of users
// (sorted): their rows are locked in id order, then each inbox seq moves
// by one. The function it returns gives the events, once b was sent.
func queueEvents(b *pgx.Batch, users []string, ev store.InboxEvent) func() ([]store.InboxEvent, error) {
	if len(users) == 0 {
		return func() ([]store.InboxEvent, error) { return nil, nil }
	}
	seqs := make(map[string]int64, len(users))
	b.Queue(`SELECT id FROM users WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, users)
	b.Queue(`WITH u AS (
			UPDATE users SET inbox_seq = inbox_seq + 1 WHERE id = ANY($1) RETURNING id, inbox_seq
		)
		INSERT INTO inbox (user_id, seq, kind, conv_id, conv_seq, actor, ts)
		SELECT id, inbox_seq, $2, $3, $4, $5, $6 FROM u
		RETURNING user_id, seq`, users, store.KindCode(ev.Kind), ev.Conv, ev.ConvSeq, ev.Actor, ev.TS).
		Query(collectInt(seqs))
	return func() ([]store.InboxEvent, error) { return store.EventsFor(users, seqs, ev) }
}

// EnsureUsers creates the users that are missing, in id order.
func (s *Store) EnsureUsers(ctx context.Context, users []string) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO users (id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING`,
		store.UsersInOrder(users)); err != nil {
		return fmt.Errorf("ensure %d users: %w", len(users), err)
	}
	return nil
}

// ChangeGroup creates or changes a group in two round trips: lock and
// read, write.
func (s *Store) ChangeGroup(ctx context.Context, c store.GroupChange) (store.GroupResult, error) {
	var res store.GroupResult
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) (err error) {
		res, err = changeGroup(ctx, tx, c)
		return err
	})
	if err != nil {
		return store.GroupResult{}, fmt.Errorf("group %s of %q: %w", c.Op, c.Group, err)
	}
	return res, nil
}

func changeGroup(ctx context.Context, tx pgx.Tx, ch store.GroupChange) (store.GroupResult, error) {
	groups := make(map[string]*store.GroupState)
	known := make(map[string]bool)
	b := &pgx.Batch{}
	if ch.Op != store.OpCreate {
		queueLockGroups(b, []string{ch.Group}, groups)
		queueMembers(b, []string{ch.Group}, groups)
	}
	if us := store.ChangeUsers(ch); len(us) > 0 {
		b.Queue(`SELECT id FROM users WHERE id = ANY($1)`, us).Query(collectSet(known))
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return store.GroupResult{}, err
	}
	p, err := store.PlanGroupChange(ch, groups[ch.Group], known)
	if err != nil {
		return store.GroupResult{}, err
	}

	b = &pgx.Batch{}
	if p.Create {
		b.Queue(`INSERT INTO conversations (id, kind) VALUES ($1, $2)`, ch.Group, store.ConvGroup)
		b.Queue(`INSERT INTO groups (id, name, avatar, notice) VALUES ($1, $2, $3, $4)`,
			ch.Group, store.Deref(ch.Name), store.Deref(ch.Avatar), store.Deref(ch.Notice))
	}
	if len(p.New) > 0 {
		user, role := make([]string, len(p.New)), make([]string, len(p.New))
		for i, m := range p.New {
			user[i], role[i] = m.User, m.Role
		}
		b.Queue(`INSERT INTO members (conv_id, user_id, role) SELECT $1::text, * FROM unnest($2::text[], $3::text[])`,
			ch.Group, user, role)
	}
	if len(p.Removed) > 0 {
		b.Queue(`DELETE FROM members WHERE conv_id = $1 AND user_id = ANY($2)`, ch.Group, p.Removed)
	}
	for _, m := range p.Roles {
		b.Queue(`UPDATE members SET role = $3 WHERE conv_id = $1 AND user_id = $2`, ch.Group, m.User, m.Role)
	}
	if m := p.Mute; m != nil {
		b.Queue(`UPDATE members SET muted = $3 WHERE conv_id = $1 AND user_id = $2`, ch.Group, m.User, smallint(m.Muted))
	}
	if p.Update {
		b.Queue(`UPDATE groups SET name = coalesce($2, name), avatar = coalesce($3, avatar), notice = coalesce($4, notice)
			WHERE id = $1`, ch.Group, ch.Name, ch.Avatar, ch.Notice)
	}
	var seq int64
	b.Queue(`UPDATE conversations SET last_seq = last_seq + 1, last_ts = greatest(last_ts, $2) WHERE id = $1
		RETURNING last_seq`, ch.Group, ch.TS).QueryRow(func(row pgx.Row) error { return row.Scan(&seq) })
	if p.Switch {
		b.Queue(`UPDATE groups SET fanout = $2, read_from = $3 WHERE id = $1`, ch.Group, store.FanoutRead, p.Msg.Seq)
	}
	queueMessages(b, []store.MessageRow{store.NewMessageRow(&p.Msg, p.Digest)})
	if p.SenderRead {
		b.Queue(`UPDATE members SET read_seq = greatest(read_seq, $3) WHERE conv_id = $1 AND user_id = $2`,
			ch.Group, ch.Actor, p.Msg.Seq)
	}
	msg := p.Msg
	events := queueEvents(b, p.Recipients, store.InboxEvent{Kind: store.KindMessage, Conv: ch.Group,
		ConvSeq: p.Msg.Seq, Actor: ch.Actor, TS: ch.TS, Msg: &msg})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return store.GroupResult{}, err
	}
	if seq != p.Msg.Seq {
		return store.GroupResult{}, fmt.Errorf("group %q: seq %d, planned %d", ch.Group, seq, p.Msg.Seq)
	}
	res := p.Result
	res.Events, err = events()
	return res, err
}

// optionalRow scans a row that may be missing into dest; found says it
// was there.
func optionalRow(found *bool, dest ...any) func(pgx.Row) error {
	return func(row pgx.Row) error {
		err := row.Scan(dest...)
		*found = err == nil
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	}
}

func smallint(b bool) int16 {
	if b {
		return 1
	}
	return 0
}

// Group describes a group to a member, in one round trip.
func (s *Store) Group(ctx context.Context, user, group string, memberLimit int) (store.GroupInfo, error) {
	info := store.GroupInfo{ID: group}
	var found, member bool
	b := &pgx.Batch{}
	b.Queue(`SELECT g.name, g.avatar, g.notice, g.fanout, g.read_from, c.last_seq,
			(SELECT count(*) FROM members m WHERE m.conv_id = g.id)
		FROM groups g JOIN conversations c ON c.id = g.id WHERE g.id = $1`, group).
		QueryRow(optionalRow(&found, &info.Name, &info.Avatar, &info.Notice, &info.Fanout, &info.ReadFrom, &info.LastSeq, &info.MemberCount))
	b.Queue(`SELECT EXISTS (SELECT 1 FROM members WHERE conv_id = $1 AND user_id = $2)`, group, user).
		QueryRow(func(row pgx.Row) error { return row.Scan(&member) })
	b.Queue(`SELECT user_id, role, muted <> 0, read_seq FROM members WHERE conv_id = $1 ORDER BY user_id COLLATE "C" LIMIT $2`,
		group, memberLimit).
		Query(func(rows pgx.Rows) error {
			var m store.Member
			_, err := pgx.ForEachRow(rows, []any{&m.User, &m.Role, &m.Muted, &m.ReadSeq}, func() error {
				info.Members = append(info.Members, m)
				return nil
			})
			return err
		})
	err := s.pool.SendBatch(ctx, b).Close()
	switch {
	case err != nil:
	case !found:
		err = store.NoGroupError(group)
	case !member && user != "":
		err = store.NotMemberError(user, group)
	default:
		return info, nil
	}
	return store.GroupInfo{}, fmt.Errorf("group %q: %w", group, err)
}

// IsMember reports whether user is a member of conv.
func (s *Store) IsMember(ctx context.Context, conv, user string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM members WHERE conv_id = $1 AND user_id = $2)`, conv, user).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("is %q a member of %q: %w", user, conv, err)
	}
	return ok, nil
}

// CoMembers reports, for each pair, whether Owner and Peer share a group,
// in one query.
func (s *Store) CoMembers(ctx context.Context, pairs []store.Pair) ([]bool, error) {
	out := make([]bool, len(pairs))
	owners, peers := make([]string, len(pairs)), make([]string, len(pairs))
	for i, p := range pairs {
		owners[i], peers[i] = p.Owner, p.Peer
	}
	rows, _ := s.pool.Query(ctx, `SELECT k.i FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(o, p, i)
		WHERE EXISTS (SELECT 1 FROM members a
			JOIN members b ON b.conv_id = a.conv_id
			JOIN conversations v ON v.id = a.conv_id
			WHERE a.user_id = k.o AND b.user_id = k.p AND v.kind = $3)`, owners, peers, store.ConvGroup)
	var i int64
	_, err := pgx.ForEachRow(rows, []any{&i}, func() error {
		out[i-1] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("co-members: %w", err)
	}
	return out, nil
}
