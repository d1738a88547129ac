//! WebAuthn over the JSON API (docs/mfa.md, "WebAuthn"), under
//! `/api/v1/auth/mfa/` with a session (Bearer or cookie + CSRF):
//!
//! | route | body → answer |
//! | --- | --- |
//! | `POST enroll/webauthn/start` | `{}` → `{ceremony_id, expires_at, options}` (`options` for `navigator.credentials.create`) |
//! | `POST enroll/webauthn/confirm` | `{ceremony_id, credential, label, cli_compatible?}` → the method |
//! | `POST webauthn/assertion/start` | `{purpose?: "login"\|"step_up"}` → `{ceremony_id, expires_at, options}` |
//! | `POST webauthn/assertion/verify` | `{ceremony_id, credential, purpose?}` → `{verified, method_id, purpose}` |
//!
//! A ceremony belongs to the session that started it and is consumed by its
//! first `confirm`/`verify`, whatever the outcome ([`super::webauthn_store`]).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{SecondsFormat, Utc};
use events::catalogue::{MfaMethodEnrolled, MfaWebauthnCounterRegressed, SecurityAlert};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::routes::{self, Person};
use super::verify::{self, Effect, Purpose, Used};
use super::webauthn::{Ceremonies, CeremonyError, CeremonyKind};
use super::webauthn_store::{self as store, StoreError};
use super::{methods, MfaKeys};
use crate::api::{ApiError, JsonBody};
use crate::auth::caller::Caller;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/mfa/enroll/webauthn/start", post(enroll_start))
        .route(
            "/api/v1/auth/mfa/enroll/webauthn/confirm",
            post(enroll_confirm),
        )
        .route(
            "/api/v1/auth/mfa/webauthn/assertion/start",
            post(assertion_start),
        )
        .route(
            "/api/v1/auth/mfa/webauthn/assertion/verify",
            post(assertion_verify),
        )
}

/// The person behind a session (API tokens are never asked for MFA), refused
/// here as `session_required`.
fn person(caller: &Caller) -> Result<Person, ApiError> {
    routes::person(caller).map_err(|_| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "second factors belong to people: sign in (API tokens are never asked for MFA)",
        )
        .with_reason("session_required")
    })
}

/// The session a ceremony is bound to.
fn session_of(caller: &Caller) -> Uuid {
    caller.principal.credential_id
}

/// Keep a started ceremony and answer with its id, expiry and the options for the browser.
async fn ceremony_started(
    state: &AppState,
    caller: &Caller,
    person: &Person,
    purpose: Option<Purpose>,
    ceremony: &super::webauthn::CeremonyState,
    options: serde_json::Value,
) -> Result<Response, ApiError> {
    let (id, expires_at) = store::save_ceremony(
        &state.pool,
        person.user_id,
        session_of(caller),
        purpose.map(Purpose::as_str),
        ceremony,
        Utc::now(),
    )
    .await?;
    let mut answer = json!({
        "ceremony_id": id,
        "expires_at": rfc3339(expires_at),
        "options": options,
    });
    if let Some(purpose) = purpose {
        answer["purpose"] = json!(purpose.as_str());
    }
    Ok(Json(answer).into_response())
}

pub(crate) fn keys(state: &AppState) -> Result<&MfaKeys, ApiError> {
    state
        .mfa
        .keys
        .as_ref()
        .ok_or_else(|| verify::MfaRefusal::NoKeys.into())
}

pub(crate) fn ceremonies(state: &AppState) -> Result<Ceremonies, ApiError> {
    Ceremonies::new(
        &state.settings.mfa.webauthn_rp_id,
        &state.settings.mfa.webauthn_origin,
    )
    .map_err(|e| {
        tracing::error!(error = %e, "WebAuthn relying party could not be built");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    })
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::DuplicateCredential => ApiError::new(
                StatusCode::CONFLICT,
                "this security key is already registered (to this or another account)",
            )
            .with_reason("credential_registered"),
            StoreError::Database(e) => ApiError::from(e),
            other => {
                tracing::error!(error = %other, "WebAuthn credential storage failed");
                ApiError::unavailable()
            }
        }
    }
}

fn ceremony_refused(message: &str) -> ApiError {
    ApiError::bad_request(message.to_owned()).with_reason("ceremony_invalid")
}

/// A JSON body that may be left out entirely (then the defaults apply).
pub(crate) fn optional_json<T: serde::de::DeserializeOwned + Default>(
    body: &[u8],
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the JSON body is not valid here: {e}")))
}

fn rfc3339(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollStart {}

async fn enroll_start(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    let _: EnrollStart = optional_json(&body)?;
    caller.authorize(&state, "auth:mfa_method:create").await?;
    let person = person(&caller)?;
    let keys = keys(&state)?;
    let rp = ceremonies(&state)?;
    let existing = store::all_keys(&state.pool, keys, person.user_id).await?;
    let display = caller
        .principal
        .name
        .clone()
        .unwrap_or_else(|| person.email.clone());
    let (options, ceremony) = rp
        .start_registration(person.user_id, &person.email, &display, &existing)
        .map_err(|e| ceremony_refused(&e.to_string()))?;
    ceremony_started(&state, &caller, &person, None, &ceremony, json!(options)).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollConfirm {
    ceremony_id: Uuid,
    credential: RegisterPublicKeyCredential,
    label: String,
    cli_compatible: Option<bool>,
}

/// A label: 1–64 printable characters.
pub(crate) fn valid_label(label: &str) -> Result<String, ApiError> {
    let label = label.trim();
    if label.is_empty() || label.chars().count() > 64 || label.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "label must be 1-64 printable characters",
        ));
    }
    Ok(label.to_owned())
}

async fn enroll_confirm(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<EnrollConfirm>,
) -> Result<Response, ApiError> {
    caller.authorize(&state, "auth:mfa_method:create").await?;
    let person = person(&caller)?;
    let label = valid_label(&body.label)?;
    let keys = keys(&state)?;
    let rp = ceremonies(&state)?;
    let ceremony = store::take_ceremony(
        &state.pool,
        body.ceremony_id,
        session_of(&caller),
        CeremonyKind::Registration,
        Utc::now(),
    )
    .await?
    .filter(|c| c.user_id == person.user_id)
    .ok_or_else(|| {
        ceremony_refused(
            "this enrolment is unknown, expired, already used or from another session: start again",
        )
    })?;
    let passkey = rp
        .finish_registration(&body.credential, &ceremony.state)
        .map_err(|e| match e {
            CeremonyError::UserVerificationRequired => {
                ApiError::bad_request(e.to_string()).with_reason("user_verification_missing")
            }
            other => ceremony_refused(&format!(
                "the security key's registration was refused: {other}"
            )),
        })?;
    let method_id = Uuid::new_v4();
    store::insert_pending(&state.pool, keys, method_id, person.user_id, &passkey).await?;
    let cli_compatible = body.cli_compatible.unwrap_or(true);
    let enrolled = MfaMethodEnrolled {
        method_id,
        user_id: person.user_id,
        email: person.email.clone(),
        kind: "webauthn".to_owned(),
        label,
        cli_compatible,
        fingerprint: keys.fingerprint("webauthn", passkey.cred_id().as_ref()),
    };
    let attempt = routes::attempt(&caller, &person, Purpose::Login);
    // Audit first: without the event the credential is never usable.
    let enrolled = match methods::finish_enrolment(&state, &attempt, keys, enrolled).await {
        Ok(enrolled) => enrolled,
        Err(e) => {
            if let Err(e) = super::secrets::delete(&state.pool, method_id).await {
                tracing::warn!(error = %e, "an unrecorded WebAuthn credential could not be deleted");
            }
            return Err(e.into());
        }
    };
    let mut view = super::routes::enrolled_view(&enrolled);
    // Kept beside `method` for the ceremony page and scripts written against it.
    view["method_id"] = json!(method_id);
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

fn parse_purpose(text: Option<&str>) -> Result<Purpose, ApiError> {
    match text {
        None | Some("step_up") => Ok(Purpose::StepUp),
        Some("login") => Ok(Purpose::Login),
        Some(other) => Err(ApiError::bad_request(format!(
            "purpose {other:?} is not one of \"login\", \"step_up\""
        ))),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertionStart {
    purpose: Option<String>,
}

async fn assertion_start(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller
        .authorize(&state, "auth:mfa_verification:create")
        .await?;
    let person = person(&caller)?;
    let body: AssertionStart = optional_json(&body)?;
    let purpose = parse_purpose(body.purpose.as_deref())?;
    let keys = keys(&state)?;
    let rp = ceremonies(&state)?;
    let stored = store::usable_keys(&state.pool, keys, person.user_id).await?;
    let passkeys: Vec<_> = stored.iter().map(|k| k.passkey.clone()).collect();
    if passkeys.is_empty() {
        return Err(ApiError::bad_request(
            "no usable security key is enrolled (enrol one at /app/mfa/enroll)",
        )
        .with_reason("no_method"));
    }
    let (options, ceremony) = rp
        .start_authentication(&passkeys)
        .map_err(|e| ceremony_refused(&e.to_string()))?;
    ceremony_started(
        &state,
        &caller,
        &person,
        Some(purpose),
        &ceremony,
        json!(options),
    )
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertionVerify {
    ceremony_id: Uuid,
    credential: PublicKeyCredential,
    purpose: Option<String>,
}

async fn assertion_verify(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<AssertionVerify>,
) -> Result<Response, ApiError> {
    caller
        .authorize(&state, "auth:mfa_verification:create")
        .await?;
    let person = person(&caller)?;
    let asked = body
        .purpose
        .as_deref()
        .map(|p| parse_purpose(Some(p)))
        .transpose()?;
    let verified = verify_assertion(
        &state,
        &caller,
        &person,
        body.ceremony_id,
        &body.credential,
        asked,
    )
    .await?;
    Ok(Json(json!({
        "verified": true,
        "method_id": verified.method_id,
        "purpose": verified.purpose.as_str(),
    }))
    .into_response())
}

struct Verified {
    pub method_id: Uuid,
    pub purpose: Purpose,
}

/// Check one assertion against the ceremony it answers and record the
/// outcome: the success through [`verify::record_success`], every refusal
/// through [`verify::record_failure`] (so it counts towards the lock).
async fn verify_assertion(
    state: &AppState,
    caller: &Caller,
    person: &Person,
    ceremony_id: Uuid,
    credential: &PublicKeyCredential,
    asked: Option<Purpose>,
) -> Result<Verified, ApiError> {
    let keys = keys(state)?;
    let rp = ceremonies(state)?;
    let ceremony = store::take_ceremony(
        &state.pool,
        ceremony_id,
        session_of(caller),
        CeremonyKind::Authentication,
        Utc::now(),
    )
    .await?
    .filter(|c| c.user_id == person.user_id);
    let purpose = match ceremony.as_ref().and_then(|c| c.purpose.as_deref()) {
        Some("login") => Purpose::Login,
        _ => Purpose::StepUp,
    };
    let attempt = routes::attempt(caller, person, asked.unwrap_or(purpose));
    verify::ensure_may_try(state, &attempt).await?;
    let fail = |method_id: Option<Uuid>, reason: &'static str| {
        let attempt = attempt.clone();
        async move {
            ApiError::from(
                verify::record_failure(state, &attempt, Some("webauthn"), method_id, reason).await,
            )
        }
    };
    let Some(ceremony) = ceremony else {
        return Err(fail(None, "ceremony_invalid").await);
    };
    if asked.is_some_and(|p| p != purpose) {
        return Err(fail(None, "ceremony_invalid").await);
    }
    let stored = store::usable_keys(&state.pool, keys, person.user_id).await?;
    let Some(used) = stored
        .iter()
        .find(|k| k.passkey.cred_id().as_slice() == credential.raw_id.as_slice())
    else {
        // A key of this user that is disabled (a suspected clone) says so.
        let disabled = disabled_method(state, keys, person.user_id, &credential.raw_id).await?;
        let reason = if disabled.is_some() {
            "credential_disabled"
        } else {
            "ceremony_invalid"
        };
        return Err(fail(disabled, reason).await);
    };
    let passkeys: Vec<_> = stored.iter().map(|k| k.passkey.clone()).collect();
    match rp.finish_authentication(credential, &ceremony.state, &passkeys) {
        Ok((updated, _counter)) => {
            if !store::update_counter(&state.pool, keys, person.user_id, used, &updated).await? {
                // Another assertion of this credential landed in between.
                return Err(fail(Some(used.method_id), "counter_regression").await);
            }
            let effect = match purpose {
                Purpose::Login => Effect::SIGN_IN,
                _ => Effect::STEP_UP,
            };
            verify::record_success(
                state,
                &attempt,
                Used::Method {
                    id: used.method_id,
                    kind: "webauthn",
                },
                effect,
            )
            .await
            .map_err(ApiError::from)?;
            Ok(Verified {
                method_id: used.method_id,
                purpose,
            })
        }
        Err(CeremonyError::CounterRegression) => {
            let presented =
                store::presented_counter(&credential.response.authenticator_data).unwrap_or(0);
            let regressed = MfaWebauthnCounterRegressed {
                method_id: used.method_id,
                user_id: person.user_id,
                stored_counter: used.counter(),
                presented_counter: presented,
            };
            let alert = SecurityAlert {
                alert: "webauthn_counter_regression".to_owned(),
                user_id: Some(person.user_id),
                email: Some(person.email.clone()),
                method_id: Some(used.method_id),
                detail: format!(
                    "a security key of {} presented signature counter {} after {}: possibly a cloned authenticator; the key is disabled",
                    person.email,
                    presented,
                    used.counter()
                ),
            };
            let by = caller.requester();
            if let Err(e) = state
                .appender
                .append_all(vec![by.draft(&regressed), by.draft(&alert)])
                .await
            {
                tracing::error!(error = %e, "a WebAuthn counter regression could not be recorded");
                return Err(ApiError::unavailable());
            }
            Err(fail(Some(used.method_id), "counter_regression").await)
        }
        Err(CeremonyError::UserVerificationRequired) => {
            Err(fail(Some(used.method_id), "user_verification_missing").await)
        }
        Err(e) => {
            tracing::info!(error = %e, "a WebAuthn assertion was refused");
            Err(fail(Some(used.method_id), "ceremony_invalid").await)
        }
    }
}

/// The method id of a disabled credential of this user with this id, if any.
async fn disabled_method(
    state: &AppState,
    keys: &MfaKeys,
    user_id: Uuid,
    cred_id: &[u8],
) -> Result<Option<Uuid>, ApiError> {
    let lookup = store::credential_lookup(keys, cred_id);
    let id: Option<Uuid> = sqlx::query_scalar(
        "SELECT m.id FROM mfa_secrets s JOIN mfa_methods m ON m.id = s.method_id \
         WHERE s.lookup = $1 AND s.user_id = $2 AND m.disabled AND m.removed_at IS NULL",
    )
    .bind(lookup)
    .bind(user_id)
    .fetch_optional(&state.pool)
    .await?;
    Ok(id)
}
