//! The CLI login, as the `rack-gateway` CLI drives it.
//!
//! 1. `POST /api/v1/auth/cli/start` with the SHA-256 of a secret only the CLI
//!    holds → the provider URL for the browser, the state, its expiry, and
//!    the `user_code` the CLI prints.
//! 2. The browser signs in; the provider sends it to
//!    `GET /api/v1/auth/cli/callback`, which admits the person (or records why
//!    not) and shows the confirmation page ([`cli_confirm`]: what is being
//!    authorised, the code, a Confirm button) or the error page.
//! 3. The CLI polls `POST /api/v1/auth/cli/complete` with the state and the
//!    secret: 202 while the browser is not done, then once the session (or
//!    the reason it was refused). Only the client holding the secret gets an
//!    answer about the login; a wrong secret does not use it up.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::callback::{self, CallbackParams};
use super::cli_confirm;
use super::login::{self, Channel, Device, LoginFailure};
use super::login_state::{self, NewLogin, Status};
use super::secrets;
use super::sign_in_rate_limit::PublicAuth;
use crate::api::{ApiError, JsonBody};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct StartRequest {
    cli_secret_sha256: Option<String>,
    device_id: Option<String>,
    device_name: Option<String>,
    device_os: Option<String>,
    client_version: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CompleteRequest {
    state: Option<String>,
    cli_secret: Option<String>,
    device_id: Option<String>,
    device_name: Option<String>,
    device_os: Option<String>,
    client_version: Option<String>,
}

fn login_error(failure: &LoginFailure) -> ApiError {
    let error = ApiError::new(failure.status(), failure.message());
    if failure.status() == StatusCode::UNAUTHORIZED {
        error.with_reason(failure.reason())
    } else {
        error
    }
}

pub async fn start(
    State(state): State<AppState>,
    PublicAuth(client): PublicAuth,
    JsonBody(body): JsonBody<StartRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let secret_hash = body
        .cli_secret_sha256
        .as_deref()
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| secrets::is_sha256_hex(h))
        .ok_or_else(|| {
            ApiError::bad_request(
                "cli_secret_sha256 must be the hex SHA-256 (64 characters) of a secret the CLI keeps",
            )
        })?;
    let device = Device::clean(
        body.device_id.as_deref(),
        body.device_name.as_deref(),
        body.device_os.as_deref(),
        body.client_version.as_deref(),
    )
    .map_err(ApiError::bad_request)?;
    let provider = state
        .identity
        .oidc
        .as_ref()
        .ok_or_else(|| login_error(&LoginFailure::NotConfigured))?;
    let redirect_uri = state.settings.oauth_redirect_uri(Channel::Cli.as_str());
    let request = provider
        .authorization_request(&redirect_uri, None)
        .await
        .map_err(|failure| login_error(&failure))?;
    let now = Utc::now();
    let ttl = chrono::Duration::from_std(state.settings.auth.login_state_ttl)
        .unwrap_or(chrono::Duration::minutes(10));
    let login_id = Uuid::new_v4();
    let user_code =
        cli_confirm::new_user_code().map_err(|_| login_error(&LoginFailure::Unavailable))?;
    let start_ip = client.ip.to_string();
    login_state::insert(
        &state.pool,
        &NewLogin {
            id: login_id,
            state_sha256: &secrets::sha256_hex(&request.state),
            channel: Channel::Cli,
            cli_secret_sha256: Some(&secret_hash),
            pkce_verifier: &request.pkce_verifier,
            nonce: &request.nonce,
            device: &device,
            user_code: Some(&user_code),
            start_ip: Some(&start_ip),
            created_at: now,
            expires_at: now + ttl,
        },
    )
    .await?;
    login::record_started(&state, &client, login_id, Channel::Cli, &device).await?;
    Ok(Json(json!({
        "auth_url": request.url,
        "state": request.state,
        "expires_at": (now + ttl).to_rfc3339_opts(SecondsFormat::Secs, true),
        "user_code": user_code,
    })))
}

pub async fn callback(
    State(state): State<AppState>,
    PublicAuth(client): PublicAuth,
    params: Result<Query<CallbackParams>, QueryRejection>,
) -> Response {
    let params = params.map(|Query(p)| p).unwrap_or_default();
    let admitted = match callback::admit(&state, &client, Channel::Cli, &params, None).await {
        Ok(admitted) => admitted,
        Err(failure) => return crate::web::error_redirect(&failure),
    };
    let name = admitted
        .user
        .name
        .clone()
        .or_else(|| admitted.identity.name.clone());
    let marked = login_state::mark_authenticated(
        &state.pool,
        admitted.login.id,
        admitted.user.id,
        &admitted.user.email,
        name.as_deref(),
        Utc::now(),
    )
    .await;
    if let Err(e) = marked {
        tracing::error!(error = %e, "could not store an admitted CLI login");
        return crate::web::error_redirect(&LoginFailure::Unavailable);
    }
    // Not done yet: the person must confirm what they authorise.
    cli_confirm::await_confirmation(&state, admitted.login.id).await
}

pub async fn complete(
    State(state): State<AppState>,
    PublicAuth(client): PublicAuth,
    JsonBody(body): JsonBody<CompleteRequest>,
) -> Result<Response, ApiError> {
    let (Some(presented_state), Some(cli_secret)) = (
        body.state.as_deref().filter(|s| !s.is_empty()),
        body.cli_secret.as_deref().filter(|s| !s.is_empty()),
    ) else {
        return Err(ApiError::bad_request("state and cli_secret are required"));
    };
    let device = Device::clean(
        body.device_id.as_deref(),
        body.device_name.as_deref(),
        body.device_os.as_deref(),
        body.client_version.as_deref(),
    )
    .map_err(ApiError::bad_request)?;
    let source = &client.source;
    let refuse = |login_id: Option<Uuid>, failure: LoginFailure| {
        let state = state.clone();
        let source = source.clone();
        async move {
            login::record_failed(&state, &source, login_id, Channel::Cli, &failure, None).await;
            Err(login_error(&failure))
        }
    };

    let mut tx = state.pool.begin().await?;
    let hash = secrets::sha256_hex(presented_state);
    let Some(login) = login_state::lock_by_state(&mut *tx, &hash).await? else {
        drop(tx);
        return refuse(None, LoginFailure::InvalidState).await;
    };
    if login.channel != Channel::Cli.as_str() {
        drop(tx);
        return refuse(None, LoginFailure::InvalidState).await;
    }
    let bound = login
        .cli_secret_sha256
        .as_deref()
        .is_some_and(|expected| secrets::hashes_equal(&secrets::sha256_hex(cli_secret), expected));
    if !bound {
        drop(tx);
        return refuse(Some(login.id), LoginFailure::ClientMismatch).await;
    }
    let now = Utc::now();
    match login.status {
        Status::Completed => {
            drop(tx);
            return refuse(Some(login.id), LoginFailure::ReplayedState).await;
        }
        Status::Expired => {
            drop(tx);
            return refuse(Some(login.id), LoginFailure::ExpiredState).await;
        }
        _ if login.expires_at <= now => {
            login_state::mark_expired(&mut *tx, login.id, now).await?;
            tx.commit().await?;
            return refuse(Some(login.id), LoginFailure::ExpiredState).await;
        }
        Status::Pending | Status::Exchanging => {
            return Ok((StatusCode::ACCEPTED, Json(json!({"status": "pending"}))).into_response());
        }
        Status::Authenticated if login.confirmed_at.is_none() => {
            // Signed in at the provider, not yet confirmed on the page.
            return Ok((
                StatusCode::ACCEPTED,
                Json(json!({"status": "pending", "waiting_for": "confirmation"})),
            )
                .into_response());
        }
        Status::Failed => {
            // Already recorded when the browser step failed; now it is reported, once.
            login_state::mark_completed(&mut *tx, login.id, None, now).await?;
            tx.commit().await?;
            let failure = login
                .failure()
                .unwrap_or(LoginFailure::ProviderError(String::new()));
            return Err(login_error(&failure));
        }
        Status::Authenticated => {}
    }

    // The browser step admitted the person; they must still be allowed now.
    let user = match login.user_id {
        Some(id) => projections::users::by_id(&state.pool, id).await?,
        None => None,
    };
    let user = match user {
        Some(user) if !user.disabled => user,
        Some(_) => {
            login_state::mark_completed(&mut *tx, login.id, None, now).await?;
            tx.commit().await?;
            return refuse(Some(login.id), LoginFailure::UserDisabled).await;
        }
        None => {
            login_state::mark_completed(&mut *tx, login.id, None, now).await?;
            tx.commit().await?;
            return refuse(Some(login.id), LoginFailure::UnknownUser).await;
        }
    };
    let device = device.or(login.device.clone());
    // The row stays locked while the session is recorded: a concurrent
    // /complete waits, then finds the login completed.
    let session = login::open_session(&state, source, login.id, Channel::Cli, &user, &device)
        .await
        .map_err(|failure| login_error(&failure))?;
    login_state::mark_completed(&mut *tx, login.id, Some(session.session_id), Utc::now()).await?;
    tx.commit().await?;
    // The new session is restricted until its second factor (crate::mfa::require).
    let enrolled = crate::mfa::verify::has_method(&state, user.id).await?;
    let gate = crate::mfa::require::sign_in_gate(&state.settings.mfa, enrolled);
    Ok((
        StatusCode::OK,
        Json(json!({
            "token": session.secret,
            "email": user.email,
            "name": user.name.clone().or(login.name.clone()),
            "role": user.role,
            "expires_at": session.expires_at_text(),
            "session_id": session.session_id,
            "channel": "cli",
            "device_id": device.id,
            "device_name": device.name,
            "mfa_verified": false,
            "mfa_required": gate == crate::mfa::require::Gate::VerifyRequired,
            "enrollment_required": gate == crate::mfa::require::Gate::EnrollmentRequired,
        })),
    )
        .into_response())
}
