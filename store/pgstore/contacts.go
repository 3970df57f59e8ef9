package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mqim/mqim/store"
)

// UpdateContact applies change to owner's relation to peer.
func (s *Store) UpdateContact(ctx context.Context, owner, peer string, change store.ContactChange, ts int64) (store.Contact, error) {
	c := store.Contact{User: peer}
	contact, blocked, err := store.ContactFlags(change)
	if err != nil {
		return c, err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var ok bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)`, peer).Scan(&ok); err != nil {
			return err
		}
		if !ok {
			return store.UnknownUserError(peer)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO users (id) VALUES ($1) ON CONFLICT DO NOTHING`, owner); err != nil {
			return err
		}
		// A change that changes nothing keeps updated_at.
		return tx.QueryRow(ctx, `INSERT INTO contacts AS c (owner_id, peer_id, is_contact, blocked, updated_at)
			VALUES ($1, $2, coalesce($3, false), coalesce($4, false), $5)
			ON CONFLICT (owner_id, peer_id) DO UPDATE SET
				is_contact = coalesce($3, c.is_contact),
				blocked = coalesce($4, c.blocked),
				updated_at = CASE WHEN coalesce($3, c.is_contact) = c.is_contact AND coalesce($4, c.blocked) = c.blocked
					THEN c.updated_at ELSE $5 END
			RETURNING is_contact, blocked, updated_at`, owner, peer, contact, blocked, ts).
			Scan(&c.Contact, &c.Blocked, &c.Since)
	})
	if err != nil {
		return store.Contact{User: peer}, fmt.Errorf("update contact %q of %q: %w", peer, owner, err)
	}
	return store.Relation(peer, c.Contact, c.Blocked, c.Since), nil
}

// Relations returns each pair's relation, in order, in one query.
func (s *Store) Relations(ctx context.Context, pairs []store.Pair) ([]store.Contact, error) {
	out := make([]store.Contact, len(pairs))
	if len(pairs) == 0 {
		return out, nil
	}
	owners, peers := make([]string, len(pairs)), make([]string, len(pairs))
	for i, p := range pairs {
		owners[i], peers[i] = p.Owner, p.Peer
		out[i].User = p.Peer
	}
	rows, _ := s.pool.Query(ctx, `SELECT k.i, c.is_contact, c.blocked, c.updated_at
		FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(o, p, i)
		JOIN contacts c ON c.owner_id = k.o AND c.peer_id = k.p`, owners, peers)
	var (
		i int64
		c store.Contact
	)
	_, err := pgx.ForEachRow(rows, []any{&i, &c.Contact, &c.Blocked, &c.Since}, func() error {
		out[i-1] = store.Relation(out[i-1].User, c.Contact, c.Blocked, c.Since)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("relations: %w", err)
	}
	return out, nil
}

// Contacts returns owner's contacts and blocked users by user id.
func (s *Store) Contacts(ctx context.Context, owner string) ([]store.Contact, error) {
	rows, _ := s.pool.Query(ctx, `SELECT peer_id, is_contact, blocked, updated_at FROM contacts
		WHERE owner_id = $1 AND (is_contact OR blocked) ORDER BY peer_id COLLATE "C"`, owner)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Contact, error) {
		var c store.Contact
		err := r.Scan(&c.User, &c.Contact, &c.Blocked, &c.Since)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("contacts of %q: %w", owner, err)
	}
	return out, nil
}
