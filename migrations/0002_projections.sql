-- Projections: state folded from the chain (crate `projections`). Every row here
-- can be rebuilt from events alone, so every value comes from an event (no now(),
-- no defaults that differ between the live fold and a rebuild).

CREATE TABLE users (
    id          uuid PRIMARY KEY,
    email       text NOT NULL UNIQUE CHECK (email = lower(email)),
    name        text,
    role        text NOT NULL,
    disabled    boolean NOT NULL,
    created_at  timestamptz NOT NULL,
    created_seq bigint NOT NULL,
    updated_at  timestamptz NOT NULL,
    updated_seq bigint NOT NULL
);

CREATE TABLE api_tokens (
    id            uuid PRIMARY KEY,
    name          text NOT NULL,
    -- SHA-256 of the secret, hex; the secret itself is never stored.
    token_sha256  text NOT NULL UNIQUE CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
    role          text NOT NULL,
    user_id       uuid,
    user_email    text,
    expires_at    timestamptz,
    created_at    timestamptz NOT NULL,
    created_seq   bigint NOT NULL,
    created_by    text,
    revoked_at    timestamptz,
    revoked_seq   bigint,
    revoked_by    text,
    revoke_reason text
);
-- A name identifies a live token; a revoked token's name can be reused.
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;

CREATE TABLE sessions (
    id             uuid PRIMARY KEY,
    user_id        uuid NOT NULL,
    user_email     text NOT NULL,
    token_sha256   text NOT NULL UNIQUE CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
    channel        text NOT NULL CHECK (channel IN ('web', 'cli')),
    device_id      text,
    device_name    text,
    device_os      text,
    client_version text,
    created_at     timestamptz NOT NULL,
    created_seq    bigint NOT NULL,
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz,
    revoked_seq    bigint,
    revoked_by     text,
    revoke_reason  text
);
CREATE INDEX sessions_user ON sessions (user_id);
