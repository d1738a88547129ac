//! Second factors (`mfa.*`), the lock after repeated failures (`user.locked`,
//! `user.unlocked`) and `security.alert`.
//!
//! **No payload carries a secret**, not even encrypted: never a TOTP seed or
//! code, a YubiKey OTP, a backup code, a WebAuthn private key or assertion, a
//! trusted-device cookie. A method is named by its id, kind, label and a
//! *keyed fingerprint* (an HMAC under a key derived from `APP_SECRET_KEY`, so
//! the archive cannot be used to test guesses). Backup codes enter only as
//! HMAC-SHA256 under a pepper; trusted-device cookies only as SHA-256.
//!
//! Vocabulary shared by the payloads:
//! - `kind`: `totp`, `webauthn`, `yubikey` (methods); a verification may also
//!   be by `backup_code` or `trusted_device`.
//! - `purpose`: `login` (completing a sign-in), `step_up` (opening the step-up
//!   window, or proof on one request), `approval` (approving a deploy).
//! - `channel`: `web`, `cli` (the JSON API) or `proxy` (the rack proxy).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `mfa.method.enrolled`: a confirmed method (TOTP after its first code,
/// WebAuthn after registration, YubiKey after its first OTP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaMethodEnrolled {
    pub method_id: Uuid,
    pub user_id: Uuid,
    pub email: String,
    /// `totp`, `webauthn` or `yubikey`.
    pub kind: String,
    pub label: String,
    /// Whether the `rack-gateway` CLI can use it (TOTP and YubiKey: always).
    pub cli_compatible: bool,
    /// Keyed fingerprint of the method's secret or credential id (hex).
    pub fingerprint: String,
}

/// `mfa.method.renamed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaMethodRenamed {
    pub method_id: Uuid,
    pub user_id: Uuid,
    pub label: String,
    pub previous_label: String,
}

/// `mfa.method.removed`: by its owner, or reset by an admin (the actor says who).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaMethodRemoved {
    pub method_id: Uuid,
    pub user_id: Uuid,
    pub kind: String,
    pub label: String,
    /// `owner` or `admin_reset`.
    pub reason: String,
}

/// `mfa.preferred_method.set`: the method the CLI and pages offer first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaPreferredMethodSet {
    pub user_id: Uuid,
    /// `null` clears the preference.
    pub method_id: Option<Uuid>,
}

/// `mfa.verification.succeeded`: a second factor checked. On a session it
/// marks the session verified (`verifies_session`) and/or opens its step-up
/// window (`opens_step_up`, at this event's `ts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaVerificationSucceeded {
    pub user_id: Uuid,
    pub email: String,
    /// The session verified; `null` when none (e.g. a sign-in not yet completed).
    pub session_id: Option<Uuid>,
    /// The method used; `null` for a backup code or a trusted device.
    pub method_id: Option<Uuid>,
    pub kind: String,
    pub purpose: String,
    pub channel: String,
    /// The device, as the session knows it (a CLI's device name, a browser's user agent).
    pub device: Option<String>,
    pub verifies_session: bool,
    pub opens_step_up: bool,
}

/// `mfa.verification.failed`: a code that did not verify, or a verification
/// refused (locked user, no method). Never the code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaVerificationFailed {
    pub user_id: Uuid,
    pub email: String,
    pub session_id: Option<Uuid>,
    /// The method tried, when one was identified.
    pub method_id: Option<Uuid>,
    /// `totp`, `webauthn`, `yubikey`, `backup_code`, or `null` when the code fit none.
    pub kind: Option<String>,
    pub purpose: String,
    pub channel: String,
    pub device: Option<String>,
    /// Stable: `invalid_code`, `replayed_code`, `no_method`, `malformed_code`, `locked`,
    /// `credential_disabled`, `counter_regression`, `user_verification_missing`, `ceremony_invalid`.
    pub reason: String,
    /// Failures of this user in the last 15 minutes, this one included.
    pub recent_failures: u32,
}

/// `mfa.backup_codes.generated`: a new set of 10 codes replaces any previous set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaBackupCodesGenerated {
    pub user_id: Uuid,
    pub set_id: Uuid,
    /// HMAC-SHA256 of each code under the backup-code pepper (hex), in order;
    /// the codes themselves are shown once and never stored.
    pub code_hmacs: Vec<String>,
}

/// `mfa.backup_code.used`: one code of the set consumed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaBackupCodeUsed {
    pub user_id: Uuid,
    pub set_id: Uuid,
    /// The code's position in its set (0-based).
    pub index: u32,
    /// Unused codes left in the set.
    pub remaining: u32,
    pub session_id: Option<Uuid>,
    pub purpose: String,
    pub channel: String,
}

/// `mfa.trusted_device.trusted`: this browser may skip the sign-in prompt until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaTrustedDeviceTrusted {
    pub device_id: Uuid,
    pub user_id: Uuid,
    /// hex SHA-256 of the device cookie (the cookie itself is never recorded).
    pub token_sha256: String,
    /// What the person or the browser called it (user agent).
    pub label: Option<String>,
    /// RFC 3339.
    pub expires_at: String,
}

/// `mfa.trusted_device.revoked`: by the user, an admin, or because it expired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaTrustedDeviceRevoked {
    pub device_id: Uuid,
    pub user_id: Uuid,
    /// `owner`, `admin`, `method_removed`.
    pub reason: String,
}

/// `mfa.webauthn.counter_regressed`: a credential presented a signature
/// counter not above the stored one (a possible clone); the credential is
/// disabled. Appended with a `security.alert`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaWebauthnCounterRegressed {
    pub method_id: Uuid,
    pub user_id: Uuid,
    pub stored_counter: u64,
    pub presented_counter: u64,
}

/// `user.locked`: MFA verification refused, the proxy and sign-in refuse, until an admin unlocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserLocked {
    pub user_id: Uuid,
    pub email: String,
    /// `mfa_failures` (or `admin`).
    pub reason: String,
    /// Failed MFA verifications in the window that led to the lock.
    pub failures: u32,
}

/// `user.unlocked`: by an admin (the actor).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserUnlocked {
    pub user_id: Uuid,
    pub email: String,
}

/// `security.alert`: something a security team must look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityAlert {
    /// Stable: `webauthn_counter_regression`, `user_locked`, ...
    pub alert: String,
    pub user_id: Option<Uuid>,
    pub email: Option<String>,
    pub method_id: Option<Uuid>,
    /// A sentence for people; never a secret.
    pub detail: String,
}
