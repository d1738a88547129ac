-- MFA secrets: OPERATIONAL, not a projection (never rebuilt, never compared).
-- The secret a method needs to verify (a TOTP seed, a YubiKey binding, a
-- WebAuthn credential) must never enter the chain, not even encrypted
-- (docs/mfa.md), so it lives here, sealed with XChaCha20-Poly1305 under a key
-- derived with HKDF-SHA256 from APP_SECRET_KEY (gateway/src/mfa/crypto.rs).
-- The associated data binds each ciphertext to its row (method, user, kind),
-- so a sealed secret cannot be moved to another row.
--
-- A row with `confirmed = false` is an enrolment not yet confirmed: it has no
-- `mfa_methods` row (that comes with `mfa.method.enrolled`), and is deleted
-- when abandoned.

CREATE TABLE mfa_secrets (
    method_id   uuid PRIMARY KEY,
    user_id     uuid NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('totp', 'webauthn', 'yubikey')),
    nonce       bytea NOT NULL,
    ciphertext  bytea NOT NULL,
    -- A keyed lookup value that must be unique across users where the kind
    -- needs one (a WebAuthn credential id, a YubiKey public id), else NULL.
    lookup      text UNIQUE,
    confirmed   boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mfa_secrets_user ON mfa_secrets (user_id);

-- TOTP time steps already accepted, per user: each is accepted once
-- (RFC 6238 §5.2), inserted in the same statement that checks it.
CREATE TABLE mfa_totp_used_steps (
    user_id  uuid NOT NULL,
    step     bigint NOT NULL,
    used_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, step)
);

-- Failed verifications, counted for the lock (MFA_MAX_FAILURES in 15 minutes).
-- Each is also a `mfa.verification.failed` event; this is only the counter.
CREATE TABLE mfa_failures (
    id       bigserial PRIMARY KEY,
    user_id  uuid NOT NULL,
    at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mfa_failures_user_at ON mfa_failures (user_id, at);
