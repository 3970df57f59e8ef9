-- The same tables as pgstore's 0006_push.sql. Offline push [IM-17]: a device
-- registered for push, bound to its user and MQTT client id; a provider
-- token belongs to one registration.
CREATE TABLE push_devices (
    user_id    TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    platform   TEXT NOT NULL,
    token      TEXT NOT NULL,
    app        TEXT NOT NULL DEFAULT '',
    env        TEXT NOT NULL DEFAULT '',
    locale     TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL, -- unix ms
    PRIMARY KEY (user_id, client_id)
) STRICT;
CREATE UNIQUE INDEX push_devices_token ON push_devices (platform, token);
CREATE INDEX push_devices_client ON push_devices (client_id);

-- The outbox: messages that may notify a user with a push device, written
-- in the transaction that commits them, deleted once handed to the work
-- queue (JetStream). user_id '' with kind 3 is expanded on write.
CREATE TABLE push_outbox (
    user_id    TEXT NOT NULL,
    conv_id    TEXT NOT NULL,
    conv_seq   INTEGER NOT NULL,
    inbox_seq  INTEGER NOT NULL,
    kind       INTEGER NOT NULL,
    sender     TEXT NOT NULL,
    created_at INTEGER NOT NULL, -- unix ms
    PRIMARY KEY (user_id, conv_id, conv_seq)
) STRICT;
CREATE INDEX push_outbox_created ON push_outbox (created_at);

-- One claim per (message, device): a push goes out once [IM-17.4].
CREATE TABLE push_claims (
    user_id    TEXT NOT NULL,
    conv_id    TEXT NOT NULL,
    conv_seq   INTEGER NOT NULL,
    client_id  TEXT NOT NULL,
    sent       INTEGER NOT NULL DEFAULT 0,
    claimed_at INTEGER NOT NULL, -- unix ms
    attempts   INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (user_id, conv_id, conv_seq, client_id)
) STRICT;
CREATE INDEX push_claims_claimed ON push_claims (claimed_at);
