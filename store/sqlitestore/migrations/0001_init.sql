-- The same tables as pgstore's 0001_init.sql. Counters (users.inbox_seq,
-- conversations.last_seq) are only changed inside the transaction that writes
-- the rows they number; there is one writer connection, so no lock order is
-- needed. Times are unix milliseconds. STRICT makes SQLite check the column
-- types as PostgreSQL does.

CREATE TABLE users (
    id         TEXT    PRIMARY KEY,
    inbox_seq  INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
) STRICT, WITHOUT ROWID;

CREATE TABLE devices (
    user_id   TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id TEXT    NOT NULL,
    last_seen INTEGER NOT NULL,
    PRIMARY KEY (user_id, device_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE conversations (
    id         TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL,
    last_seq   INTEGER NOT NULL DEFAULT 0,
    last_ts    INTEGER NOT NULL DEFAULT 0, -- of the last message, for ordering
    created_at INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
) STRICT, WITHOUT ROWID;

CREATE TABLE members (
    conv_id  TEXT    NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id  TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    read_seq INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (conv_id, user_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX members_user_id_idx ON members (user_id);

-- messages and inbox are the hot tables: no foreign keys, the writer keeps
-- them consistent. The message id (a snowflake, roughly increasing) is the
-- rowid, so new rows go at the end of the table's b-tree and bodies do not
-- bloat a WITHOUT ROWID b-tree.
CREATE TABLE messages (
    id      INTEGER PRIMARY KEY,
    conv_id TEXT    NOT NULL,
    seq     INTEGER NOT NULL,
    sender  TEXT    NOT NULL,
    cmid    TEXT    NOT NULL,
    type    TEXT    NOT NULL,
    body    BLOB    NOT NULL,
    digest  BLOB    NOT NULL,
    ts      INTEGER NOT NULL,
    UNIQUE (conv_id, seq),
    UNIQUE (sender, cmid)
) STRICT;

-- An inbox row points at its event; message bodies stay in messages.
CREATE TABLE inbox (
    user_id  TEXT    NOT NULL,
    seq      INTEGER NOT NULL,
    kind     INTEGER NOT NULL, -- 1 message, 2 read
    conv_id  TEXT    NOT NULL,
    conv_seq INTEGER NOT NULL,
    actor    TEXT    NOT NULL,
    ts       INTEGER NOT NULL,
    PRIMARY KEY (user_id, seq)
) STRICT, WITHOUT ROWID;
