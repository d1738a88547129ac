//! The keys of the MFA secrets, all derived with HKDF-SHA256 from
//! `APP_SECRET_KEY` (one derivation per purpose, so no key serves two):
//!
//! - the AEAD key (XChaCha20-Poly1305) that seals the secrets of migration
//!   0007 (TOTP seeds, YubiKey bindings, WebAuthn credentials);
//! - the fingerprint key: a method's keyed fingerprint in events, and the
//!   unique lookup values (a credential id, a YubiKey public id);
//! - the backup-code pepper: backup codes are stored only as
//!   HMAC-SHA256 under it.
//!
//! Without `APP_SECRET_KEY` (allowed in dev mode only) there are no keys:
//! enrolment and verification refuse with [`MfaKeyError`] rather than seal
//! secrets under a key that dies with the process.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Bumping it makes every sealed secret unreadable: never without a migration.
const SALT: &[u8] = b"rack-gateway mfa v1";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MfaKeyError {
    #[error(
        "APP_SECRET_KEY is not set: MFA secrets cannot be stored or checked (set APP_SECRET_KEY)"
    )]
    NoKey,
    #[error(
        "a stored MFA secret could not be opened (APP_SECRET_KEY changed, or the row was altered)"
    )]
    Unsealed,
    #[error("the operating system's random source failed")]
    Random,
}

/// Not `Debug`, not `Clone` into logs: key material.
pub struct MfaKeys {
    aead: XChaCha20Poly1305,
    fingerprint: [u8; 32],
    backup_pepper: [u8; 32],
}

/// A sealed secret: what the operational table stores.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl MfaKeys {
    /// The keys, or `None` without `APP_SECRET_KEY`.
    pub fn from_app_secret(key: Option<&SecretString>) -> Option<MfaKeys> {
        let key = key?;
        let hk = Hkdf::<Sha256>::new(Some(SALT), key.expose_secret().as_bytes());
        let derive = |info: &[u8]| {
            let mut out = [0u8; 32];
            // 32 bytes is far below HKDF-SHA256's limit (255 × 32): cannot fail.
            hk.expand(info, &mut out).ok()?;
            Some(out)
        };
        let aead_key = derive(b"mfa secrets aead")?;
        Some(MfaKeys {
            aead: XChaCha20Poly1305::new((&aead_key).into()),
            fingerprint: derive(b"mfa fingerprint")?,
            backup_pepper: derive(b"mfa backup-code pepper")?,
        })
    }

    /// Seal `plaintext`, bound to `aad` (the row it belongs to).
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, MfaKeyError> {
        let mut nonce = [0u8; 24];
        getrandom::getrandom(&mut nonce).map_err(|_| MfaKeyError::Random)?;
        let ciphertext = self
            .aead
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| MfaKeyError::Unsealed)?;
        Ok(Sealed {
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// Open a sealed secret; any change to it, its nonce or its row refuses.
    pub fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<Vec<u8>, MfaKeyError> {
        if sealed.nonce.len() != 24 {
            return Err(MfaKeyError::Unsealed);
        }
        self.aead
            .decrypt(
                XNonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad,
                },
            )
            .map_err(|_| MfaKeyError::Unsealed)
    }

    /// The keyed fingerprint of a secret or credential id, as events carry it
    /// (16 hex digits: enough to tell methods apart, useless for guessing).
    pub fn fingerprint(&self, domain: &str, material: &[u8]) -> String {
        let mac = hmac(&self.fingerprint, &[domain.as_bytes(), b"\0", material]);
        hex::encode(&mac[..8])
    }

    /// A full-length keyed value for unique lookups (credential ids, YubiKey public ids).
    pub fn lookup(&self, domain: &str, material: &[u8]) -> String {
        hex::encode(hmac(
            &self.fingerprint,
            &[b"lookup\0", domain.as_bytes(), b"\0", material],
        ))
    }

    /// A backup code's stored form: hex HMAC-SHA256 under the pepper.
    pub fn backup_code_hmac(&self, code: &str) -> String {
        hex::encode(hmac(&self.backup_pepper, &[code.as_bytes()]))
    }

    /// Whether `code` is the one stored as `stored_hmac`, in constant time.
    pub fn backup_code_matches(&self, code: &str, stored_hmac: &str) -> bool {
        let computed = self.backup_code_hmac(code);
        computed.as_bytes().ct_eq(stored_hmac.as_bytes()).into()
    }
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length: `new_from_slice` cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &str) -> MfaKeys {
        MfaKeys::from_app_secret(Some(&SecretString::from(secret.to_owned()))).unwrap()
    }

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_row() {
        let k = keys("one");
        let sealed = k.seal(b"JBSWY3DPEHPK3PXP", b"row-1").unwrap();
        assert_ne!(sealed.ciphertext, b"JBSWY3DPEHPK3PXP");
        assert_eq!(k.open(&sealed, b"row-1").unwrap(), b"JBSWY3DPEHPK3PXP");
        assert_eq!(k.open(&sealed, b"row-2"), Err(MfaKeyError::Unsealed));
        assert_eq!(
            keys("two").open(&sealed, b"row-1"),
            Err(MfaKeyError::Unsealed)
        );
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert_eq!(k.open(&tampered, b"row-1"), Err(MfaKeyError::Unsealed));
        // Fresh nonce each time.
        assert_ne!(
            k.seal(b"x", b"r").unwrap().nonce,
            k.seal(b"x", b"r").unwrap().nonce
        );
        assert!(MfaKeys::from_app_secret(None).is_none());
    }

    #[test]
    fn fingerprints_and_peppers_are_keyed_and_separate() {
        let (a, b) = (keys("one"), keys("two"));
        assert_eq!(a.fingerprint("totp", b"seed").len(), 16);
        assert_eq!(
            a.fingerprint("totp", b"seed"),
            a.fingerprint("totp", b"seed")
        );
        assert_ne!(
            a.fingerprint("totp", b"seed"),
            b.fingerprint("totp", b"seed")
        );
        assert_ne!(
            a.fingerprint("totp", b"seed"),
            a.fingerprint("yubikey", b"seed")
        );
        let h = a.backup_code_hmac("0123456789AB");
        assert_eq!(h.len(), 64);
        assert!(a.backup_code_matches("0123456789AB", &h));
        assert!(!a.backup_code_matches("0123456789AC", &h));
        assert!(!b.backup_code_matches("0123456789AB", &h));
        assert!(!h.contains("0123456789AB"));
    }
}
