//! CSRF tokens for cookie-authenticated browser requests (README "Signing in"):
//! `base64(HMAC-SHA256(APP_SECRET_KEY, "csrf|" + session token))`, sent in
//! `X-CSRF-Token` (or the `csrf_token` field of a plain HTML form) on every
//! state-changing request that a `session_token` cookie authenticates.
//!
//! Derived, not stored: any replica with the key computes the same token, and
//! it dies with the session. A cross-site page cannot read it (it is only in
//! our own pages), so it cannot forge a request the cookie would carry.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub const HEADER: &str = "x-csrf-token";
/// The form field a plain HTML form (no JavaScript) carries the token in.
pub const FORM_FIELD: &str = "csrf_token";

/// The HMAC key. Not `Debug`: it must never reach a log.
pub struct CsrfKey(Vec<u8>);

impl CsrfKey {
    /// `APP_SECRET_KEY`, or (settings allow this only in dev mode) a random
    /// per-process key: tokens then break on restart and across replicas.
    pub fn new(app_secret_key: Option<&SecretString>) -> Result<CsrfKey, getrandom::Error> {
        match app_secret_key {
            Some(key) => Ok(CsrfKey(key.expose_secret().as_bytes().to_vec())),
            None => {
                tracing::warn!(
                    "APP_SECRET_KEY is not set: CSRF tokens use a per-process random key"
                );
                let mut bytes = vec![0u8; 32];
                getrandom::getrandom(&mut bytes)?;
                Ok(CsrfKey(bytes))
            }
        }
    }

    /// The CSRF token that goes with a session token.
    pub fn token(&self, session_token: &str) -> String {
        STANDARD.encode(self.mac(session_token))
    }

    /// Whether `presented` is the token of `session_token`, compared in constant time.
    pub fn verify(&self, session_token: &str, presented: &str) -> bool {
        let Ok(decoded) = STANDARD.decode(presented.trim()) else {
            return false;
        };
        let expected = self.mac(session_token);
        decoded.len() == expected.len() && bool::from(decoded.ct_eq(&expected))
    }

    fn mac(&self, session_token: &str) -> Vec<u8> {
        // HMAC takes keys of any length; new_from_slice cannot fail for it.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => return Vec::new(),
        };
        mac.update(b"csrf|");
        mac.update(session_token.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_the_documented_hmac_and_verifies_in_constant_time() {
        let key = CsrfKey::new(Some(&SecretString::from("k"))).unwrap();
        let token = key.token("rgw_sess_abc");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"k").unwrap();
        mac.update(b"csrf|rgw_sess_abc");
        assert_eq!(token, STANDARD.encode(mac.finalize().into_bytes()));
        assert!(key.verify("rgw_sess_abc", &token));
        assert!(!key.verify("rgw_sess_abd", &token));
        assert!(!key.verify("rgw_sess_abc", ""));
        assert!(!key.verify("rgw_sess_abc", "not base64!"));
        assert!(!key.verify("rgw_sess_abc", &STANDARD.encode([0u8; 32])));
        let other = CsrfKey::new(Some(&SecretString::from("other"))).unwrap();
        assert!(!other.verify("rgw_sess_abc", &token));
    }
}
