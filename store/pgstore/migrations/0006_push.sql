-- Offline push [IM-17]. A device registered for push, bound to its user
-- and MQTT client id; a provider token belongs to one registration.
CREATE TABLE push_devices (
    user_id    text   NOT NULL,
    client_id  text   NOT NULL,
    platform   text   NOT NULL,
    token      text   NOT NULL,
    app        text   NOT NULL DEFAULT '',
    env        text   NOT NULL DEFAULT '',
    locale     text   NOT NULL DEFAULT '',
    created_at bigint NOT NULL, -- unix ms
    PRIMARY KEY (user_id, client_id)
);
CREATE UNIQUE INDEX push_devices_token ON push_devices (platform, token);
CREATE INDEX push_devices_client ON push_devices (client_id);

-- The outbox: messages that may notify a user with a push device, written
-- in the transaction that commits them, deleted once handed to the work
-- queue (JetStream). user_id '' with kind 3 is expanded on write.
CREATE TABLE push_outbox (
    user_id    text     NOT NULL,
    conv_id    text     NOT NULL,
    conv_seq   bigint   NOT NULL,
    inbox_seq  bigint   NOT NULL,
    kind       smallint NOT NULL,
    sender     text     NOT NULL,
    created_at bigint   NOT NULL, -- unix ms
    PRIMARY KEY (user_id, conv_id, conv_seq)
);
CREATE INDEX push_outbox_created ON push_outbox (created_at);

-- One claim per (message, device): a push goes out once [IM-17.4].
CREATE TABLE push_claims (
    user_id    text     NOT NULL,
    conv_id    text     NOT NULL,
    conv_seq   bigint   NOT NULL,
    client_id  text     NOT NULL,
    sent       boolean  NOT NULL DEFAULT false,
    claimed_at bigint   NOT NULL, -- unix ms
    attempts   smallint NOT NULL DEFAULT 1,
    PRIMARY KEY (user_id, conv_id, conv_seq, client_id)
);
CREATE INDEX push_claims_claimed ON push_claims (claimed_at);
