-- The same column and index as pgstore's 0004_change_events.sql.
ALTER TABLE messages ADD COLUMN ref_seq INTEGER NOT NULL DEFAULT 0;
CREATE INDEX messages_ref_seq_idx ON messages (conv_id, ref_seq) WHERE ref_seq > 0;
