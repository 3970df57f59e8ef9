-- A recall or an edit in a group that fans out on read is also an event in
-- the group's timeline [IM-14.4-3]: ref_seq is the seq of the message it
-- changes (0 for every other message), so that a recall finds the earlier
-- edit events of the message and removes their text.
ALTER TABLE messages ADD COLUMN ref_seq bigint NOT NULL DEFAULT 0;
CREATE INDEX messages_ref_seq_idx ON messages (conv_id, ref_seq) WHERE ref_seq > 0;
