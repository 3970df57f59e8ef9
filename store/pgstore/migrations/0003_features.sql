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

-- Recall and edit [IM-13]: when, 0 for never. A recalled message keeps its
-- row (its seq stays taken) with type 'recalled' and an empty body.
ALTER TABLE messages ADD COLUMN recalled_at bigint NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN edited_at bigint NOT NULL DEFAULT 0;

-- Messages a user deleted for itself [IM-13.3]; history skips them.
CREATE TABLE hidden (
    user_id text   NOT NULL,
    conv_id text   NOT NULL,
    seq     bigint NOT NULL,
    PRIMARY KEY (user_id, conv_id, seq)
);

-- A user's own settings of a conversation [IM-15].
CREATE TABLE conv_settings (
    user_id    text    NOT NULL,
    conv_id    text    NOT NULL,
    pinned     boolean NOT NULL DEFAULT false,
    muted      boolean NOT NULL DEFAULT false,
    archived   boolean NOT NULL DEFAULT false,
    draft      text    NOT NULL DEFAULT '',
    updated_at bigint  NOT NULL,
    PRIMARY KEY (user_id, conv_id)
);
