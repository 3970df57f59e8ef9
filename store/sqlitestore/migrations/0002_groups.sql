-- The same as pgstore's 0002_groups.sql.
CREATE TABLE groups (
    id        TEXT    PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
    name      TEXT    NOT NULL DEFAULT '',
    avatar    TEXT    NOT NULL DEFAULT '',
    notice    TEXT    NOT NULL DEFAULT '',
    fanout    TEXT    NOT NULL DEFAULT 'write',
    read_from INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;

ALTER TABLE members ADD COLUMN role  TEXT    NOT NULL DEFAULT 'member';
ALTER TABLE members ADD COLUMN muted INTEGER NOT NULL DEFAULT 0;

ALTER TABLE messages ADD COLUMN mentions TEXT NOT NULL DEFAULT '';
