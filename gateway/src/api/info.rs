//! `GET /api/v1/info`: who the caller is, by which credential, on which rack
//! (the original has no `/me`; this is it). `POST /api/v1/auth/logout`: the
//! caller ends their own session.

use axum::extract::State;
use axum::Json;
use chrono::SecondsFormat;
use serde_json::{json, Value};

use super::ApiError;
use crate::auth::caller::Caller;
use crate::auth::{sessions, CredentialKind};
use crate::startup::VERSION;
use crate::state::AppState;

pub async fn info(State(state): State<AppState>, caller: Caller) -> Json<Value> {
    let p = &caller.principal;
    let user = p
        .email
        .as_ref()
        .map(|email| json!({"email": email, "name": p.name, "role": p.role}));
    let kind = match p.kind {
        CredentialKind::Session => "session",
        CredentialKind::ApiToken => "api_token",
    };
    let mut credential = json!({
        "kind": kind,
        "id": p.credential_id,
        "role": p.role,
        "expires_at": p.expires_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
    });
    if let Some(channel) = &p.channel {
        credential["channel"] = json!(channel);
    }
    if let Some(name) = &p.token_name {
        credential["name"] = json!(name);
    }
    if let Some(mfa) = &p.mfa {
        let gate = crate::mfa::require::gate(&state.settings.mfa, p);
        credential["mfa_verified"] = json!(mfa.verified);
        credential["mfa_method"] = json!(mfa.method);
        credential["mfa_required"] = json!(gate == crate::mfa::require::Gate::VerifyRequired);
        credential["enrollment_required"] =
            json!(gate == crate::mfa::require::Gate::EnrollmentRequired);
    }
    Json(json!({
        "user": user,
        "credential": credential,
        "rack": {"name": state.settings.rack.name},
        "version": {"gateway": VERSION},
    }))
}

pub async fn logout(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    if caller.principal.kind != CredentialKind::Session {
        return Err(ApiError::bad_request(
            "logout ends a session; an API token is revoked with DELETE /api/v1/api-tokens/{id}",
        ));
    }
    sessions::logout(
        &state.pool,
        &state.appender,
        &caller.principal,
        &caller.client.source,
    )
    .await?;
    Ok(Json(json!({"status": "logged_out"})))
}
