-- Last use of each session, for the web idle timeout. Operational state, not a
-- projection: it is not rebuilt from events (a lost row only makes a web
-- session expire sooner, never later).
CREATE TABLE session_activity (
    session_id   uuid PRIMARY KEY,
    last_seen_at timestamptz NOT NULL
);
