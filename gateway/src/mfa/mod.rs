//! Second factors (`docs/mfa.md`): enrolment, verification, the level each
//! permission needs, and the keys that protect MFA secrets at rest.
//!
//! - [`verify`]: checking a code (TOTP, YubiKey OTP, backup code) and recording
//!   every success and failure; the lock after repeated failures.
//! - [`require`]: what a caller must prove before a permission is used
//!   (sign-in verification, enrolment, step-up, proof on the request).
//! - [`methods`]: enrolling, renaming and removing methods; the preference.
//! - [`routes`]: `/api/v1/auth/mfa/*` and the admin's reset and unlock.
//! - [`totp`]: RFC 6238 codes (totp-rs), enrolment secret/URL/QR, one use per step.
//! - [`webauthn`]: the ceremonies; [`webauthn_store`]: their state and the
//!   credentials; [`webauthn_routes`]: `/api/v1/auth/mfa/{enroll/,}webauthn/*`.
//! - [`yubikey`]: YubiKey OTP bound to its user, validated with protocol 2.0.
//! - [`backup_codes`]: ten single-use codes, stored only as HMACs.
//! - [`secrets`]: the sealed operational table of TOTP seeds and YubiKey bindings.
//! - [`crypto`]: the AEAD key, the fingerprint key and the backup-code pepper,
//!   derived from `APP_SECRET_KEY`.
//!
//! The events are `events::catalogue::mfa`, the projections
//! `projections::mfa`, the level of each permission `decision::mfa`.

pub mod backup_codes;
pub mod crypto;
pub mod methods;
pub mod require;
pub mod routes;
pub mod secrets;
pub mod totp;
pub mod verify;
pub mod webauthn;
pub mod webauthn_routes;
pub mod webauthn_store;
pub mod yubikey;

pub use crypto::{MfaKeyError, MfaKeys, Sealed};

/// What MFA needs at run time, built once at start.
pub struct Mfa {
    /// `None` without `APP_SECRET_KEY` (dev mode only): enrolment and verification refuse.
    pub keys: Option<MfaKeys>,
    /// `None` without `YUBICO_CLIENT_ID` / `YUBICO_SECRET_KEY`: YubiKey OTP is off.
    pub yubico: Option<yubikey::Validator>,
}

impl Mfa {
    pub fn new(settings: &crate::settings::Settings) -> Mfa {
        Mfa {
            keys: MfaKeys::from_app_secret(settings.server.app_secret_key.as_ref()),
            yubico: yubikey::Validator::new(&settings.mfa.yubico),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every permission string the gateway's own code names (the JSON API's
    /// `caller.authorize(..)` constants, the archive's export, ...) has an MFA
    /// level; the rack routes are walked in `decision::mfa`'s tests.
    #[test]
    fn every_permission_the_gateway_names_has_a_level() {
        fn walk(dir: &Path, out: &mut Vec<(String, String)>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for literal in text.split('"').skip(1).step_by(2) {
                        let parts: Vec<&str> = literal.split(':').collect();
                        let is_permission = parts.len() == 3
                            && matches!(parts[0], "convox" | "gateway" | "auth" | "security")
                            && parts[1..].iter().all(|p| {
                                !p.is_empty()
                                    && p.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                            });
                        if is_permission {
                            out.push((path.display().to_string(), literal.to_owned()));
                        }
                    }
                }
            }
        }
        let mut found = Vec::new();
        walk(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut found,
        );
        let names: Vec<&str> = found.iter().map(|(_, p)| p.as_str()).collect();
        for expected in [
            "gateway:user:create",
            "gateway:api_token:delete",
            "gateway:audit_log:read",
        ] {
            assert!(
                names.contains(&expected),
                "the walk did not find {expected}"
            );
        }
        let missing: Vec<&(String, String)> = found
            .iter()
            .filter(|(_, p)| decision::mfa::level_of(p).is_err())
            .collect();
        assert!(
            missing.is_empty(),
            "permissions without an MFA level: {missing:?}"
        );
    }
}
