-- WebAuthn ceremonies in progress: OPERATIONAL, not a projection (never
-- rebuilt, never compared). The state webauthn-rs keeps between `start` and
-- `finish` (the challenge, the allowed credentials) lives here, server-side,
-- so a client cannot replay an old challenge, and any replica can finish a
-- ceremony another one started. A row is consumed once, by
-- `DELETE … RETURNING` in the statement that reads it (docs/mfa.md,
-- "WebAuthn").
--
-- `session_id` binds the ceremony to the session that started it: another
-- session of the same user cannot finish it.

CREATE TABLE mfa_webauthn_ceremonies (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL,
    session_id  uuid NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('registration', 'authentication')),
    -- Authentication only: `login` or `step_up`, fixed at start.
    purpose     text CHECK (purpose IN ('login', 'step_up')),
    state       jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX mfa_webauthn_ceremonies_expires ON mfa_webauthn_ceremonies (expires_at);
