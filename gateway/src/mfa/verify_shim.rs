//! TEMPORARY stand-in for `mfa::verify` (the lead's module, not on main yet):
//! the same types and signatures, recording successes and failures as events,
//! without the lock. Replaced by `mfa::verify` when it lands.

#![allow(dead_code)] // the same surface as `mfa::verify`, partly unused until it replaces this

use events::catalogue::{MfaVerificationFailed, MfaVerificationSucceeded};
use uuid::Uuid;

use crate::accounts::users::Requester;
use crate::api::ApiError;
use crate::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Login,
    StepUp,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Web,
    Cli,
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

#[derive(Debug, Clone)]
pub struct Attempt {
    pub user_id: Uuid,
    pub email: String,
    pub session_id: Option<Uuid>,
    pub purpose: Purpose,
    pub channel: Channel,
    pub device: Option<String>,
    pub requester: Requester,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effect {
    pub verifies_session: bool,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Used {
    Method { id: Uuid, kind: &'static str },
    BackupCode,
    TrustedDevice,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MfaRefusal {
    #[error("the second factor was refused ({reason})")]
    Invalid { reason: &'static str },
    #[error("the gateway cannot check or record this verification right now; nothing was changed, try again")]
    Unavailable,
}

impl From<MfaRefusal> for ApiError {
    fn from(refusal: MfaRefusal) -> ApiError {
        match refusal {
            MfaRefusal::Invalid { reason } => {
                ApiError::new(http::StatusCode::UNAUTHORIZED, refusal.to_string())
                    .with_reason(reason)
            }
            MfaRefusal::Unavailable => ApiError::unavailable(),
        }
    }
}

pub async fn record_success(
    state: &AppState,
    attempt: &Attempt,
    used: Used,
    effect: Effect,
) -> Result<(), MfaRefusal> {
    let (method_id, kind) = match used {
        Used::Method { id, kind } => (Some(id), kind),
        Used::BackupCode => (None, "backup_code"),
        Used::TrustedDevice => (None, "trusted_device"),
    };
    let succeeded = MfaVerificationSucceeded {
        user_id: attempt.user_id,
        email: attempt.email.clone(),
        session_id: attempt.session_id,
        method_id,
        kind: kind.to_owned(),
        purpose: attempt.purpose.as_str().to_owned(),
        channel: attempt.channel.as_str().to_owned(),
        device: attempt.device.clone(),
        verifies_session: effect.verifies_session && attempt.session_id.is_some(),
        opens_step_up: effect.opens_step_up && attempt.session_id.is_some(),
    };
    state
        .appender
        .append(attempt.requester.draft(&succeeded))
        .await
        .map_err(|_| MfaRefusal::Unavailable)?;
    Ok(())
}

pub async fn record_failure(
    state: &AppState,
    attempt: &Attempt,
    kind: Option<&str>,
    method_id: Option<Uuid>,
    reason: &'static str,
) -> MfaRefusal {
    let recent: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM mfa_failures WHERE user_id = $1 AND at > now() - interval '15 minutes'",
    )
    .bind(attempt.user_id)
    .fetch_one(&state.pool)
    .await
    .unwrap_or(0);
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
        recent_failures: u32::try_from(recent + 1).unwrap_or(u32::MAX),
    };
    if state
        .appender
        .append(attempt.requester.draft(&failed))
        .await
        .is_err()
    {
        return MfaRefusal::Unavailable;
    }
    let _ = sqlx::query("INSERT INTO mfa_failures (user_id) VALUES ($1)")
        .bind(attempt.user_id)
        .execute(&state.pool)
        .await;
    MfaRefusal::Invalid { reason }
}
