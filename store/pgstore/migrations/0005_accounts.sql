-- Account control and the audit log [IM-8.3]. A deleted user's row is
-- gone (its foreign keys cascade: devices, memberships, contacts both
-- ways); its id stays in deleted_users so that it is never created again
-- [IM-3.1-5].
ALTER TABLE users ADD COLUMN disabled_at bigint NOT NULL DEFAULT 0; -- unix ms; 0: enabled
ALTER TABLE users ADD COLUMN not_before  bigint NOT NULL DEFAULT 0; -- unix s: tokens issued before are refused

CREATE TABLE deleted_users (
    id         text   PRIMARY KEY,
    deleted_at bigint NOT NULL -- unix ms
);

-- Client ids refused for their user ("this device was stolen").
CREATE TABLE revoked_devices (
    user_id    text   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  text   NOT NULL,
    revoked_at bigint NOT NULL, -- unix ms
    PRIMARY KEY (user_id, client_id)
);

-- Admin and bridge actions; never a message body or a token.
CREATE TABLE audit_log (
    id     bigserial PRIMARY KEY,
    ts     bigint NOT NULL, -- unix ms
    actor  text   NOT NULL,
    role   text   NOT NULL,
    action text   NOT NULL,
    target text   NOT NULL DEFAULT '',
    detail text   NOT NULL DEFAULT '',
    remote text   NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_target_idx ON audit_log (target, id);
