//! The MFA routes (`docs/mfa.md`, "Routes"): a person's own methods under
//! `/api/v1/auth/mfa/`, with a Bearer session or the cookie + CSRF, and an
//! admin's view, reset and unlock of another person under `/api/v1/users/`.
//!
//! | route | permission (level) |
//! | --- | --- |
//! | `GET status`, `GET methods` | a session (none) |
//! | `POST enroll/totp/start`, `enroll/totp/confirm`, `enroll/yubiotp/start` | `auth:mfa_method:create` (none) |
//! | `POST verify` | `auth:mfa_verification:create` (none) |
//! | `PUT methods/{id}` | `auth:mfa_method:update` (step_up) |
//! | `DELETE methods/{id}` | `auth:mfa_method:delete` (always) |
//! | `PUT preferred-method` | `auth:mfa_preferences:update` (step_up) |
//! | `POST backup-codes/regenerate` | `auth:mfa_backup_codes:generate` (step_up) |
//! | `GET /api/v1/users/{email}/mfa` | `gateway:user:read` |
//! | `POST /api/v1/users/{email}/mfa/reset` | `auth:mfa_method:reset` (always) |
//! | `POST /api/v1/users/{email}/unlock` | `gateway:user:unlock` (always) |

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::SecondsFormat;
use projections::mfa::MfaMethod;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::methods::{self, Enrolled, MethodError};
use super::require::{self, Gate};
use super::verify::{self, Attempt, Effect, Purpose};
use crate::api::{ApiError, JsonBody};
use crate::auth::caller::Caller;
use crate::auth::CredentialKind;
use crate::state::AppState;

const CREATE: &str = "auth:mfa_method:create";
const VERIFY: &str = "auth:mfa_verification:create";
const UPDATE: &str = "auth:mfa_method:update";
const DELETE: &str = "auth:mfa_method:delete";
const PREFER: &str = "auth:mfa_preferences:update";
const BACKUP_CODES: &str = "auth:mfa_backup_codes:generate";
const USER_READ: &str = "gateway:user:read";
const RESET: &str = "auth:mfa_method:reset";
const UNLOCK: &str = "gateway:user:unlock";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/mfa/status", get(status))
        .route("/api/v1/auth/mfa/methods", get(list_methods))
        .route(
            "/api/v1/auth/mfa/methods/{id}",
            put(rename_method).delete(remove_method),
        )
        .route("/api/v1/auth/mfa/enroll/totp/start", post(totp_start))
        .route("/api/v1/auth/mfa/enroll/totp/confirm", post(totp_confirm))
        .route("/api/v1/auth/mfa/enroll/yubiotp/start", post(yubikey_enrol))
        .route("/api/v1/auth/mfa/verify", post(verify_code))
        .route("/api/v1/auth/mfa/preferred-method", put(set_preferred))
        .route(
            "/api/v1/auth/mfa/backup-codes/regenerate",
            post(regenerate_backup_codes),
        )
        .route("/api/v1/users/{email}/mfa", get(admin_show))
        .route("/api/v1/users/{email}/mfa/reset", post(admin_reset))
        .route("/api/v1/users/{email}/unlock", post(admin_unlock))
}

impl From<MethodError> for ApiError {
    fn from(error: MethodError) -> ApiError {
        match error {
            MethodError::Invalid(m) => ApiError::bad_request(m),
            MethodError::NotFound(m) => ApiError::not_found(m),
            MethodError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, m),
            MethodError::Refused(refusal) => refusal.into(),
        }
    }
}

/// The person behind a session: MFA is for people, never API tokens.
pub(super) struct Person {
    pub(super) user_id: Uuid,
    pub(super) email: String,
}

pub(super) fn person(caller: &Caller) -> Result<Person, ApiError> {
    match (caller.principal.kind, caller.principal.user_id) {
        (CredentialKind::Session, Some(user_id)) => Ok(Person {
            user_id,
            email: caller.principal.email.clone().unwrap_or_default(),
        }),
        _ => Err(ApiError::bad_request(
            "MFA belongs to a person's session; API tokens are never asked for MFA and enrol none",
        )),
    }
}

pub(super) fn attempt(caller: &Caller, person: &Person, purpose: Purpose) -> Attempt {
    Attempt {
        user_id: person.user_id,
        email: person.email.clone(),
        session_id: Some(caller.principal.credential_id),
        purpose,
        channel: caller.mfa_channel(),
        device: caller.client.source.user_agent.clone(),
        requester: caller.requester(),
    }
}

fn method_view(m: &MfaMethod) -> Value {
    json!({
        "id": m.id,
        "kind": m.kind,
        "label": m.label,
        "cli_compatible": m.cli_compatible,
        "fingerprint": m.fingerprint,
        "disabled": m.disabled,
        "disabled_reason": m.disabled_reason,
        "created_at": m.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "last_used_at": m.last_used_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
    })
}

pub(super) fn enrolled_view(enrolled: &Enrolled) -> Value {
    let mut view = json!({"method": method_view(&enrolled.method), "mfa_verified": true});
    if let Some(codes) = &enrolled.backup_codes {
        view["backup_codes"] = json!(codes);
    }
    view
}

async fn status(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let who = person(&caller)?;
    let methods = projections::mfa::methods_of(&state.pool, who.user_id).await?;
    let user = projections::mfa::user_state(&state.pool, who.user_id).await?;
    let codes = projections::mfa::unused_backup_codes(&state.pool, who.user_id).await?;
    let mfa = caller
        .principal
        .mfa
        .clone()
        .unwrap_or(crate::auth::principal::SessionMfa {
            verified: false,
            method: None,
            recent_step_up_at: None,
            enrolled: false,
        });
    let settings = &state.settings.mfa;
    let gate = require::gate(settings, &caller.principal);
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
    };
    let expires = require::window_ends(settings, mfa.recent_step_up_at)
        .filter(|end| *end > chrono::Utc::now());
    Ok(Json(json!({
        "enrolled": methods.iter().any(|m| !m.disabled),
        "methods": methods.iter().map(method_view).collect::<Vec<_>>(),
        "preferred_method": user.as_ref().and_then(|u| u.mfa_preferred_method),
        "mfa_verified": mfa.verified,
        "mfa_method": mfa.method,
        "recent_step_up_at": time(mfa.recent_step_up_at),
        "recent_step_up_expires_at": time(expires),
        "step_up_window_seconds": settings.step_up_window.as_secs(),
        "backup_codes_remaining": codes.len(),
        "locked": user.as_ref().is_some_and(|u| u.locked_at.is_some()),
        "require_all_users": settings.require_all_users,
        "mfa_required": gate == Gate::VerifyRequired,
        "enrollment_required": gate == Gate::EnrollmentRequired,
    })))
}

async fn list_methods(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let who = person(&caller)?;
    caller.require_past_sign_in(&state)?;
    let methods = projections::mfa::methods_of(&state.pool, who.user_id).await?;
    Ok(Json(json!(methods
        .iter()
        .map(method_view)
        .collect::<Vec<_>>())))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    label: Option<String>,
}

async fn totp_start(
    State(state): State<AppState>,
    caller: Caller,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.authorize(&state, CREATE).await?;
    let who = person(&caller)?;
    // The body is optional: `{}`, `{"label": …}` or nothing.
    let body: StartBody = if body.iter().all(u8::is_ascii_whitespace) {
        StartBody { label: None }
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    let label = body.label.as_deref();
    let started = methods::start_totp(&state, who.user_id, &who.email, label).await?;
    Ok(Json(json!({
        "method_id": started.method_id,
        "secret": started.enrolment.secret_base32,
        "otpauth_url": started.enrolment.otpauth_url,
        "qr_svg": started.enrolment.qr_svg,
        "expires_in_seconds": i64::from(super::secrets::PENDING_TTL_MINUTES) * 60,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmBody {
    method_id: Uuid,
    code: String,
}

async fn totp_confirm(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<ConfirmBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.authorize(&state, CREATE).await?;
    let who = person(&caller)?;
    let attempt = attempt(&caller, &who, Purpose::Login);
    let enrolled = methods::confirm_totp(&state, &attempt, body.method_id, &body.code).await?;
    Ok((StatusCode::CREATED, Json(enrolled_view(&enrolled))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct YubikeyBody {
    otp: String,
    label: Option<String>,
}

async fn yubikey_enrol(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<YubikeyBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.authorize(&state, CREATE).await?;
    let who = person(&caller)?;
    let attempt = attempt(&caller, &who, Purpose::Login);
    let enrolled =
        methods::enrol_yubikey(&state, &attempt, &body.otp, body.label.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(enrolled_view(&enrolled))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyBody {
    code: String,
}

/// Verify this session (for sign-in, when it was not yet) and open its step-up window.
async fn verify_code(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<VerifyBody>,
) -> Result<Json<Value>, ApiError> {
    caller.authorize(&state, VERIFY).await?;
    let who = person(&caller)?;
    let signing_in = require::gate(&state.settings.mfa, &caller.principal) != Gate::Open;
    let purpose = if signing_in {
        Purpose::Login
    } else {
        Purpose::StepUp
    };
    let used = verify::verify_code(
        &state,
        &attempt(&caller, &who, purpose),
        &body.code,
        Effect::STEP_UP,
    )
    .await?;
    let session =
        projections::mfa::session_state(&state.pool, caller.principal.credential_id).await?;
    let at = session.as_ref().and_then(|s| s.recent_step_up_at);
    let expires = require::window_ends(&state.settings.mfa, at);
    let mut answer = json!({
        "verified": true,
        "kind": used.kind(),
        "method_id": used.method_id(),
        "mfa_verified": session.as_ref().is_some_and(|s| s.mfa_verified),
        "recent_step_up_expires_at": expires.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
    });
    if used == verify::Used::BackupCode {
        let left = projections::mfa::unused_backup_codes(&state.pool, who.user_id).await?;
        answer["backup_codes_remaining"] = json!(left.len());
    }
    Ok(Json(answer))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RenameBody {
    label: String,
}

fn method_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id.trim())
        .map_err(|_| ApiError::bad_request(format!("{id:?} is not a method id (a UUID)")))
}

async fn rename_method(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<RenameBody>,
) -> Result<Json<Value>, ApiError> {
    let id = method_id(&id)?;
    caller.authorize(&state, UPDATE).await?;
    let who = person(&caller)?;
    let method = methods::rename(&state, &caller.requester(), who.user_id, id, &body.label).await?;
    Ok(Json(method_view(&method)))
}

async fn remove_method(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = method_id(&id)?;
    caller.authorize(&state, DELETE).await?;
    let who = person(&caller)?;
    let removed = methods::remove(&state, &caller.requester(), who.user_id, &[id], "owner").await?;
    Ok(Json(
        json!({"removed": removed.iter().map(method_view).collect::<Vec<_>>()}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PreferBody {
    method_id: Option<Uuid>,
}

async fn set_preferred(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<PreferBody>,
) -> Result<Json<Value>, ApiError> {
    caller.authorize(&state, PREFER).await?;
    let who = person(&caller)?;
    methods::set_preferred(&state, &caller.requester(), who.user_id, body.method_id).await?;
    Ok(Json(json!({"preferred_method": body.method_id})))
}

async fn regenerate_backup_codes(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.authorize(&state, BACKUP_CODES).await?;
    let who = person(&caller)?;
    let codes = methods::regenerate_backup_codes(&state, &caller.requester(), who.user_id).await?;
    Ok(Json(json!({"codes": codes})))
}

async fn target(state: &AppState, email: &str) -> Result<projections::users::User, ApiError> {
    let email = projections::users::normalize_email(email);
    projections::users::by_email(&state.pool, &email)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user {email}")))
}

async fn admin_show(
    State(state): State<AppState>,
    caller: Caller,
    Path(email): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.authorize(&state, USER_READ).await?;
    let user = target(&state, &email).await?;
    let methods = projections::mfa::methods_of(&state.pool, user.id).await?;
    let mfa = projections::mfa::user_state(&state.pool, user.id).await?;
    let codes = projections::mfa::unused_backup_codes(&state.pool, user.id).await?;
    let devices = projections::mfa::trusted_devices_of(&state.pool, user.id).await?;
    Ok(Json(json!({
        "email": user.email,
        "methods": methods.iter().map(method_view).collect::<Vec<_>>(),
        "preferred_method": mfa.as_ref().and_then(|u| u.mfa_preferred_method),
        "locked_at": mfa.as_ref().and_then(|u| u.locked_at),
        "locked_reason": mfa.as_ref().and_then(|u| u.locked_reason.clone()),
        "backup_codes_remaining": codes.len(),
        "trusted_devices": devices,
    })))
}

async fn admin_reset(
    State(state): State<AppState>,
    caller: Caller,
    Path(email): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.authorize(&state, RESET).await?;
    let user = target(&state, &email).await?;
    let ids: Vec<Uuid> = projections::mfa::methods_of(&state.pool, user.id)
        .await?
        .iter()
        .map(|m| m.id)
        .collect();
    let removed =
        methods::remove(&state, &caller.requester(), user.id, &ids, "admin_reset").await?;
    methods::forget_backup_codes_and_devices(&state, &caller.requester(), user.id).await?;
    Ok(Json(json!({
        "email": user.email,
        "removed": removed.iter().map(method_view).collect::<Vec<_>>(),
    })))
}

async fn admin_unlock(
    State(state): State<AppState>,
    caller: Caller,
    Path(email): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.authorize(&state, UNLOCK).await?;
    let user = target(&state, &email).await?;
    methods::unlock(&state, &caller.requester(), user.id, &user.email).await?;
    Ok(Json(json!({"email": user.email, "locked": false})))
}
