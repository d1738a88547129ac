-- Shipper state (events.md §5): the segments this database knows were
-- shipped, one row per `archive.shipped` event, written in the appending
-- transaction. Operational state, not the truth: on every start the shipper
-- lists the bucket and continues from what it holds; these rows tell it which
-- listed segments were already recorded and what their SHA-256 was.
CREATE TABLE archive_segments (
    bucket     text   NOT NULL,
    key        text   NOT NULL,
    chain      text   NOT NULL,
    first_seq  bigint NOT NULL CHECK (first_seq > 0),
    last_seq   bigint NOT NULL CHECK (last_seq >= first_seq),
    sha256     text   NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    bytes      bigint NOT NULL,
    -- seq of the archive.shipped event that recorded it
    event_seq  bigint NOT NULL,
    PRIMARY KEY (bucket, key)
);
CREATE INDEX archive_segments_progress ON archive_segments (chain, bucket, last_seq);
