-- Logins in progress (web and CLI): the state, nonce and PKCE verifier of each
-- OpenID Connect authorization request, and how far the login has come.
-- Operational state, not a projection: nothing here is rebuilt from events, and
-- none of it ever enters an event (the verifier and nonce are secrets of the
-- exchange; the state is stored only as its SHA-256).

CREATE TABLE login_states (
    -- Names the login in its auth.login.* events (the state itself never appears there).
    id                uuid PRIMARY KEY,
    state_sha256      text NOT NULL UNIQUE CHECK (state_sha256 ~ '^[0-9a-f]{64}$'),
    channel           text NOT NULL CHECK (channel IN ('web', 'cli')),
    -- CLI logins: SHA-256 of the secret only the CLI that started the login holds.
    cli_secret_sha256 text CHECK (cli_secret_sha256 ~ '^[0-9a-f]{64}$'),
    pkce_verifier     text NOT NULL,
    nonce             text NOT NULL,
    device_id         text,
    device_name       text,
    device_os         text,
    client_version    text,
    -- pending → exchanging (callback claimed it) → authenticated | failed → completed;
    -- or expired. (An MFA step would sit between authenticated and completed.)
    status            text NOT NULL CHECK (status IN
                          ('pending', 'exchanging', 'authenticated', 'failed', 'completed', 'expired')),
    user_id           uuid,
    email             text,
    name              text,
    failure_reason    text,
    failure_detail    text,
    session_id        uuid,
    created_at        timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    CHECK ((channel = 'cli') = (cli_secret_sha256 IS NOT NULL))
);
CREATE INDEX login_states_expires ON login_states (expires_at);
