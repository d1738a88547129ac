//! The MFA routes under `/api/v1/auth/mfa/` (docs/mfa.md), as the CLI calls
//! them with its Bearer session. Types that hold a secret (a TOTP seed, backup
//! codes) have no `Debug`, so they cannot end up in a log line by accident.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::{ApiError, GatewayClient};

/// `GET status`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MfaStatus {
    #[serde(default)]
    pub enrolled: bool,
    #[serde(default)]
    pub methods: Vec<MfaMethod>,
    /// The id of the person's preferred method.
    #[serde(default, deserialize_with = "id_text")]
    pub preferred_method: Option<String>,
    #[serde(default)]
    pub mfa_verified: bool,
    #[serde(default)]
    pub mfa_method: Option<String>,
    #[serde(default)]
    pub recent_step_up_at: Option<String>,
    #[serde(default)]
    pub recent_step_up_expires_at: Option<String>,
    #[serde(default)]
    pub step_up_window_seconds: Option<i64>,
    #[serde(default)]
    pub backup_codes_remaining: Option<u32>,
    #[serde(default)]
    pub locked: bool,
    #[serde(default)]
    pub enrollment_required: bool,
    #[serde(default)]
    pub mfa_required: bool,
}

impl MfaStatus {
    /// When the step-up window of this session ends; `None` when there is none
    /// (or the gateway sent a time this CLI cannot read, which counts as none).
    pub fn step_up_expires_at(&self) -> Option<DateTime<Utc>> {
        self.recent_step_up_expires_at
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    }
}

/// One enrolled method, as `status` lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct MfaMethod {
    #[serde(deserialize_with = "id_text_required")]
    pub id: String,
    /// `totp`, `webauthn` or `yubikey`.
    pub kind: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub cli_compatible: bool,
    #[serde(default)]
    pub disabled: bool,
    /// `false` while an enrolment is started but not confirmed.
    #[serde(default)]
    pub confirmed: Option<bool>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub last_used_at: Option<String>,
}

/// `POST enroll/totp/start`: holds the TOTP seed, so no `Debug`.
#[derive(Clone, Deserialize)]
pub struct TotpEnrollment {
    #[serde(deserialize_with = "id_text_required")]
    pub method_id: String,
    pub secret: String,
    pub otpauth_url: String,
    #[serde(default)]
    pub qr_svg: Option<String>,
}

/// `POST backup-codes/regenerate`: the new codes, shown once. No `Debug`.
#[derive(Clone, Deserialize)]
pub struct BackupCodes {
    pub codes: Vec<String>,
}

/// `POST webauthn/browser/start`: a page bound to this CLI session that runs
/// the WebAuthn assertion in the browser.
#[derive(Debug, Clone, Deserialize)]
pub struct BrowserChallenge {
    pub url: String,
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// What a verification is for, as the browser page is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BrowserPurpose {
    /// Finish a sign-in that is waiting for MFA.
    Login,
    /// Open the step-up window.
    StepUp,
}

#[derive(Serialize)]
struct CodeBody<'a> {
    code: &'a str,
}

#[derive(Serialize)]
struct StartTotp<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<&'a str>,
}

#[derive(Serialize)]
struct ConfirmTotp<'a> {
    method_id: &'a str,
    code: &'a str,
}

#[derive(Serialize)]
struct BrowserStart {
    purpose: BrowserPurpose,
}

const BASE: &str = "/api/v1/auth/mfa";

impl GatewayClient {
    pub async fn mfa_status(&self) -> Result<MfaStatus, ApiError> {
        self.json::<(), _>(Method::GET, &format!("{BASE}/status"), None)
            .await
    }

    /// `POST verify {code}`: a TOTP, YubiKey OTP or backup code. Completes a
    /// sign-in waiting for MFA and opens the step-up window.
    pub async fn mfa_verify(&self, code: &str) -> Result<Value, ApiError> {
        self.json(
            Method::POST,
            &format!("{BASE}/verify"),
            Some(&CodeBody { code }),
        )
        .await
    }

    pub async fn totp_enroll_start(&self, label: Option<&str>) -> Result<TotpEnrollment, ApiError> {
        self.json(
            Method::POST,
            &format!("{BASE}/enroll/totp/start"),
            Some(&StartTotp { label }),
        )
        .await
    }

    pub async fn totp_enroll_confirm(
        &self,
        method_id: &str,
        code: &str,
    ) -> Result<Value, ApiError> {
        self.json(
            Method::POST,
            &format!("{BASE}/enroll/totp/confirm"),
            Some(&ConfirmTotp { method_id, code }),
        )
        .await
    }

    pub async fn regenerate_backup_codes(&self) -> Result<BackupCodes, ApiError> {
        self.json::<(), _>(
            Method::POST,
            &format!("{BASE}/backup-codes/regenerate"),
            None,
        )
        .await
    }

    pub async fn webauthn_browser_start(
        &self,
        purpose: BrowserPurpose,
    ) -> Result<BrowserChallenge, ApiError> {
        self.json(
            Method::POST,
            &format!("{BASE}/webauthn/browser/start"),
            Some(&BrowserStart { purpose }),
        )
        .await
    }
}

/// Ids may come as strings (UUIDs) or numbers; the CLI only compares and prints them.
fn id_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text),
        Some(other) => Some(other.to_string()),
    })
}

fn id_text_required<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    id_text(deserializer)?.ok_or_else(|| serde::de::Error::custom("missing id"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_reads_the_documented_shape() {
        let status: MfaStatus = serde_json::from_value(json!({
            "enrolled": true,
            "methods": [{"id": "6f1c", "kind": "totp", "label": "phone", "cli_compatible": true,
                         "disabled": false, "created_at": "2026-12-01T00:00:00Z", "last_used_at": null}],
            "preferred_method": null,
            "mfa_verified": true, "mfa_method": "totp",
            "recent_step_up_at": "2026-12-03T14:00:00Z",
            "recent_step_up_expires_at": "2026-12-03T14:10:00Z",
            "step_up_window_seconds": 600, "backup_codes_remaining": 9, "locked": false,
            "enrollment_required": false, "mfa_required": false
        }))
        .unwrap();
        assert!(status.enrolled && status.mfa_verified);
        assert_eq!(status.methods[0].kind, "totp");
        assert_eq!(status.preferred_method, None);
        assert_eq!(
            status.step_up_expires_at().unwrap().to_rfc3339(),
            "2026-12-03T14:10:00+00:00"
        );
        assert_eq!(status.backup_codes_remaining, Some(9));
    }

    #[test]
    fn unreadable_step_up_times_count_as_no_window() {
        let status = MfaStatus {
            recent_step_up_expires_at: Some("soon".into()),
            ..MfaStatus::default()
        };
        assert_eq!(status.step_up_expires_at(), None);
    }

    #[test]
    fn numeric_ids_are_read_as_text() {
        let method: MfaMethod =
            serde_json::from_value(json!({"id": 42, "kind": "webauthn"})).unwrap();
        assert_eq!(method.id, "42");
        let status: MfaStatus = serde_json::from_value(json!({"preferred_method": 42})).unwrap();
        assert_eq!(status.preferred_method.as_deref(), Some("42"));
    }

    #[test]
    fn browser_purposes_are_spelled_as_the_gateway_expects() {
        assert_eq!(
            serde_json::to_value(BrowserStart {
                purpose: BrowserPurpose::StepUp
            })
            .unwrap(),
            json!({"purpose": "step_up"})
        );
        assert_eq!(
            serde_json::to_value(BrowserPurpose::Login).unwrap(),
            json!("login")
        );
    }
}
