package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/mqim/mqim/store"
)

// The group part of the store [IM-11]: the rules are store's
// (PlanGroupChange, RefuseGroup), the statements these.
const (
	qGroup = `SELECT c.last_seq, g.fanout, g.read_from FROM conversations c JOIN groups g ON g.id = c.id
		WHERE c.id = ? AND c.kind = '` + store.ConvGroup + `'`
	qGroupMembers = `SELECT user_id, role, muted, read_seq FROM members WHERE conv_id = ?`
	qGroupMember  = `SELECT role, muted, read_seq FROM members WHERE conv_id = ? AND user_id = ?`
	qNewGroup     = `INSERT INTO groups (id, name, avatar, notice) VALUES (?, ?, ?, ?)`
	qDelMember    = `DELETE FROM members WHERE conv_id = ? AND user_id = ?`
	qSetRole      = `UPDATE members SET role = ? WHERE conv_id = ? AND user_id = ?`
	qSetMuted     = `UPDATE members SET muted = ? WHERE conv_id = ? AND user_id = ?`
	qSetInfo      = `UPDATE groups SET name = coalesce(?, name), avatar = coalesce(?, avatar),
		notice = coalesce(?, notice) WHERE id = ?`
	qSetFanout = `UPDATE groups SET fanout = ?, read_from = ? WHERE id = ?`
	qInfo      = `SELECT g.name, g.avatar, g.notice, g.fanout, g.read_from, c.last_seq,
			(SELECT count(*) FROM members m WHERE m.conv_id = g.id)
		FROM groups g JOIN conversations c ON c.id = g.id WHERE g.id = ?`
	qMemberPage = `SELECT user_id, role, muted, read_seq FROM members WHERE conv_id = ? ORDER BY user_id LIMIT ?`
	qCoMember   = `SELECT EXISTS (SELECT 1 FROM members a
			JOIN members b ON b.conv_id = a.conv_id
			JOIN conversations v ON v.id = a.conv_id
			WHERE a.user_id = ? AND b.user_id = ? AND v.kind = '` + store.ConvGroup + `')`
)

func init() {
	writeQueries = append(writeQueries, qGroup, qGroupMembers, qGroupMember, qNewGroup, qDelMember, qSetRole,
		qSetMuted, qSetInfo, qSetFanout)
	readQueries = append(readQueries, qInfo, qMemberPage, qCoMember)
}

// readGroup reads the state of group conv, or nil if there is none.
func readGroup(t *txn, conv string) (*store.GroupState, error) {
	g := &store.GroupState{Members: make(map[string]store.Member)}
	err := t.queryRow(qGroup, conv).Scan(&g.LastSeq, &g.Fanout, &g.ReadFrom)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read group %q: %w", conv, err)
	}
	return g, nil
}

// readMembers reads the members of conv into g: those of only, or every
// one if only is nil.
func readMembers(t *txn, g *store.GroupState, conv string, only []string) error {
	if only != nil {
		for _, u := range only {
			m := store.Member{User: u}
			err := t.queryRow(qGroupMember, conv, u).Scan(&m.Role, &m.Muted, &m.ReadSeq)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return fmt.Errorf("read member %q of %q: %w", u, conv, err)
			}
			g.Members[u] = m
		}
		return nil
	}
	rows, err := t.query(qGroupMembers, conv)
	if err != nil {
		return fmt.Errorf("read members of %q: %w", conv, err)
	}
	defer rows.Close()
	for rows.Next() {
		var m store.Member
		if err := rows.Scan(&m.User, &m.Role, &m.Muted, &m.ReadSeq); err != nil {
			return err
		}
		g.Members[m.User] = m
	}
	return rows.Err()
}

// EnsureUsers creates the users that are missing.
func (s *Store) EnsureUsers(ctx context.Context, users []string) error {
	us := store.UsersInOrder(users)
	err := s.write(ctx, func(t *txn) error {
		for _, u := range us {
			if err := t.exec(qEnsureUser, u); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("ensure %d users: %w", len(users), err)
	}
	return nil
}

// ChangeGroup creates or changes a group.
func (s *Store) ChangeGroup(ctx context.Context, c store.GroupChange) (store.GroupResult, error) {
	var res store.GroupResult
	err := s.write(ctx, func(t *txn) (err error) {
		res, err = changeGroup(t, c)
		return err
	})
	if err != nil {
		return store.GroupResult{}, fmt.Errorf("group %s of %q: %w", c.Op, c.Group, err)
	}
	return res, nil
}

func changeGroup(t *txn, ch store.GroupChange) (store.GroupResult, error) {
	var g *store.GroupState
	if ch.Op != store.OpCreate {
		var err error
		if g, err = readGroup(t, ch.Group); err != nil {
			return store.GroupResult{}, err
		}
		if g != nil {
			if err := readMembers(t, g, ch.Group, nil); err != nil {
				return store.GroupResult{}, err
			}
		}
	}
	known, err := t.exists(qUserExists, store.ChangeUsers(ch))
	if err != nil {
		return store.GroupResult{}, err
	}
	p, err := store.PlanGroupChange(ch, g, known)
	if err != nil {
		return store.GroupResult{}, err
	}
	if p.Create {
		if err := t.exec(qNewConv, ch.Group, store.ConvGroup); err != nil {
			return store.GroupResult{}, err
		}
		if err := t.exec(qNewGroup, ch.Group, store.Deref(ch.Name), store.Deref(ch.Avatar), store.Deref(ch.Notice)); err != nil {
			return store.GroupResult{}, err
		}
	}
	// The statements of the plan, each (but the insert) a no-op when it
	// has nothing to do.
	for _, m := range p.New {
		if err := t.exec(qNewMember, ch.Group, m.User, m.Role); err != nil {
			return store.GroupResult{}, err
		}
	}
	for _, u := range p.Removed {
		if err := t.exec(qDelMember, ch.Group, u); err != nil {
			return store.GroupResult{}, err
		}
	}
	for _, m := range p.Roles {
		if err := t.exec(qSetRole, m.Role, ch.Group, m.User); err != nil {
			return store.GroupResult{}, err
		}
	}
	if m := p.Mute; m != nil {
		if err := t.exec(qSetMuted, m.Muted, ch.Group, m.User); err != nil {
			return store.GroupResult{}, err
		}
	}
	if p.Update {
		if err := t.exec(qSetInfo, ch.Name, ch.Avatar, ch.Notice, ch.Group); err != nil {
			return store.GroupResult{}, err
		}
	}
	var seq int64
	if err := t.queryRow(qAdvanceConv, 1, ch.TS, ch.Group).Scan(&seq); err != nil {
		return store.GroupResult{}, fmt.Errorf("advance seq of %q: %w", ch.Group, err)
	}
	if seq != p.Msg.Seq {
		return store.GroupResult{}, fmt.Errorf("group %q: seq %d, planned %d", ch.Group, seq, p.Msg.Seq)
	}
	if p.Switch {
		if err := t.exec(qSetFanout, store.FanoutRead, seq, ch.Group); err != nil {
			return store.GroupResult{}, err
		}
	}
	row := store.NewMessageRow(&p.Msg, p.Digest)
	if err := t.insertMessage(&row); err != nil {
		return store.GroupResult{}, err
	}
	if p.SenderRead {
		if err := t.exec(qSenderRead, seq, ch.Group, ch.Actor); err != nil {
			return store.GroupResult{}, err
		}
	}
	msg := p.Msg
	res := p.Result
	res.Events, err = t.addEvents(p.Recipients, store.InboxEvent{Kind: store.KindMessage, Conv: ch.Group, ConvSeq: seq,
		Actor: ch.Actor, TS: ch.TS, Msg: &msg})
	return res, err
}

// Group describes a group to a member, from one snapshot.
func (s *Store) Group(ctx context.Context, user, group string, memberLimit int) (store.GroupInfo, error) {
	info := store.GroupInfo{ID: group}
	err := s.read(ctx, func(t *txn) error {
		err := t.queryRow(qInfo, group).Scan(&info.Name, &info.Avatar, &info.Notice, &info.Fanout, &info.ReadFrom,
			&info.LastSeq, &info.MemberCount)
		if errors.Is(err, sql.ErrNoRows) {
			return store.NoGroupError(group)
		}
		if err != nil {
			return err
		}
		var member bool
		if err := t.queryRow(qIsMember, group, user).Scan(&member); err != nil {
			return err
		}
		if !member && user != "" {
			return store.NotMemberError(user, group)
		}
		rows, err := t.query(qMemberPage, group, memberLimit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var m store.Member
			if err := rows.Scan(&m.User, &m.Role, &m.Muted, &m.ReadSeq); err != nil {
				return err
			}
			info.Members = append(info.Members, m)
		}
		return rows.Err()
	})
	if err != nil {
		return store.GroupInfo{}, fmt.Errorf("group %q: %w", group, err)
	}
	return info, nil
}

// IsMember reports whether user is a member of conv.
func (s *Store) IsMember(ctx context.Context, conv, user string) (bool, error) {
	var ok bool
	if err := s.rps[qIsMember].QueryRowContext(ctx, conv, user).Scan(&ok); err != nil {
		return false, fmt.Errorf("is %q a member of %q: %w", user, conv, err)
	}
	return ok, nil
}

// CoMembers reports, for each pair, whether Owner and Peer share a group,
// from one snapshot.
func (s *Store) CoMembers(ctx context.Context, pairs []store.Pair) ([]bool, error) {
	out := make([]bool, len(pairs))
	err := s.read(ctx, func(t *txn) error {
		for i, p := range pairs {
			if err := t.queryRow(qCoMember, p.Owner, p.Peer).Scan(&out[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("co-members: %w", err)
	}
	return out, nil
}
