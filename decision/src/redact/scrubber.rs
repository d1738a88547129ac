//! Known secrets (the rack token, the presented credential) removed from any
//! text in the forms they travel in.

use base64::Engine;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::{redact_value, REDACTED};

/// Characters escaped in URL user-info (what the CLI does to a RACK_URL password).
pub(super) const USERINFO: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Removes known secrets — the rack token, the credential a request presented —
/// from any text, in the forms they travel in (as is, percent-encoded,
/// base64, and inside a Basic header), then applies [`redact_value`].
#[derive(Clone, Default)]
pub struct Scrubber {
    needles: Vec<String>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scrubber({} needles)", self.needles.len())
    }
}

/// Shorter secrets are not scrubbed: replacing two or three characters
/// everywhere would destroy messages and hide nothing.
pub const MIN_SCRUBBED_LEN: usize = 4;

impl Scrubber {
    pub fn new() -> Scrubber {
        Scrubber::default()
    }

    /// Add a secret (and its percent-encoded and base64 forms).
    pub fn add(&mut self, secret: &str) -> &mut Scrubber {
        if secret.len() < MIN_SCRUBBED_LEN {
            return self;
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        self.push(secret.to_owned());
        self.push(utf8_percent_encode(secret, USERINFO).to_string());
        self.push(b64.encode(secret));
        self.push(b64url.encode(secret));
        self
    }

    /// Add Basic credentials: the password and the header's base64 of `user:password`.
    pub fn add_basic(&mut self, username: &str, password: &str) -> &mut Scrubber {
        self.add(password);
        let b64 = base64::engine::general_purpose::STANDARD;
        self.push(b64.encode(format!("{username}:{password}")));
        self.push(b64.encode(format!(
            "{username}:{}",
            utf8_percent_encode(password, USERINFO)
        )));
        self
    }

    /// A scrubber with these secrets added.
    pub fn with(secrets: &[&str]) -> Scrubber {
        let mut s = Scrubber::new();
        for secret in secrets {
            s.add(secret);
        }
        s
    }

    fn push(&mut self, needle: String) {
        if needle.len() >= MIN_SCRUBBED_LEN && !self.needles.contains(&needle) {
            self.needles.push(needle);
            // Longest first, so a secret's encodings are not half-replaced.
            self.needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        }
    }

    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = out.replace(needle.as_str(), REDACTED);
            }
        }
        redact_value(&out)
    }
}
