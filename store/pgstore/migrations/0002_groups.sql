-- Groups [IM-11]. A group is a conversation of kind 'group' with this row
-- beside it; its members are rows of members, with a role and a mute flag.
-- fanout is 'write' (an inbox row per member per event) or 'read' (one
-- timeline row, published on the group topic); read_from is the conv seq of
-- the event that switched the group to 'read'.
CREATE TABLE groups (
    id        text PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
    name      text   NOT NULL DEFAULT '',
    avatar    text   NOT NULL DEFAULT '',
    notice    text   NOT NULL DEFAULT '',
    fanout    text   NOT NULL DEFAULT 'write',
    read_from bigint NOT NULL DEFAULT 0
);

ALTER TABLE members ADD COLUMN role  text     NOT NULL DEFAULT 'member';
ALTER TABLE members ADD COLUMN muted smallint NOT NULL DEFAULT 0;

-- Mentions of a group message: member ids separated by spaces, "*" = all.
ALTER TABLE messages ADD COLUMN mentions text NOT NULL DEFAULT '';
