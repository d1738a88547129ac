-- The CLI login's confirmation step (operational state, like the rest of
-- login_states: not a projection, never rebuilt from events).
--
-- A CLI login can be started by anyone, so its link could be sent to a victim.
-- After the provider, the browser is shown what it is authorising (the CLI's
-- device, address and start time, and `user_code`, which the CLI printed) and
-- a Confirm button; only that confirmation, from the browser that signed in
-- (`confirm_sha256`: the SHA-256 of a cookie set at the callback), lets
-- /complete hand out the session.
ALTER TABLE login_states
    ADD COLUMN user_code      text CHECK (user_code ~ '^[A-Z0-9]{4}-[A-Z0-9]{4}$'),
    ADD COLUMN start_ip       text,
    ADD COLUMN confirm_sha256 text CHECK (confirm_sha256 ~ '^[0-9a-f]{64}$'),
    ADD COLUMN confirmed_at   timestamptz;
