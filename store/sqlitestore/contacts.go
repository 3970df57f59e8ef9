package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/mqim/mqim/store"
)

const (
	qUpsertContact = `INSERT INTO contacts AS c (owner_id, peer_id, is_contact, blocked, updated_at)
		VALUES (?1, ?2, coalesce(?3, 0), coalesce(?4, 0), ?5)
		ON CONFLICT (owner_id, peer_id) DO UPDATE SET
			is_contact = coalesce(?3, c.is_contact),
			blocked = coalesce(?4, c.blocked),
			updated_at = CASE WHEN coalesce(?3, c.is_contact) = c.is_contact AND coalesce(?4, c.blocked) = c.blocked
				THEN c.updated_at ELSE ?5 END
		RETURNING is_contact, blocked, updated_at`
	qContacts = `SELECT peer_id, is_contact, blocked, updated_at FROM contacts
		WHERE owner_id = ? AND (is_contact OR blocked) ORDER BY peer_id`
	qRelation = `SELECT is_contact, blocked, updated_at FROM contacts WHERE owner_id = ? AND peer_id = ?`
)

func init() {
	writeQueries = append(writeQueries, qUpsertContact)
	readQueries = append(readQueries, qContacts, qRelation)
}

// UpdateContact applies change to owner's relation to peer.
func (s *Store) UpdateContact(ctx context.Context, owner, peer string, change store.ContactChange, ts int64) (store.Contact, error) {
	c := store.Contact{User: peer}
	contact, blocked, err := store.ContactFlags(change)
	if err != nil {
		return c, err
	}
	err = s.write(ctx, func(t *txn) error {
		known, err := t.exists(qUserExists, []string{peer})
		if err != nil {
			return err
		}
		if !known[peer] {
			return store.UnknownUserError(peer)
		}
		if err := t.exec(qEnsureUser, owner); err != nil {
			return err
		}
		return t.queryRow(qUpsertContact, owner, peer, contact, blocked, ts).Scan(&c.Contact, &c.Blocked, &c.Since)
	})
	if err != nil {
		return store.Contact{User: peer}, fmt.Errorf("update contact %q of %q: %w", peer, owner, err)
	}
	return store.Relation(peer, c.Contact, c.Blocked, c.Since), nil
}

// Contacts returns owner's contacts and blocked users by user id.
func (s *Store) Contacts(ctx context.Context, owner string) ([]store.Contact, error) {
	rows, err := s.rps[qContacts].QueryContext(ctx, owner)
	if err != nil {
		return nil, fmt.Errorf("contacts of %q: %w", owner, err)
	}
	defer rows.Close()
	var out []store.Contact
	for rows.Next() {
		var c store.Contact
		if err := rows.Scan(&c.User, &c.Contact, &c.Blocked, &c.Since); err != nil {
			return nil, fmt.Errorf("contacts of %q: %w", owner, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("contacts of %q: %w", owner, err)
	}
	return out, nil
}

// Relations returns each pair's relation, in order, from one snapshot.
func (s *Store) Relations(ctx context.Context, pairs []store.Pair) ([]store.Contact, error) {
	out := make([]store.Contact, len(pairs))
	if len(pairs) == 0 {
		return out, nil
	}
	err := s.read(ctx, func(t *txn) error {
		for i, p := range pairs {
			var c store.Contact
			err := t.queryRow(qRelation, p.Owner, p.Peer).Scan(&c.Contact, &c.Blocked, &c.Since)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			out[i] = store.Relation(p.Peer, c.Contact, c.Blocked, c.Since)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("relations: %w", err)
	}
	return out, nil
}
