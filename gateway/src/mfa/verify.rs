//! One place where a second factor is checked and its outcome recorded
//! (`docs/mfa.md`, "Verification"): a TOTP code, a YubiKey OTP or a backup
//! code ([`verify_code`]); checks made elsewhere (a WebAuthn assertion, a
//! trusted device) report through [`record_success`] and [`record_failure`].
//!
//! Every outcome is an event, appended before it takes effect:
//! `mfa.verification.succeeded` (which verifies the session and/or opens its
//! step-up window in the projection) or `mfa.verification.failed` — never
//! the code. Failures are counted per user (`mfa_failures`, migration 0007):
//! more than [`BURST_LIMIT`] in a minute are refused unchecked, and
//! `MFA_MAX_FAILURES` in [`FAILURE_WINDOW`] lock the user (`user.locked` with
//! a `security.alert`) until an admin unlocks them.

use chrono::Utc;
use events::catalogue::{
    MfaBackupCodeUsed, MfaVerificationFailed, MfaVerificationSucceeded, SecurityAlert, UserLocked,
};
use events::store::AppendError;
use events::Draft;
use uuid::Uuid;

use super::{backup_codes, secrets, totp, yubikey};
use crate::accounts::users::Requester;
use crate::settings::FAILURE_WINDOW;
use crate::state::AppState;

/// More failures than this in a minute are refused without checking the code.
pub const BURST_LIMIT: i64 = 5;

/// Why the factor is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Completing a sign-in.
    Login,
    /// Opening the step-up window, or proof on one request.
    StepUp,
    /// Approving a deploy.
    Approval,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Login => "login",
            Purpose::StepUp => "step_up",
            Purpose::Approval => "approval",
        }
    }
}

/// Where the factor came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Web,
    /// The JSON API (the `rack-gateway` CLI).
    Cli,
    /// The rack proxy (headers or the token suffix).
    Proxy,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Web => "web",
            Channel::Cli => "cli",
            Channel::Proxy => "proxy",
        }
    }
}

/// One verification: who, on which session, why, from where.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub user_id: Uuid,
    pub email: String,
    /// The session it verifies or steps up; `None` when there is none yet.
    pub session_id: Option<Uuid>,
    pub purpose: Purpose,
    pub channel: Channel,
    /// A CLI's device name or a browser's user agent.
    pub device: Option<String>,
    pub requester: Requester,
}

/// What a success does to the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effect {
    /// Marks the session verified for sign-in.
    pub verifies_session: bool,
    /// Opens the session's step-up window.
    pub opens_step_up: bool,
}

impl Effect {
    pub const SIGN_IN: Effect = Effect {
        verifies_session: true,
        opens_step_up: false,
    };
    pub const STEP_UP: Effect = Effect {
        verifies_session: true,
        opens_step_up: true,
    };
}

/// What verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Used {
    Method { id: Uuid, kind: &'static str },
    BackupCode,
    TrustedDevice,
}

impl Used {
    pub fn kind(self) -> &'static str {
        match self {
            Used::Method { kind, .. } => kind,
            Used::BackupCode => "backup_code",
            Used::TrustedDevice => "trusted_device",
        }
    }

    pub fn method_id(self) -> Option<Uuid> {
        match self {
            Used::Method { id, .. } => Some(id),
            _ => None,
        }
    }
}

/// Why a verification did not pass. Messages never carry the code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MfaRefusal {
    #[error(
        "this account is locked after repeated failed MFA verifications; an admin must unlock it"
    )]
    Locked,
    #[error("MFA not enrolled: enrol a method first (/app/mfa/enroll, or `rack-gateway mfa enroll totp`)")]
    NoMethod,
    #[error("too many failed MFA attempts; wait a minute and try again")]
    TooManyAttempts,
    #[error("{}", invalid_message(reason))]
    Invalid { reason: &'static str },
    #[error("APP_SECRET_KEY is not set: MFA secrets cannot be stored or checked")]
    NoKeys,
    #[error("the gateway cannot check or record this verification right now; nothing was changed, try again")]
    Unavailable,
}

impl MfaRefusal {
    /// Stable, for `X-Error-Reason` and tests.
    pub fn reason(&self) -> &'static str {
        match self {
            MfaRefusal::Locked => "user_locked",
            MfaRefusal::NoMethod => "mfa_not_enrolled",
            MfaRefusal::TooManyAttempts => "mfa_rate_limited",
            MfaRefusal::Invalid { reason } => reason,
            MfaRefusal::NoKeys => "mfa_unavailable",
            MfaRefusal::Unavailable => "unavailable",
        }
    }
}

fn invalid_message(reason: &str) -> &'static str {
    match reason {
        "replayed_code" => "this code was already used; wait for the next code",
        "malformed_code" => {
            "not an MFA code: expected a 6-digit TOTP code, a 44-character YubiKey OTP or a 12-character backup code"
        }
        "credential_disabled" => "this security key is disabled; use another method",
        "counter_regression" => {
            "this security key's signature counter went backwards (a possible clone); it is disabled"
        }
        "user_verification_missing" => {
            "the security key did not verify you (PIN or biometric required)"
        }
        "ceremony_invalid" => "the security-key ceremony is missing, expired or already used",
        "yubikey_unavailable" => "the YubiKey validation service did not answer; try a TOTP or backup code",
        _ => "the MFA code is not valid",
    }
}

impl From<AppendError> for MfaRefusal {
    fn from(error: AppendError) -> MfaRefusal {
        tracing::error!(error = %error, "audit append failed; MFA verification refused");
        MfaRefusal::Unavailable
    }
}

impl From<sqlx::Error> for MfaRefusal {
    fn from(error: sqlx::Error) -> MfaRefusal {
        tracing::error!(error = %error, "database error during MFA verification");
        MfaRefusal::Unavailable
    }
}

/// A code as typed: spaces and dashes dropped (backup codes are shown grouped).
pub fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect()
}

/// Check a TOTP code, YubiKey OTP or backup code of `attempt`'s user and
/// record the outcome.
pub async fn verify_code(
    state: &AppState,
    attempt: &Attempt,
    code: &str,
    effect: Effect,
) -> Result<Used, MfaRefusal> {
    let keys = state.mfa.keys.as_ref().ok_or(MfaRefusal::NoKeys)?;
    ensure_may_try(state, attempt).await?;
    let code = normalize_code(code);
    let (kind, outcome) = if totp::looks_like_code(&code) {
        ("totp", totp_check(state, keys, attempt, &code).await?)
    } else if yubico_otp::Otp::looks_like(&code) {
        (
            "yubikey",
            yubikey::check(state, keys, attempt.user_id, &code).await?,
        )
    } else if backup_codes::looks_like(&code) {
        let upper = code.to_ascii_uppercase();
        return backup_code(state, keys, attempt, &upper, effect).await;
    } else {
        return Err(record_failure(state, attempt, None, None, "malformed_code").await);
    };
    match outcome {
        Checked::Passed(method_id) => {
            let used = Used::Method {
                id: method_id,
                kind,
            };
            append_success(state, attempt, used, effect, Vec::new()).await?;
            Ok(used)
        }
        Checked::Failed { method_id, reason } => {
            Err(record_failure(state, attempt, Some(kind), method_id, reason).await)
        }
        Checked::NoMethod => {
            if has_any_factor(state, attempt.user_id).await? {
                Err(record_failure(state, attempt, Some(kind), None, "invalid_code").await)
            } else {
                Err(record_failure(state, attempt, Some(kind), None, "no_method").await)
            }
        }
    }
}

/// The outcome of checking a code against one kind of method.
pub(super) enum Checked {
    Passed(Uuid),
    Failed {
        method_id: Option<Uuid>,
        reason: &'static str,
    },
    /// The user has no usable method of that kind.
    NoMethod,
}

async fn totp_check(
    state: &AppState,
    keys: &super::MfaKeys,
    attempt: &Attempt,
    code: &str,
) -> Result<Checked, MfaRefusal> {
    let seeds = secrets::confirmed(state, keys, attempt.user_id, "totp").await?;
    if seeds.is_empty() {
        return Ok(Checked::NoMethod);
    }
    let now = u64::try_from(Utc::now().timestamp()).unwrap_or(0);
    for (method_id, seed) in &seeds {
        if let Some(step) = totp::matching_step(seed, code, now) {
            // Claimed per user, whichever method matched: one step, one use.
            return Ok(
                if totp::claim_step(&state.pool, attempt.user_id, step).await? {
                    Checked::Passed(*method_id)
                } else {
                    Checked::Failed {
                        method_id: Some(*method_id),
                        reason: "replayed_code",
                    }
                },
            );
        }
    }
    Ok(Checked::Failed {
        method_id: None,
        reason: "invalid_code",
    })
}

async fn backup_code(
    state: &AppState,
    keys: &super::MfaKeys,
    attempt: &Attempt,
    code: &str,
    effect: Effect,
) -> Result<Used, MfaRefusal> {
    let unused = projections::mfa::unused_backup_codes(&state.pool, attempt.user_id).await?;
    if unused.is_empty() {
        let reason = if has_any_factor(state, attempt.user_id).await? {
            "invalid_code"
        } else {
            "no_method"
        };
        return Err(record_failure(state, attempt, Some("backup_code"), None, reason).await);
    }
    // Compare with every code (constant time each), so timing says nothing of which matched.
    let mut matched = None;
    for (set_id, index, hmac) in &unused {
        if keys.backup_code_matches(code, hmac) && matched.is_none() {
            matched = Some((*set_id, *index));
        }
    }
    let Some((set_id, index)) = matched else {
        return Err(
            record_failure(state, attempt, Some("backup_code"), None, "invalid_code").await,
        );
    };
    let used = MfaBackupCodeUsed {
        user_id: attempt.user_id,
        set_id,
        index: u32::try_from(index).unwrap_or(0),
        remaining: u32::try_from(unused.len().saturating_sub(1)).unwrap_or(0),
        session_id: attempt.session_id,
        purpose: attempt.purpose.as_str().to_owned(),
        channel: attempt.channel.as_str().to_owned(),
    };
    let extra = vec![attempt.requester.draft(&used)];
    match append_success(state, attempt, Used::BackupCode, effect, extra).await {
        Ok(()) => Ok(Used::BackupCode),
        // Two uses of one code at once: the projection refuses the second.
        Err(AppendError::Rejected(_)) => {
            Err(record_failure(state, attempt, Some("backup_code"), None, "replayed_code").await)
        }
        Err(e) => Err(e.into()),
    }
}

/// A check done elsewhere passed (a WebAuthn assertion, a trusted device):
/// refuse a locked user, else record it with its effect.
pub async fn record_success(
    state: &AppState,
    attempt: &Attempt,
    used: Used,
    effect: Effect,
) -> Result<(), MfaRefusal> {
    ensure_not_locked(state, attempt).await?;
    append_success(state, attempt, used, effect, Vec::new()).await?;
    Ok(())
}

async fn append_success(
    state: &AppState,
    attempt: &Attempt,
    used: Used,
    effect: Effect,
    extra: Vec<Draft>,
) -> Result<(), AppendError> {
    let succeeded = MfaVerificationSucceeded {
        user_id: attempt.user_id,
        email: attempt.email.clone(),
        session_id: attempt.session_id,
        method_id: used.method_id(),
        kind: used.kind().to_owned(),
        purpose: attempt.purpose.as_str().to_owned(),
        channel: attempt.channel.as_str().to_owned(),
        device: attempt.device.clone(),
        verifies_session: effect.verifies_session && attempt.session_id.is_some(),
        opens_step_up: effect.opens_step_up && attempt.session_id.is_some(),
    };
    let mut drafts = vec![attempt.requester.draft(&succeeded)];
    drafts.extend(extra);
    state.appender.append_all(drafts).await?;
    Ok(())
}

/// Count a failure, record it (never the code) and lock the user at
/// `MFA_MAX_FAILURES`. Returns the refusal to give the caller.
pub async fn record_failure(
    state: &AppState,
    attempt: &Attempt,
    kind: Option<&str>,
    method_id: Option<Uuid>,
    reason: &'static str,
) -> MfaRefusal {
    match try_record_failure(state, attempt, kind, method_id, reason).await {
        Ok(refusal) => refusal,
        Err(refusal) => refusal,
    }
}

async fn try_record_failure(
    state: &AppState,
    attempt: &Attempt,
    kind: Option<&str>,
    method_id: Option<Uuid>,
    reason: &'static str,
) -> Result<MfaRefusal, MfaRefusal> {
    let window = i64::try_from(FAILURE_WINDOW.as_secs()).unwrap_or(900);
    let before: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM mfa_failures WHERE user_id = $1 AND at > now() - make_interval(secs => $2)",
    )
    .bind(attempt.user_id)
    .bind(window as f64)
    .fetch_one(&state.pool)
    .await?;
    let recent = before + 1;
    let failed = MfaVerificationFailed {
        user_id: attempt.user_id,
        email: attempt.email.clone(),
        session_id: attempt.session_id,
        method_id,
        kind: kind.map(str::to_owned),
        purpose: attempt.purpose.as_str().to_owned(),
        channel: attempt.channel.as_str().to_owned(),
        device: attempt.device.clone(),
        reason: reason.to_owned(),
        recent_failures: u32::try_from(recent).unwrap_or(u32::MAX),
    };
    let mut drafts = vec![attempt.requester.draft(&failed)];
    let max = i64::from(state.settings.mfa.max_failures);
    let already_locked = is_locked(state, attempt.user_id).await?;
    let locks = recent >= max && !already_locked;
    if locks {
        drafts.push(attempt.requester.draft(&UserLocked {
            user_id: attempt.user_id,
            email: attempt.email.clone(),
            reason: "mfa_failures".into(),
            failures: u32::try_from(recent).unwrap_or(u32::MAX),
        }));
        drafts.push(attempt.requester.draft(&SecurityAlert {
            alert: "user_locked".into(),
            user_id: Some(attempt.user_id),
            email: Some(attempt.email.clone()),
            method_id: None,
            detail: format!(
                "{} was locked after {recent} failed MFA verifications in {} minutes",
                attempt.email,
                window / 60
            ),
        }));
    }
    state.appender.append_all(drafts).await?;
    sqlx::query("INSERT INTO mfa_failures (user_id) VALUES ($1)")
        .bind(attempt.user_id)
        .execute(&state.pool)
        .await?;
    Ok(match reason {
        _ if locks || already_locked => MfaRefusal::Locked,
        "no_method" => MfaRefusal::NoMethod,
        "rate_limited" => MfaRefusal::TooManyAttempts,
        reason => MfaRefusal::Invalid { reason },
    })
}

async fn is_locked(state: &AppState, user_id: Uuid) -> Result<bool, sqlx::Error> {
    Ok(projections::mfa::user_state(&state.pool, user_id)
        .await?
        .is_some_and(|u| u.locked_at.is_some()))
}

/// A locked user is refused (and the refusal recorded, without counting it again).
async fn ensure_not_locked(state: &AppState, attempt: &Attempt) -> Result<(), MfaRefusal> {
    if !is_locked(state, attempt.user_id).await? {
        return Ok(());
    }
    let failed = MfaVerificationFailed {
        user_id: attempt.user_id,
        email: attempt.email.clone(),
        session_id: attempt.session_id,
        method_id: None,
        kind: None,
        purpose: attempt.purpose.as_str().to_owned(),
        channel: attempt.channel.as_str().to_owned(),
        device: attempt.device.clone(),
        reason: "locked".into(),
        recent_failures: 0,
    };
    state
        .appender
        .append(attempt.requester.draft(&failed))
        .await?;
    Err(MfaRefusal::Locked)
}

/// Locked users and bursts of failures are refused before any code is checked.
pub(super) async fn ensure_may_try(state: &AppState, attempt: &Attempt) -> Result<(), MfaRefusal> {
    ensure_not_locked(state, attempt).await?;
    let last_minute: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM mfa_failures WHERE user_id = $1 AND at > now() - interval '1 minute'",
    )
    .bind(attempt.user_id)
    .fetch_one(&state.pool)
    .await?;
    if last_minute >= BURST_LIMIT {
        return Err(record_failure(state, attempt, None, None, "rate_limited").await);
    }
    Ok(())
}

/// Whether the user has a usable (enrolled, not removed, not disabled) method.
pub async fn has_method(state: &AppState, user_id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM mfa_methods WHERE user_id = $1 AND removed_at IS NULL AND NOT disabled)",
    )
    .bind(user_id)
    .fetch_one(&state.pool)
    .await
}

/// Whether the user has any method or unused backup code at all.
pub async fn has_any_factor(state: &AppState, user_id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM mfa_methods WHERE user_id = $1 AND removed_at IS NULL AND NOT disabled) \
             OR EXISTS (SELECT 1 FROM mfa_backup_codes WHERE user_id = $1 AND used_at IS NULL)",
    )
    .bind(user_id)
    .fetch_one(&state.pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_normalised_and_refusals_name_no_code() {
        assert_eq!(normalize_code(" 123 456 "), "123456");
        assert_eq!(normalize_code("ABCD-EF01-2345"), "ABCDEF012345");
        for reason in [
            "invalid_code",
            "replayed_code",
            "malformed_code",
            "credential_disabled",
            "counter_regression",
            "user_verification_missing",
            "ceremony_invalid",
        ] {
            let refusal = MfaRefusal::Invalid { reason };
            assert_eq!(refusal.reason(), reason);
            assert!(!refusal.to_string().is_empty());
        }
        assert_eq!(MfaRefusal::Locked.reason(), "user_locked");
    }
}
