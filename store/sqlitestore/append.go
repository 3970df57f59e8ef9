package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/mqim/mqim/store"
)

// Append stores batch in one transaction on the writer connection.
//
// It decides every request against the state before the batch, as pgstore
// does (a recipient is known only if it existed before the batch), then
// writes the new messages in batch order. The writer is the only one, so
// nothing it read changes before it writes, and two sends of one cmid
// cannot race.
func (s *Store) Append(ctx context.Context, batch []store.SendRequest) ([]store.SendResult, error) {
	return s.appendBatch(ctx, batch, "append batch", appendDirect)
}

// AppendGroup stores a batch of group messages in one transaction.
func (s *Store) AppendGroup(ctx context.Context, batch []store.SendRequest) ([]store.SendResult, error) {
	return s.appendBatch(ctx, batch, "append group batch", appendGroup)
}

func (s *Store) appendBatch(ctx context.Context, batch []store.SendRequest, what string,
	decide func(*txn, []store.SendRequest, map[store.Cmid]store.Stored) (*store.SendPlan, *store.SendWrites, error),
) ([]store.SendResult, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	var res []store.SendResult
	err := s.write(ctx, func(t *txn) error {
		cmids, _, _ := store.SendLookups(batch)
		stored, err := lookup(t, cmids)
		if err != nil {
			return err
		}
		plan, w, err := decide(t, batch, stored)
		if err != nil {
			return err
		}
		if len(plan.Fresh) > 0 {
			if err := writeSends(t, w); err != nil {
				return err
			}
		}
		res = plan.Results
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return res, nil
}

// appendDirect decides a batch of direct sends and creates the users and
// conversations its new messages need.
func appendDirect(t *txn, batch []store.SendRequest, stored map[store.Cmid]store.Stored) (*store.SendPlan, *store.SendWrites, error) {
	_, userIDs, convIDs := store.SendLookups(batch)
	users, err := t.exists(qUserExists, userIDs)
	if err != nil {
		return nil, nil, err
	}
	convs, err := t.exists(qConvExists, convIDs)
	if err != nil {
		return nil, nil, err
	}
	plan := store.DecideSends(batch, stored, func(r *store.SendRequest) error { return store.RefuseDirect(r, users[r.To]) })
	w := plan.Direct(users, convs)
	for _, u := range w.NewUsers {
		if err := t.exec(qEnsureUser, u); err != nil {
			return nil, nil, err
		}
	}
	for _, c := range w.NewConvs {
		if err := t.exec(qNewConv, c, store.ConvDirect); err != nil {
			return nil, nil, err
		}
	}
	for _, m := range w.NewMembers {
		if err := t.exec(qNewMember, m.Conv, m.User, store.RoleMember); err != nil {
			return nil, nil, err
		}
	}
	return plan, w, nil
}

// appendGroup decides a batch of group sends on the groups' state.
func appendGroup(t *txn, batch []store.SendRequest, stored map[store.Cmid]store.Stored) (*store.SendPlan, *store.SendWrites, error) {
	ids, asked := store.GroupAsks(batch)
	groups := make(map[string]*store.GroupState, len(ids))
	for _, id := range ids {
		g, err := readGroup(t, id)
		if err != nil {
			return nil, nil, err
		}
		if g == nil {
			continue
		}
		if err := readMembers(t, g, id, g.MembersToRead(asked[id])); err != nil {
			return nil, nil, err
		}
		groups[id] = g
	}
	plan := store.DecideSends(batch, stored, func(r *store.SendRequest) error { return store.RefuseGroup(r, groups[r.Group]) })
	return plan, plan.Group(groups), nil
}

// writeSends moves the counters of w, in the lock order, and writes the
// rows of the new messages.
func writeSends(t *txn, w *store.SendWrites) error {
	convLast := make(map[string]int64, len(w.Conv))
	for _, c := range w.Convs() {
		var last int64
		if err := t.queryRow(qAdvanceConv, w.Conv[c], w.ConvTS[c], c).Scan(&last); err != nil {
			return fmt.Errorf("advance seq of %q: %w", c, err)
		}
		convLast[c] = last
	}
	userLast := make(map[string]int64, len(w.User))
	for _, u := range w.Users() {
		var last int64
		if err := t.queryRow(qAdvanceUser, w.User[u], u).Scan(&last); err != nil {
			return fmt.Errorf("advance inbox seq of %q: %w", u, err)
		}
		userLast[u] = last
	}
	rows, err := w.Number(convLast, userLast)
	if err != nil {
		return err
	}
	for i := range rows.Messages {
		if err := t.insertMessage(&rows.Messages[i]); err != nil {
			return err
		}
	}
	if err := t.insertInbox(rows.Inbox); err != nil {
		return err
	}
	if err := t.writePush(rows.Push); err != nil {
		return err
	}
	for _, r := range rows.Reads {
		if err := t.exec(qSenderRead, r.Seq, r.Conv, r.User); err != nil {
			return err
		}
	}
	return nil
}

// lookup returns the messages stored for cmids.
func lookup(t *txn, cmids []store.Cmid) (map[store.Cmid]store.Stored, error) {
	out := make(map[store.Cmid]store.Stored)
	for _, k := range cmids {
		m := store.Stored{Msg: store.Message{From: k.From, Cmid: k.Cmid}}
		var ments string
		err := t.queryRow(qLookup, k.From, k.Cmid).
			Scan(&m.Digest, &m.Msg.ID, &m.Msg.Conv, &m.Msg.Seq, &m.Msg.Type, &m.Msg.Body, &m.Msg.TS, &ments)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("look up cmid %q of %q: %w", k.Cmid, k.From, err)
		}
		m.Msg.Mentions = store.ParseMentions(ments)
		out[k] = m
	}
	return out, nil
}
