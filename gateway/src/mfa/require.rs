//! What a caller must prove, beyond holding a permission, before the gateway
//! uses it (`docs/mfa.md`, "Enforcement"), on every channel: the JSON API
//! ([`crate::auth::caller::Caller::authorize`]) and the rack proxy.
//!
//! 1. API tokens are never asked for MFA.
//! 2. The sign-in [`Gate`]: a session of a person who has a method is
//!    restricted until it is verified; one of a person without a method,
//!    while `MFA_REQUIRE_ALL_USERS` holds, until they enrol. A restricted
//!    session may only enrol and verify.
//! 3. The permission's level (`decision::mfa`): `step_up` needs a
//!    verification on this session within `MFA_STEP_UP_WINDOW_MINUTES`, or a
//!    code on the request; `always` needs a code on the request. A write
//!    permission with no level is refused (fail closed).
//!
//! A code on the request (`X-MFA-TOTP`, or the `<token>.totp.<code>` suffix)
//! is checked and recorded by [`super::verify`] and opens the window.

use chrono::Utc;
use decision::mfa::Level;
use http::StatusCode;

use super::verify::{self, Attempt, Channel, Effect, MfaRefusal, Purpose};
use crate::accounts::users::Requester;
use crate::api::ApiError;
use crate::auth::principal::{CredentialKind, Principal};
use crate::settings::MfaSettings;
use crate::state::AppState;

/// The header that carries a TOTP, YubiKey OTP or backup code on a request.
pub const TOTP_HEADER: &str = "x-mfa-totp";

/// Permissions a restricted session may still use: enrolling and verifying.
const PAST_THE_GATE: &[&str] = &["auth:mfa_method:create", "auth:mfa_verification:create"];

/// Where the web console enrols and verifies; named in refusals.
pub const ENROL_PAGE: &str = "/app/mfa/enroll";
pub const CHALLENGE_PAGE: &str = "/app/auth/mfa/challenge";

/// Whether a session has passed sign-in's second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Has a method: must verify (`mfa_required`).
    VerifyRequired,
    /// Has none, and everyone must: must enrol (`enrollment_required`).
    EnrollmentRequired,
}

pub fn gate(settings: &MfaSettings, principal: &Principal) -> Gate {
    let Some(mfa) = principal.mfa.as_ref() else {
        return Gate::Open;
    };
    if principal.kind != CredentialKind::Session {
        return Gate::Open;
    }
    session_gate(settings, mfa.enrolled, mfa.verified)
}

/// The gate of a session just opened at sign-in (not yet verified).
pub fn sign_in_gate(settings: &MfaSettings, enrolled: bool) -> Gate {
    session_gate(settings, enrolled, false)
}

/// A person who has no method while everyone must is sent to enrolment even
/// on a session verified earlier (their methods were reset, say).
fn session_gate(settings: &MfaSettings, enrolled: bool, verified: bool) -> Gate {
    match (enrolled, verified, settings.require_all_users) {
        (true, true, _) | (false, _, false) => Gate::Open,
        (true, false, _) => Gate::VerifyRequired,
        (false, _, true) => Gate::EnrollmentRequired,
    }
}

/// Why MFA refused a permission.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MfaDenial {
    #[error("MFA verification required: this session may only verify until it does (run `rack-gateway mfa verify`, or enter a code at {0}{CHALLENGE_PAGE})")]
    VerifyFirst(String),
    #[error("MFA enrollment required: enrol a second factor at {0}{ENROL_PAGE} or with `rack-gateway mfa enroll totp`; until then only enrolment is allowed")]
    EnrolFirst(String),
    #[error("MFA step-up required for {0}: run `rack-gateway mfa verify` (or pass --mfa-code CODE to the rack-gateway command), or send the code with the request (X-MFA-TOTP header, or RACK_URL=https://convox:<token>.totp.<code>@…)")]
    StepUp(String),
    #[error("MFA required on this very request for {0}: pass --mfa-code CODE to the rack-gateway command, or send the code with the request (X-MFA-TOTP header, or RACK_URL=https://convox:<token>.totp.<code>@…)")]
    EveryTime(String),
    #[error("{0}")]
    Unlisted(String),
    #[error("{0}")]
    Refused(MfaRefusal),
}

impl MfaDenial {
    /// The refusal of a restricted session, naming where to go.
    pub fn of_gate(state: &AppState, gate: Gate) -> MfaDenial {
        let base = state
            .settings
            .server
            .public_url
            .trim_end_matches('/')
            .to_owned();
        match gate {
            Gate::EnrollmentRequired => MfaDenial::EnrolFirst(base),
            _ => MfaDenial::VerifyFirst(base),
        }
    }

    /// Stable, for `X-Error-Reason`, events and tests.
    pub fn reason(&self) -> &'static str {
        match self {
            MfaDenial::VerifyFirst(_) => "mfa_required",
            MfaDenial::EnrolFirst(_) => "mfa_enrollment_required",
            MfaDenial::StepUp(_) => "mfa_step_up_required",
            MfaDenial::EveryTime(_) => "mfa_step_up_required",
            MfaDenial::Unlisted(_) => "mfa_level_missing",
            MfaDenial::Refused(refusal) => refusal.reason(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            MfaDenial::Refused(MfaRefusal::Unavailable) => StatusCode::SERVICE_UNAVAILABLE,
            MfaDenial::Refused(MfaRefusal::TooManyAttempts) => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::FORBIDDEN,
        }
    }
}

impl From<MfaDenial> for ApiError {
    fn from(denial: MfaDenial) -> ApiError {
        let mut error =
            ApiError::new(denial.status(), denial.to_string()).with_reason(denial.reason());
        if denial.status() == StatusCode::TOO_MANY_REQUESTS {
            error.retry_after_seconds = Some(60);
        }
        error
    }
}

impl From<MfaRefusal> for ApiError {
    fn from(refusal: MfaRefusal) -> ApiError {
        ApiError::from(MfaDenial::Refused(refusal))
    }
}

/// Who asks for a permission, and the code their request carries, if any.
pub struct Asking<'a> {
    pub principal: &'a Principal,
    pub requester: Requester,
    pub channel: Channel,
    pub device: Option<String>,
    pub proof: Option<&'a str>,
}

impl Asking<'_> {
    fn attempt(&self, purpose: Purpose) -> Option<Attempt> {
        Some(Attempt {
            user_id: self.principal.user_id?,
            email: self.principal.email.clone().unwrap_or_default(),
            session_id: Some(self.principal.credential_id),
            purpose,
            channel: self.channel,
            device: self.device.clone(),
            requester: self.requester.clone(),
        })
    }
}

/// Refuse unless `asking` has shown what `permission` needs.
pub async fn check(
    state: &AppState,
    asking: &Asking<'_>,
    permission: &str,
) -> Result<(), MfaDenial> {
    let principal = asking.principal;
    let Some(mfa) = principal.mfa.as_ref() else {
        return Ok(());
    };
    if principal.kind != CredentialKind::Session {
        return Ok(());
    }
    let level =
        decision::mfa::level_of(permission).map_err(|e| MfaDenial::Unlisted(e.to_string()))?;
    if !PAST_THE_GATE.contains(&permission) {
        match (gate(&state.settings.mfa, principal), asking.proof) {
            (Gate::Open, _) => {}
            // A code on the request verifies the session for sign-in as well
            // (the plain `convox` CLI has no other way), and stands for any level.
            (Gate::VerifyRequired, Some(code)) => {
                return verify_on_request(state, asking, Purpose::Login, code).await;
            }
            (gate, _) => return Err(MfaDenial::of_gate(state, gate)),
        }
    }
    // No method and no obligation to have one (MFA_REQUIRE_ALL_USERS=false): nothing to verify with.
    if level == Level::None || !mfa.enrolled {
        return Ok(());
    }
    if level == Level::StepUp && within_window(&state.settings.mfa, mfa.recent_step_up_at) {
        return Ok(());
    }
    let Some(code) = asking.proof else {
        return Err(match level {
            Level::Always => MfaDenial::EveryTime(permission.to_owned()),
            _ => MfaDenial::StepUp(permission.to_owned()),
        });
    };
    verify_on_request(state, asking, Purpose::StepUp, code).await
}

async fn verify_on_request(
    state: &AppState,
    asking: &Asking<'_>,
    purpose: Purpose,
    code: &str,
) -> Result<(), MfaDenial> {
    let attempt = asking
        .attempt(purpose)
        .ok_or(MfaDenial::Refused(MfaRefusal::NoMethod))?;
    verify::verify_code(state, &attempt, code, Effect::STEP_UP)
        .await
        .map(|_| ())
        .map_err(MfaDenial::Refused)
}

/// Whether a step-up at `at` still counts.
pub fn within_window(settings: &MfaSettings, at: Option<chrono::DateTime<Utc>>) -> bool {
    let window =
        chrono::Duration::from_std(settings.step_up_window).unwrap_or(chrono::Duration::zero());
    at.is_some_and(|at| Utc::now() < at + window)
}

/// When the window opened at `at` closes.
pub fn window_ends(
    settings: &MfaSettings,
    at: Option<chrono::DateTime<Utc>>,
) -> Option<chrono::DateTime<Utc>> {
    let window = chrono::Duration::from_std(settings.step_up_window).ok()?;
    at.map(|at| at + window)
}
