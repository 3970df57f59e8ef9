-- Contacts and blocks [IM-12]. owner_id's relation to peer_id; a row with
-- neither flag set is no relation.
CREATE TABLE contacts (
    owner_id   text    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    peer_id    text    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    is_contact boolean NOT NULL DEFAULT false,
    blocked    boolean NOT NULL DEFAULT false,
    updated_at bigint  NOT NULL, -- unix ms
    PRIMARY KEY (owner_id, peer_id)
);
