-- Counters (users.inbox_seq, conversations.last_seq) are only changed inside
-- the transaction that writes the rows they number, with rows locked in one
-- global order: conversations before users, each sorted by id.

CREATE TABLE users (
    id         text PRIMARY KEY,
    inbox_seq  bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE devices (
    user_id   text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id text NOT NULL,
    last_seen timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, device_id)
);

CREATE TABLE conversations (
    id         text PRIMARY KEY,
    kind       text NOT NULL,
    last_seq   bigint NOT NULL DEFAULT 0,
    last_ts    bigint NOT NULL DEFAULT 0, -- unix ms of the last message, for ordering
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE members (
    conv_id  text NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id  text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    read_seq bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (conv_id, user_id)
);
CREATE INDEX members_user_id_idx ON members (user_id);

-- messages and inbox are the hot tables: no foreign keys, the writer keeps
-- them consistent and the checks would cost on every row.
CREATE TABLE messages (
    conv_id text   NOT NULL,
    seq     bigint NOT NULL,
    id      bigint NOT NULL,
    sender  text   NOT NULL,
    cmid    text   NOT NULL,
    type    text   NOT NULL,
    body    bytea  NOT NULL,
    digest  bytea  NOT NULL,
    ts      bigint NOT NULL, -- unix ms
    PRIMARY KEY (conv_id, seq),
    CONSTRAINT messages_id_key UNIQUE (id),
    CONSTRAINT messages_sender_cmid_key UNIQUE (sender, cmid)
);

-- An inbox row points at its event; message bodies stay in messages.
CREATE TABLE inbox (
    user_id  text     NOT NULL,
    seq      bigint   NOT NULL,
    kind     smallint NOT NULL, -- 1 message, 2 read
    conv_id  text     NOT NULL,
    conv_seq bigint   NOT NULL,
    actor    text     NOT NULL,
    ts       bigint   NOT NULL, -- unix ms
    PRIMARY KEY (user_id, seq)
);
