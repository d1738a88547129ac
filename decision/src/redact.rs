//! Everything that could carry a secret out of a proxied request passes here
//! before it reaches an event, a log line or an error message (no secret ever
//! enters the chain).
//!
//! Where the rack API takes secrets, and what we record:
//!
//! | where | recorded as |
//! |---|---|
//! | `env` field (`POST /apps/{app}/releases`, legacy env body) | its keys |
//! | `parameters` field (`PUT /apps/{app}`, `PUT /system`, `POST/PUT /resources`) — a url-encoded map whose values may be passwords | its keys |
//! | `build-args` field (`K=V,…`) | its keys |
//! | `Environment` and `Volumes` headers of `run` (url-encoded maps) | their keys |
//! | `value` (`PUT configs`), `password` (`POST /registries`), `key`/`private` (certificates), `src-creds-pass` (image import), legacy top-level parameter fields | `[REDACTED]` |
//! | `Private-Key` header (instance shell), `Authorization`, `Cookie`, `Session`, any header not on the allow-list | `[REDACTED]` |
//! | `Command` header / `command` field | the command with URL passwords, `NAME=value` of secret-looking names, `--password value` and known token shapes redacted ([`redact_command`]) |
//! | query and form fields | the value when the name is on the allow-list of known-harmless Convox options and not secret-looking; otherwise `[REDACTED]` |
//!
//! Values we do show still go through [`redact_value`], which removes URL
//! passwords, gateway tokens, JWTs, AWS access key ids, `Basic`/`Bearer`
//! credentials and private-key blocks. The reply of `POST /system/jwt/token`
//! (and every route with `reply_has_secrets`) must never be recorded; the
//! [`Scrubber`] removes known secrets (the rack token, the presented
//! credential) from any text, such as an upstream error message.
//!
//! In `redact/`: `request.rs` (the parameters of `proxy.request` and the
//! request line's query and headers), `keys.rs` (maps recorded as their keys:
//! env, parameters, build args), `text.rs` (commands and secrets known by
//! their shape), `scrubber.rs` (known secrets in their encodings).

mod keys;
mod request;
mod scrubber;
mod text;

pub use keys::{env_change, env_keys, EnvChange};
pub use request::{redact_headers, redact_query, request_params};
pub use scrubber::{Scrubber, MIN_SCRUBBED_LEN};
pub use text::{redact_command, redact_value};

pub const REDACTED: &str = "[REDACTED]";

/// Parts of a name that mark it as secret (case-insensitive substrings).
const SECRET_NAME_PARTS: &[&str] = &[
    "secret",
    "token",
    "password",
    "passwd",
    "pass",
    "key",
    "auth",
    "cookie",
    "session",
    "credential",
    "cred",
    "private",
    "bearer",
    "jwt",
    "dsn",
    "signature",
    "salt",
    "otp",
];

/// Whole words (split on anything not a letter or digit) that mark a name as secret.
const SECRET_NAME_WORDS: &[&str] = &["pw", "pwd", "sig"];

/// Does this name (a field, header, query or env name) look like it holds a secret?
pub fn is_secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_NAME_PARTS.iter().any(|p| lower.contains(p))
        || lower
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| SECRET_NAME_WORDS.contains(&w))
}

#[cfg(test)]
mod tests;
