//! Bearer secrets: `rgw_sess_` (sessions) and `rgw_token_` (API tokens) + the
//! base64url of 32 random bytes (decision 2). Only the SHA-256 is stored; the
//! prefix tells which kind a presented secret claims to be.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const SESSION_PREFIX: &str = "rgw_sess_";
pub const API_TOKEN_PREFIX: &str = "rgw_token_";

/// 256 bits from the operating system's CSPRNG.
const SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    Session,
    ApiToken,
}

/// A freshly generated secret: shown once, then only its hash exists.
pub struct NewSecret {
    pub secret: String,
    pub sha256: String,
}

pub fn generate(kind: SecretKind) -> Result<NewSecret, getrandom::Error> {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::getrandom(&mut bytes)?;
    let prefix = match kind {
        SecretKind::Session => SESSION_PREFIX,
        SecretKind::ApiToken => API_TOKEN_PREFIX,
    };
    let secret = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes));
    let sha256 = sha256_hex(&secret);
    Ok(NewSecret { secret, sha256 })
}

/// The stored form of a secret.
pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Which kind a presented secret claims to be, from its prefix and shape; `None`
/// for anything that is not one of ours (refused without a database lookup).
pub fn classify(presented: &str) -> Option<SecretKind> {
    let (kind, body) = if let Some(body) = presented.strip_prefix(SESSION_PREFIX) {
        (SecretKind::Session, body)
    } else if let Some(body) = presented.strip_prefix(API_TOKEN_PREFIX) {
        (SecretKind::ApiToken, body)
    } else {
        return None;
    };
    let decoded = URL_SAFE_NO_PAD.decode(body).ok()?;
    (decoded.len() == SECRET_BYTES).then_some(kind)
}

/// Whether `text` has the stored form of a hash: 64 lower-case hex digits.
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Compare two stored hashes without leaking where they first differ.
pub fn hashes_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_url_safe_and_256_bits() {
        let s = generate(SecretKind::ApiToken).unwrap();
        assert!(s.secret.starts_with("rgw_token_"));
        assert_eq!(s.secret.len(), "rgw_token_".len() + 43);
        assert!(s
            .secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
        assert_eq!(s.sha256, sha256_hex(&s.secret));
        assert_eq!(classify(&s.secret), Some(SecretKind::ApiToken));
        let t = generate(SecretKind::Session).unwrap();
        assert!(t.secret.starts_with("rgw_sess_"));
        assert_eq!(classify(&t.secret), Some(SecretKind::Session));
        assert_ne!(s.secret, generate(SecretKind::ApiToken).unwrap().secret);
    }

    #[test]
    fn classify_refuses_foreign_and_malformed_secrets() {
        assert_eq!(classify("rgw_token_short"), None);
        assert_eq!(classify("rgw_abc"), None);
        assert_eq!(classify("hunter2"), None);
        assert_eq!(classify(&format!("rgw_sess_{}", "A".repeat(44))), None);
    }

    #[test]
    fn hash_comparison() {
        assert!(hashes_equal(&sha256_hex("a"), &sha256_hex("a")));
        assert!(!hashes_equal(&sha256_hex("a"), &sha256_hex("b")));
        assert!(!hashes_equal("ab", "abc"));
    }
}
