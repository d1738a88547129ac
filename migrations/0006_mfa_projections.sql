-- MFA projections (crate `projections`, module `mfa`): folded from the `mfa.*`,
-- `user.locked` and `user.unlocked` events (docs/events.md §6). As in 0002, every
-- value comes from an event. No secret is stored here: methods carry a keyed
-- fingerprint, backup codes their HMAC, trusted devices their cookie's SHA-256.
-- The secrets themselves live in the operational table of 0007.

CREATE TABLE mfa_methods (
    id              uuid PRIMARY KEY,
    user_id         uuid NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('totp', 'webauthn', 'yubikey')),
    label           text NOT NULL,
    cli_compatible  boolean NOT NULL,
    fingerprint     text NOT NULL,
    -- A WebAuthn credential whose counter went backwards (a possible clone).
    disabled        boolean NOT NULL,
    disabled_reason text,
    created_at      timestamptz NOT NULL,
    created_seq     bigint NOT NULL,
    updated_at      timestamptz NOT NULL,
    updated_seq     bigint NOT NULL,
    last_used_at    timestamptz,
    removed_at      timestamptz,
    removed_seq     bigint,
    removed_by      text
);
CREATE INDEX mfa_methods_user ON mfa_methods (user_id);

-- One row per code of a user's current set (`id` = set id ':' index).
CREATE TABLE mfa_backup_codes (
    id          text PRIMARY KEY,
    user_id     uuid NOT NULL,
    set_id      uuid NOT NULL,
    idx         integer NOT NULL,
    code_hmac   text NOT NULL,
    created_at  timestamptz NOT NULL,
    created_seq bigint NOT NULL,
    used_at     timestamptz,
    used_seq    bigint
);
CREATE INDEX mfa_backup_codes_user ON mfa_backup_codes (user_id);

CREATE TABLE mfa_trusted_devices (
    id            uuid PRIMARY KEY,
    user_id       uuid NOT NULL,
    token_sha256  text NOT NULL UNIQUE CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
    label         text,
    created_at    timestamptz NOT NULL,
    created_seq   bigint NOT NULL,
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    revoked_seq   bigint,
    revoke_reason text
);
CREATE INDEX mfa_trusted_devices_user ON mfa_trusted_devices (user_id);

-- The lock after repeated MFA failures, and the preferred method.
ALTER TABLE users
    ADD COLUMN locked_at            timestamptz,
    ADD COLUMN locked_seq           bigint,
    ADD COLUMN locked_reason        text,
    ADD COLUMN mfa_preferred_method uuid;

-- Which method verified the session for sign-in, and its last step-up.
ALTER TABLE sessions
    ADD COLUMN mfa_verified      boolean NOT NULL DEFAULT false,
    ADD COLUMN mfa_method        text,
    ADD COLUMN mfa_verified_at   timestamptz,
    ADD COLUMN recent_step_up_at timestamptz;
