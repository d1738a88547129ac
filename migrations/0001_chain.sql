-- The audit chain (events.md, interfaces.md "Database"). Append-only, enforced here,
-- whatever the application does: UPDATE, DELETE and TRUNCATE statements fail.

-- The chain id is created once, at first start, and never changes.
CREATE TABLE chain_meta (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    chain      text NOT NULL CHECK (chain <> ''),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE events (
    chain       text   NOT NULL,
    seq         bigint NOT NULL CHECK (seq > 0),
    -- The exact RFC 8785 bytes that were hashed (envelope without `hash`).
    canonical   bytea  NOT NULL,
    hash        text   NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
    -- Copies for search only; verification reads `canonical` and `hash`, never these.
    id          uuid        NOT NULL,
    ts          timestamptz NOT NULL,
    type        text        NOT NULL,
    actor_kind  text        NOT NULL,
    actor_id    text,
    actor_email text,
    request_id  text,
    body        jsonb       NOT NULL,
    PRIMARY KEY (chain, seq)
);
CREATE UNIQUE INDEX events_id ON events (id);
CREATE INDEX events_ts ON events (ts);
CREATE INDEX events_type ON events (type, seq);
CREATE INDEX events_actor ON events (actor_email, seq) WHERE actor_email IS NOT NULL;
CREATE INDEX events_request_id ON events (request_id) WHERE request_id IS NOT NULL;

CREATE TABLE checkpoints (
    chain      text   NOT NULL,
    size       bigint NOT NULL CHECK (size > 0),
    -- The signed note, verbatim.
    note       text   NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- One checkpoint per size: a second replica signing the same size fails here.
    PRIMARY KEY (chain, size)
);

CREATE FUNCTION rgw_refuse_mutation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'rack-gateway: table % is append-only; % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

-- Statement-level, so even a statement that would touch zero rows is refused;
-- ENABLE ALWAYS, so session_replication_role = replica does not switch them off.
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION rgw_refuse_mutation();
CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION rgw_refuse_mutation();
CREATE TRIGGER chain_meta_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON chain_meta
    FOR EACH STATEMENT EXECUTE FUNCTION rgw_refuse_mutation();
ALTER TABLE events ENABLE ALWAYS TRIGGER events_append_only;
ALTER TABLE checkpoints ENABLE ALWAYS TRIGGER checkpoints_append_only;
ALTER TABLE chain_meta ENABLE ALWAYS TRIGGER chain_meta_append_only;
