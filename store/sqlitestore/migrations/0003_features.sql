-- The same tables as pgstore's 0003_features.sql.
CREATE TABLE contacts (
    owner_id   TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    peer_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    is_contact INTEGER NOT NULL DEFAULT 0,
    blocked    INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (owner_id, peer_id)
) STRICT, WITHOUT ROWID;
