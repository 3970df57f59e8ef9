// Package groupsql is the one implementation of the group part of
// store.Store [IM-11], shared by pgstore and sqlitestore through
// database/sql so that both behave identically. Each store opens the
// transaction its own way and passes it in.
//
// Lock order (PostgreSQL; SQLite has one writer): conversation rows first,
// sorted by id, then user rows, sorted by id, as in pgstore's Append, so
// that group and direct transactions never deadlock each other.
package groupsql

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mqim/mqim/protocol"
	"github.com/mqim/mqim/store"
)

// DB is what the package runs statements on: a *sql.Tx or a *sql.DB.
type DB interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Dialect is what differs between the two databases.
type Dialect struct {
	Postgres bool
}

// chunk bounds the rows of one multi-row statement (bind parameters).
const chunk = 500

// Inbox kinds as stored in inbox.kind (as in both stores).
const (
	kindMessage = 1
	kindRead    = 2
)

type conn struct {
	ctx context.Context
	db  DB
	d   Dialect
}

// q rewrites ? placeholders to $n for PostgreSQL.
func (c *conn) q(query string) string {
	if !c.d.Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

func (c *conn) lock() string {
	if c.d.Postgres {
		return " FOR NO KEY UPDATE"
	}
	return ""
}

func (c *conn) greatest() string {
	if c.d.Postgres {
		return "greatest"
	}
	return "max"
}

func (c *conn) exec(query string, args ...any) error {
	_, err := c.db.ExecContext(c.ctx, c.q(query), args...)
	return err
}

func (c *conn) each(query string, args []any, dest []any, fn func() error) error {
	rows, err := c.db.QueryContext(c.ctx, c.q(query), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		if err := fn(); err != nil {
			return err
		}
	}
	return rows.Err()
}

func marks(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func anys(ss []string) []any {
	a := make([]any, len(ss))
	for i, s := range ss {
		a[i] = s
	}
	return a
}

// chunks calls fn with consecutive pieces of ss of at most chunk items.
func chunks(ss []string, fn func([]string) error) error {
	for len(ss) > 0 {
		n := min(len(ss), chunk)
		if err := fn(ss[:n]); err != nil {
			return err
		}
		ss = ss[n:]
	}
	return nil
}

type memberRow struct {
	role  string
	muted bool
}

func rank(role string) int {
	switch role {
	case store.RoleOwner:
		return 3
	case store.RoleAdmin:
		return 2
	case store.RoleMember:
		return 1
	}
	return 0
}

// groupRow is a group's locked state.
type groupRow struct {
	lastSeq  int64
	fanout   string
	readFrom int64
}

// lockGroup locks the conversation row of a group and reads its state.
func (c *conn) lockGroup(conv string) (groupRow, error) {
	var g groupRow
	err := c.db.QueryRowContext(c.ctx, c.q(`SELECT last_seq FROM conversations WHERE id = ? AND kind = ?`+c.lock()),
		conv, store.ConvGroup).Scan(&g.lastSeq)
	if errors.Is(err, sql.ErrNoRows) {
		return g, fmt.Errorf("group %q: %w", conv, store.ErrNoGroup)
	}
	if err != nil {
		return g, err
	}
	err = c.db.QueryRowContext(c.ctx, c.q(`SELECT fanout, read_from FROM groups WHERE id = ?`), conv).
		Scan(&g.fanout, &g.readFrom)
	return g, err
}

// members reads the members of conv; with only non-nil, just those users.
func (c *conn) members(conv string, only []string) (map[string]memberRow, error) {
	out := make(map[string]memberRow)
	var (
		user, role string
		muted      int64
	)
	collect := func() error {
		out[user] = memberRow{role: role, muted: muted != 0}
		return nil
	}
	dest := []any{&user, &role, &muted}
	if only == nil {
		return out, c.each(`SELECT user_id, role, muted FROM members WHERE conv_id = ?`, []any{conv}, dest, collect)
	}
	err := chunks(only, func(us []string) error {
		return c.each(`SELECT user_id, role, muted FROM members WHERE conv_id = ? AND user_id IN (`+marks(len(us))+`)`,
			append([]any{conv}, anys(us)...), dest, collect)
	})
	return out, err
}

// missingUsers returns the users of us that do not exist.
func (c *conn) missingUsers(us []string) ([]string, error) {
	found := make(map[string]bool, len(us))
	var id string
	err := chunks(us, func(part []string) error {
		return c.each(`SELECT id FROM users WHERE id IN (`+marks(len(part))+`)`, anys(part), []any{&id},
			func() error { found[id] = true; return nil })
	})
	var missing []string
	for _, u := range us {
		if !found[u] {
			missing = append(missing, u)
		}
	}
	return missing, err
}

// nextConvSeq allocates the next seq of conv.
func (c *conn) nextConvSeq(conv string, ts int64) (int64, error) {
	var seq int64
	err := c.db.QueryRowContext(c.ctx, c.q(`UPDATE conversations SET last_seq = last_seq + 1, last_ts = `+c.greatest()+
		`(last_ts, ?) WHERE id = ? RETURNING last_seq`), ts, conv).Scan(&seq)
	return seq, err
}

// lockUsers locks the user rows of us in id order (PostgreSQL), so that the
// inbox counters can then be advanced in any order. us must be sorted.
func (c *conn) lockUsers(us []string) error {
	if !c.d.Postgres || len(us) == 0 {
		return nil
	}
	return chunks(us, func(part []string) error {
		return c.exec(`SELECT id FROM users WHERE id IN (`+marks(len(part))+`) ORDER BY id`+c.lock(), anys(part)...)
	})
}

// inbox adds one event to the inbox of every user of us (sorted, locked)
// and returns the events.
func (c *conn) inbox(us []string, kind int, conv string, convSeq int64, actor string, ts int64, msg *store.Message) ([]store.InboxEvent, error) {
	events := make([]store.InboxEvent, 0, len(us))
	kindName := store.KindMessage
	if kind == kindRead {
		kindName = store.KindRead
	}
	err := chunks(us, func(part []string) error {
		seqs := make(map[string]int64, len(part))
		var (
			id  string
			seq int64
		)
		if err := c.each(`UPDATE users SET inbox_seq = inbox_seq + 1 WHERE id IN (`+marks(len(part))+`) RETURNING id, inbox_seq`,
			anys(part), []any{&id, &seq}, func() error { seqs[id] = seq; return nil }); err != nil {
			return err
		}
		if len(seqs) != len(part) {
			return errors.New("inbox counter rows missing")
		}
		args := make([]any, 0, 7*len(part))
		for _, u := range part {
			args = append(args, u, seqs[u], kind, conv, convSeq, actor, ts)
			events = append(events, store.InboxEvent{User: u, Seq: seqs[u], Kind: kindName, Conv: conv,
				ConvSeq: convSeq, Actor: actor, TS: ts, Msg: msg})
		}
		return c.exec(`INSERT INTO inbox (user_id, seq, kind, conv_id, conv_seq, actor, ts) VALUES `+
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?), ", len(part)), ", "), args...)
	})
	return events, err
}

func (c *conn) insertMessage(m *store.Message, digest []byte) error {
	return c.exec(`INSERT INTO messages (id, conv_id, seq, sender, cmid, type, body, digest, ts, mentions)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.ID, m.Conv, m.Seq, m.From, m.Cmid, m.Type, notNil(m.Body), notNil(digest), m.TS, strings.Join(m.Mentions, " "))
}

func (c *conn) markSenderRead(conv, user string, seq int64) error {
	return c.exec(`UPDATE members SET read_seq = `+c.greatest()+`(read_seq, ?) WHERE conv_id = ? AND user_id = ?`,
		seq, conv, user)
}

func notNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// EventCmid is the cmid stored with a group event: it starts with a byte
// no device cmid may hold [IM-3.3-5], so it never collides with one. Wire
// hides it.
func EventCmid(id int64) string { return "\x1f" + strconv.FormatInt(id, 10) }

func bad(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), store.ErrBadChange)
}

// Change applies a group change [IM-11.4]; see store.Store.ChangeGroup.
func Change(ctx context.Context, db DB, d Dialect, ch store.GroupChange) (store.GroupResult, error) {
	c := &conn{ctx: ctx, db: db, d: d}
	threshold := ch.Threshold
	if threshold <= 0 {
		threshold = store.DefaultReadFanout
	}
	users := slices.Clone(ch.Users)
	slices.Sort(users)
	users = slices.Compact(users)

	var (
		g       groupRow
		all     map[string]memberRow // every member before the change
		count   int                  // members after the change
		added   []string
		removed []string
		body    = map[string]any{"op": ch.Op}
	)
	one := func() (string, error) {
		if len(users) != 1 {
			return "", bad("%s needs exactly one user", ch.Op)
		}
		return users[0], nil
	}
	if ch.Op == store.OpCreate {
		users = slices.DeleteFunc(users, func(u string) bool { return u == ch.Actor })
		missing, err := c.missingUsers(append([]string{ch.Actor}, users...))
		if err != nil {
			return store.GroupResult{}, err
		}
		if len(missing) > 0 {
			return store.GroupResult{}, fmt.Errorf("create group with %q: %w", missing[0], store.ErrUnknownUser)
		}
		if err := c.exec(`INSERT INTO conversations (id, kind) VALUES (?, ?)`, ch.Group, store.ConvGroup); err != nil {
			return store.GroupResult{}, err
		}
		if err := c.exec(`INSERT INTO groups (id, name, avatar, notice) VALUES (?, ?, ?, ?)`, ch.Group,
			deref(ch.Name), deref(ch.Avatar), deref(ch.Notice)); err != nil {
			return store.GroupResult{}, err
		}
		if err := c.insertMembers(ch.Group, []string{ch.Actor}, store.RoleOwner); err != nil {
			return store.GroupResult{}, err
		}
		g = groupRow{fanout: store.FanoutWrite}
		all = map[string]memberRow{}
		added = append([]string{ch.Actor}, users...)
		count = len(added)
		body["users"] = users
		setInfo(body, ch)
	} else {
		var err error
		if g, err = c.lockGroup(ch.Group); err != nil {
			return store.GroupResult{}, err
		}
		if all, err = c.members(ch.Group, nil); err != nil {
			return store.GroupResult{}, err
		}
		actor, ok := all[ch.Actor]
		if !ok {
			return store.GroupResult{}, fmt.Errorf("%q in %q: %w", ch.Actor, ch.Group, store.ErrNotMember)
		}
		count = len(all)
		admin := rank(actor.role) >= rank(store.RoleAdmin)
		forbidden := func(what string) error {
			return fmt.Errorf("%s in %q as %s: %w", what, ch.Group, actor.role, store.ErrForbidden)
		}
		// target checks that the one user named is a member below the actor.
		target := func() (string, memberRow, error) {
			u, err := one()
			if err != nil {
				return "", memberRow{}, err
			}
			m, ok := all[u]
			switch {
			case u == ch.Actor:
				return "", memberRow{}, bad("%s cannot target oneself", ch.Op)
			case !ok:
				return "", memberRow{}, bad("%q is not a member", u)
			case rank(m.role) >= rank(actor.role):
				return "", memberRow{}, forbidden(ch.Op + " of a " + m.role)
			}
			return u, m, nil
		}
		switch ch.Op {
		case store.OpAdd:
			if !admin {
				return store.GroupResult{}, forbidden("add")
			}
			for _, u := range users {
				if _, ok := all[u]; !ok {
					added = append(added, u)
				}
			}
			if len(added) == 0 {
				return store.GroupResult{}, bad("every user is a member already")
			}
			missing, err := c.missingUsers(added)
			if err != nil {
				return store.GroupResult{}, err
			}
			if len(missing) > 0 {
				return store.GroupResult{}, fmt.Errorf("add %q: %w", missing[0], store.ErrUnknownUser)
			}
			if err := c.insertMembers(ch.Group, added, store.RoleMember); err != nil {
				return store.GroupResult{}, err
			}
			count += len(added)
			body["users"] = added
		case store.OpRemove:
			if !admin {
				return store.GroupResult{}, forbidden("remove")
			}
			u, _, err := target()
			if err != nil {
				return store.GroupResult{}, err
			}
			removed = []string{u}
			body["users"] = removed
		case store.OpLeave:
			if actor.role == store.RoleOwner {
				return store.GroupResult{}, bad("the owner must transfer ownership before leaving")
			}
			removed = []string{ch.Actor}
		case store.OpRole:
			if actor.role != store.RoleOwner {
				return store.GroupResult{}, forbidden("role")
			}
			if ch.Role != store.RoleAdmin && ch.Role != store.RoleMember {
				return store.GroupResult{}, bad("role must be admin or member")
			}
			u, _, err := target()
			if err != nil {
				return store.GroupResult{}, err
			}
			if err := c.exec(`UPDATE members SET role = ? WHERE conv_id = ? AND user_id = ?`, ch.Role, ch.Group, u); err != nil {
				return store.GroupResult{}, err
			}
			body["users"], body["role"] = []string{u}, ch.Role
		case store.OpTransfer:
			if actor.role != store.RoleOwner {
				return store.GroupResult{}, forbidden("transfer")
			}
			u, _, err := target()
			if err != nil {
				return store.GroupResult{}, err
			}
			if err := c.exec(`UPDATE members SET role = ? WHERE conv_id = ? AND user_id = ?`, store.RoleOwner, ch.Group, u); err != nil {
				return store.GroupResult{}, err
			}
			if err := c.exec(`UPDATE members SET role = ? WHERE conv_id = ? AND user_id = ?`, store.RoleAdmin, ch.Group, ch.Actor); err != nil {
				return store.GroupResult{}, err
			}
			body["users"] = []string{u}
		case store.OpMute:
			if !admin {
				return store.GroupResult{}, forbidden("mute")
			}
			u, _, err := target()
			if err != nil {
				return store.GroupResult{}, err
			}
			muted := 0
			if ch.Muted {
				muted = 1
			}
			if err := c.exec(`UPDATE members SET muted = ? WHERE conv_id = ? AND user_id = ?`, muted, ch.Group, u); err != nil {
				return store.GroupResult{}, err
			}
			body["users"], body["muted"] = []string{u}, ch.Muted
		case store.OpUpdate:
			if !admin {
				return store.GroupResult{}, forbidden("update")
			}
			if ch.Name == nil && ch.Avatar == nil && ch.Notice == nil {
				return store.GroupResult{}, bad("update needs name, avatar or notice")
			}
			if err := c.exec(`UPDATE groups SET name = coalesce(?, name), avatar = coalesce(?, avatar),
				notice = coalesce(?, notice) WHERE id = ?`, ch.Name, ch.Avatar, ch.Notice, ch.Group); err != nil {
				return store.GroupResult{}, err
			}
			setInfo(body, ch)
		default:
			return store.GroupResult{}, bad("unknown operation %q", ch.Op)
		}
		if len(removed) > 0 {
			if err := c.exec(`DELETE FROM members WHERE conv_id = ? AND user_id = ?`, ch.Group, removed[0]); err != nil {
				return store.GroupResult{}, err
			}
			count--
		}
	}

	// The model: a group above the threshold fans out on read from this
	// event on, and stays there [IM-11.3-2].
	before := g.fanout
	res := store.GroupResult{Fanout: g.fanout, ReadFrom: g.readFrom}
	seq, err := c.nextConvSeq(ch.Group, ch.TS)
	if err != nil {
		return store.GroupResult{}, err
	}
	if before == store.FanoutWrite && count > threshold {
		res.Fanout, res.ReadFrom = store.FanoutRead, seq
		if err := c.exec(`UPDATE groups SET fanout = ?, read_from = ? WHERE id = ?`, res.Fanout, seq, ch.Group); err != nil {
			return store.GroupResult{}, err
		}
	}
	body["fanout"] = res.Fanout
	if res.Fanout == store.FanoutRead {
		body["read_from"] = res.ReadFrom
	}
	if ch.Op == store.OpCreate && len(added) > 1 {
		if err := c.insertMembers(ch.Group, added[1:], store.RoleMember); err != nil {
			return store.GroupResult{}, err
		}
	}
	enc, err := protocol.Encode(protocol.MsgPack, body)
	if err != nil {
		return store.GroupResult{}, fmt.Errorf("encode group event: %w", err)
	}
	res.Msg = store.Message{ID: ch.ID, Conv: ch.Group, Seq: seq, From: ch.Actor, Cmid: EventCmid(ch.ID),
		Type: store.TypeGroup, Body: enc, TS: ch.TS}
	sum := sha256.Sum256(enc)
	if err := c.insertMessage(&res.Msg, sum[:]); err != nil {
		return store.GroupResult{}, err
	}
	if len(removed) == 0 || removed[0] != ch.Actor {
		if err := c.markSenderRead(ch.Group, ch.Actor, seq); err != nil {
			return store.GroupResult{}, err
		}
	}

	// Who gets an inbox row [IM-11.3-3]: while the group fanned out on
	// write (this event included, when it switches the model), every
	// member and every removed user; afterwards only the added and removed
	// users, who are not (or no longer) reading the group topic.
	recipients := make(map[string]bool)
	for _, u := range added {
		recipients[u] = true
	}
	for _, u := range removed {
		recipients[u] = true
	}
	if before == store.FanoutWrite {
		for u := range all {
			recipients[u] = true
		}
	}
	rs := sortedKeys(recipients)
	if err := c.lockUsers(rs); err != nil {
		return store.GroupResult{}, err
	}
	msg := res.Msg
	if res.Events, err = c.inbox(rs, kindMessage, ch.Group, seq, ch.Actor, ch.TS, &msg); err != nil {
		return store.GroupResult{}, err
	}
	res.Broadcast = res.Fanout == store.FanoutRead
	res.Removed = removed
	return res, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func setInfo(body map[string]any, ch store.GroupChange) {
	if ch.Name != nil {
		body["name"] = *ch.Name
	}
	if ch.Avatar != nil {
		body["avatar"] = *ch.Avatar
	}
	if ch.Notice != nil {
		body["notice"] = *ch.Notice
	}
}

func (c *conn) insertMembers(conv string, us []string, role string) error {
	return chunks(us, func(part []string) error {
		args := make([]any, 0, 3*len(part))
		for _, u := range part {
			args = append(args, conv, u, role)
		}
		return c.exec(`INSERT INTO members (conv_id, user_id, role) VALUES `+
			strings.TrimSuffix(strings.Repeat("(?, ?, ?), ", len(part)), ", "), args...)
	})
}

// AppendGroup stores group messages; see store.Store.AppendGroup.
func AppendGroup(ctx context.Context, db DB, d Dialect, batch []store.SendRequest) ([]store.SendResult, error) {
	c := &conn{ctx: ctx, db: db, d: d}
	res := make([]store.SendResult, len(batch))

	// Lock the groups in id order, and read the members that decide: all
	// of them for groups that fan out on write (they get inbox rows), else
	// only the senders and the mentioned.
	type gstate struct {
		row     groupRow
		members map[string]memberRow
		err     error
	}
	groups := make(map[string]*gstate)
	asked := make(map[string][]string)
	for _, r := range batch {
		asked[r.Group] = append(asked[r.Group], r.From)
		for _, m := range r.Mentions {
			if m != "*" {
				asked[r.Group] = append(asked[r.Group], m)
			}
		}
	}
	for _, conv := range sortedKeys(asked) {
		st := &gstate{}
		groups[conv] = st
		if st.row, st.err = c.lockGroup(conv); st.err != nil {
			if !errors.Is(st.err, store.ErrNoGroup) {
				return nil, st.err
			}
			continue
		}
		var only []string
		if st.row.fanout != store.FanoutWrite {
			only = asked[conv]
			slices.Sort(only)
			only = slices.Compact(only)
		}
		var err error
		if st.members, err = c.members(conv, only); err != nil {
			return nil, err
		}
	}

	// Decide each request in batch order, as Append does. Two nodes
	// storing the same (sender, cmid) at once: the second insert fails on
	// the unique key, the batch fails as a whole, and the device's retry
	// finds the stored message.
	type key struct{ from, cmid string }
	firstNew := make(map[key]int)
	var fresh []int
	recipients := make(map[string]bool)
	for i, r := range batch {
		var (
			m      store.Message
			digest []byte
			ments  string
		)
		err := c.db.QueryRowContext(ctx, c.q(`SELECT digest, id, conv_id, seq, type, body, ts, mentions
			FROM messages WHERE sender = ? AND cmid = ?`), r.From, r.Cmid).
			Scan(&digest, &m.ID, &m.Conv, &m.Seq, &m.Type, &m.Body, &m.TS, &ments)
		switch {
		case err == nil:
			if string(digest) == string(r.Digest) {
				m.From, m.Cmid, m.Mentions = r.From, r.Cmid, strings.Fields(ments)
				res[i] = store.SendResult{Msg: m, Duplicate: true}
			} else {
				res[i].Err = fmt.Errorf("cmid %q of %q: %w", r.Cmid, r.From, store.ErrCmidConflict)
			}
			continue
		case !errors.Is(err, sql.ErrNoRows):
			return nil, err
		}
		if j, ok := firstNew[key{r.From, r.Cmid}]; ok {
			if string(batch[j].Digest) != string(r.Digest) {
				res[i].Err = fmt.Errorf("cmid %q of %q: %w", r.Cmid, r.From, store.ErrCmidConflict)
			} else {
				res[i].Duplicate = true // filled in once j is stored
			}
			continue
		}
		st := groups[r.Group]
		sender, member := st.members[r.From]
		switch {
		case st.err != nil:
			res[i].Err = st.err
			continue
		case !member && !r.System: // a bridge notifies any group [IM-4.6-5]
			res[i].Err = fmt.Errorf("%q in %q: %w", r.From, r.Group, store.ErrNotMember)
			continue
		case sender.muted && !r.System:
			res[i].Err = fmt.Errorf("%q in %q: %w", r.From, r.Group, store.ErrMuted)
			continue
		}
		if bad := badMention(r.Mentions, st.members); bad != "" {
			res[i].Err = fmt.Errorf("mention %q in %q: %w", bad, r.Group, store.ErrBadMention)
			continue
		}
		firstNew[key{r.From, r.Cmid}] = i
		fresh = append(fresh, i)
		if st.row.fanout == store.FanoutWrite {
			for u := range st.members {
				recipients[u] = true
			}
		}
	}
	if err := c.lockUsers(sortedKeys(recipients)); err != nil {
		return nil, err
	}

	for _, i := range fresh {
		r, st := batch[i], groups[batch[i].Group]
		seq, err := c.nextConvSeq(r.Group, r.TS)
		if err != nil {
			return nil, err
		}
		m := store.Message{ID: r.ID, Conv: r.Group, Seq: seq, From: r.From, Cmid: r.Cmid, Type: r.Type,
			Body: r.Body, TS: r.TS, Mentions: normMentions(r.Mentions)}
		if err := c.insertMessage(&m, r.Digest); err != nil {
			return nil, err
		}
		if err := c.markSenderRead(r.Group, r.From, seq); err != nil {
			return nil, err
		}
		res[i] = store.SendResult{Msg: m}
		if st.row.fanout == store.FanoutWrite {
			shared := m
			if res[i].Events, err = c.inbox(sortedKeys(st.members), kindMessage, r.Group, seq, r.From, r.TS, &shared); err != nil {
				return nil, err
			}
		} else {
			res[i].Broadcast = true
		}
	}
	for i := range res {
		if res[i].Duplicate && res[i].Msg.ID == 0 {
			j := firstNew[key{batch[i].From, batch[i].Cmid}]
			res[i] = store.SendResult{Msg: res[j].Msg, Duplicate: true}
		}
	}
	return res, nil
}

func badMention(ms []string, members map[string]memberRow) string {
	for _, m := range ms {
		if _, ok := members[m]; !ok && m != "*" {
			return m
		}
	}
	return ""
}

func normMentions(ms []string) []string {
	if len(ms) == 0 {
		return nil
	}
	out := slices.Clone(ms)
	slices.Sort(out)
	return slices.Compact(out)
}

// MarkRead moves user's read position in group conv forward to seq; the
// read event goes to the reader's inbox only [IM-11.7-1].
func MarkRead(ctx context.Context, db DB, d Dialect, user, conv string, seq int64) (store.ReadState, []store.InboxEvent, error) {
	c := &conn{ctx: ctx, db: db, d: d}
	g, err := c.lockGroup(conv)
	if errors.Is(err, store.ErrNoGroup) {
		return store.ReadState{}, nil, fmt.Errorf("%q in %q: %w", user, conv, store.ErrNotMember)
	}
	if err != nil {
		return store.ReadState{}, nil, err
	}
	var readSeq int64
	err = db.QueryRowContext(ctx, c.q(`SELECT read_seq FROM members WHERE conv_id = ? AND user_id = ?`), conv, user).Scan(&readSeq)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ReadState{}, nil, fmt.Errorf("%q in %q: %w", user, conv, store.ErrNotMember)
	}
	if err != nil {
		return store.ReadState{}, nil, err
	}
	seq = min(seq, g.lastSeq)
	if seq <= readSeq {
		return store.ReadState{Conv: conv, ReadSeq: readSeq, Unread: max(0, g.lastSeq-readSeq)}, nil, nil
	}
	if err := c.exec(`UPDATE members SET read_seq = ? WHERE conv_id = ? AND user_id = ?`, seq, conv, user); err != nil {
		return store.ReadState{}, nil, err
	}
	if err := c.lockUsers([]string{user}); err != nil {
		return store.ReadState{}, nil, err
	}
	events, err := c.inbox([]string{user}, kindRead, conv, seq, user, nowMillis(), nil)
	if err != nil {
		return store.ReadState{}, nil, err
	}
	return store.ReadState{Conv: conv, ReadSeq: seq, Unread: g.lastSeq - seq}, events, nil
}

// Info describes a group to a member; see store.Store.Group.
func Info(ctx context.Context, db DB, d Dialect, user, conv string, limit int) (store.GroupInfo, error) {
	c := &conn{ctx: ctx, db: db, d: d}
	info := store.GroupInfo{ID: conv}
	err := db.QueryRowContext(ctx, c.q(`SELECT g.name, g.avatar, g.notice, g.fanout, g.read_from, c.last_seq,
			(SELECT count(*) FROM members m WHERE m.conv_id = g.id)
		FROM groups g JOIN conversations c ON c.id = g.id WHERE g.id = ?`), conv).
		Scan(&info.Name, &info.Avatar, &info.Notice, &info.Fanout, &info.ReadFrom, &info.LastSeq, &info.MemberCount)
	if errors.Is(err, sql.ErrNoRows) {
		return store.GroupInfo{}, fmt.Errorf("group %q: %w", conv, store.ErrNoGroup)
	}
	if err != nil {
		return store.GroupInfo{}, err
	}
	if ok, err := IsMember(ctx, db, d, conv, user); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("%q in %q: %w", user, conv, store.ErrNotMember)
		}
		return store.GroupInfo{}, err
	}
	var (
		m     store.Member
		muted int64
	)
	err = c.each(`SELECT user_id, role, muted, read_seq FROM members WHERE conv_id = ? ORDER BY user_id LIMIT ?`,
		[]any{conv, limit}, []any{&m.User, &m.Role, &muted, &m.ReadSeq}, func() error {
			m.Muted = muted != 0
			info.Members = append(info.Members, m)
			return nil
		})
	return info, err
}

// IsMember reports whether user is a member of conv.
func IsMember(ctx context.Context, db DB, d Dialect, conv, user string) (bool, error) {
	c := &conn{ctx: ctx, db: db, d: d}
	var n int64
	err := db.QueryRowContext(ctx, c.q(`SELECT count(*) FROM members WHERE conv_id = ? AND user_id = ?`), conv, user).Scan(&n)
	return n > 0, err
}

// CoMembers reports, for each pair, whether Owner and Peer are members of a
// common group [IM-15.2-2].
func CoMembers(ctx context.Context, db DB, d Dialect, pairs []store.Pair) ([]bool, error) {
	c := &conn{ctx: ctx, db: db, d: d}
	out := make([]bool, len(pairs))
	for i, p := range pairs {
		var n int64
		err := db.QueryRowContext(ctx, c.q(`SELECT count(*) FROM (SELECT 1 FROM members a
			JOIN members b ON b.conv_id = a.conv_id
			JOIN conversations v ON v.id = a.conv_id
			WHERE a.user_id = ? AND b.user_id = ? AND v.kind = ? LIMIT 1) t`), p.Owner, p.Peer, store.ConvGroup).Scan(&n)
		if err != nil {
			return nil, err
		}
		out[i] = n > 0
	}
	return out, nil
}

// ReadBy fills Message.ReadBy of a page of group messages [IM-11.7-2]: the
// members other than the sender whose read position is at or after it.
func ReadBy(ctx context.Context, db DB, d Dialect, conv string, msgs []store.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	c := &conn{ctx: ctx, db: db, d: d}
	var (
		reads []int64
		who   = make(map[string]int64)
		user  string
		rs    int64
	)
	if err := c.each(`SELECT user_id, read_seq FROM members WHERE conv_id = ?`, []any{conv}, []any{&user, &rs},
		func() error { reads = append(reads, rs); who[user] = rs; return nil }); err != nil {
		return err
	}
	slices.Sort(reads)
	for i := range msgs {
		m := &msgs[i]
		at, _ := slices.BinarySearchFunc(reads, m.Seq, cmp.Compare[int64])
		n := int64(len(reads) - at)
		if s, ok := who[m.From]; ok && s >= m.Seq {
			n--
		}
		m.ReadBy = n
	}
	return nil
}

// EnsureUsers creates the users that are missing.
func EnsureUsers(ctx context.Context, db DB, d Dialect, users []string) error {
	c := &conn{ctx: ctx, db: db, d: d}
	us := slices.Clone(users)
	slices.Sort(us)
	return chunks(slices.Compact(us), func(part []string) error {
		return c.exec(`INSERT INTO users (id) VALUES `+strings.TrimSuffix(strings.Repeat("(?), ", len(part)), ", ")+
			` ON CONFLICT DO NOTHING`, anys(part)...)
	})
}

func nowMillis() int64 { return time.Now().UnixMilli() }
