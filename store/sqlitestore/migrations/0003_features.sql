-- The same tables as pgstore's 0003_features.sql.
CREATE TABLE contacts (
    owner_id   TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    peer_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    is_contact INTEGER NOT NULL DEFAULT 0,
    blocked    INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (owner_id, peer_id)
) STRICT, WITHOUT ROWID;

ALTER TABLE messages ADD COLUMN recalled_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN edited_at INTEGER NOT NULL DEFAULT 0;

CREATE TABLE hidden (
    user_id TEXT    NOT NULL,
    conv_id TEXT    NOT NULL,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (user_id, conv_id, seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE conv_settings (
    user_id    TEXT    NOT NULL,
    conv_id    TEXT    NOT NULL,
    pinned     INTEGER NOT NULL DEFAULT 0,
    muted      INTEGER NOT NULL DEFAULT 0,
    archived   INTEGER NOT NULL DEFAULT 0,
    draft      TEXT    NOT NULL DEFAULT '',
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, conv_id)
) STRICT, WITHOUT ROWID;
