//! Users and their sessions. Admin work (`gateway:user:*`, which only admin
//! holds); a signed-in user may also read their own record and sessions.
//!
//! | route | permission |
//! | --- | --- |
//! | `GET /api/v1/users` | `gateway:user:read` |
//! | `GET /api/v1/users/{email}` | own, or `gateway:user:read` |
//! | `POST /api/v1/users` | `gateway:user:create` |
//! | `PUT /api/v1/users/{email}` | `gateway:user:update` |
//! | `POST /api/v1/users/{email}/disable` | `gateway:user:update` |
//! | `GET /api/v1/users/{email}/sessions` | own, or `gateway:user:read` |
//! | `POST /api/v1/users/{email}/sessions/{id}/revoke` | `gateway:user:update` |
//! | `POST /api/v1/users/{email}/sessions/revoke_all` | `gateway:user:update` |

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ApiError, JsonBody};
use crate::accounts::{users, valid_email};
use crate::auth::caller::Caller;
use crate::auth::sessions;
use crate::state::AppState;

const READ: &str = "gateway:user:read";
const CREATE: &str = "gateway:user:create";
const UPDATE: &str = "gateway:user:update";

/// Own records are readable without the admin permission.
async fn authorize_read(
    state: &AppState,
    caller: &Caller,
    email: &str,
) -> Result<String, ApiError> {
    let email = valid_email(email)?;
    if caller.principal.email.as_deref() == Some(email.as_str()) {
        caller.require_past_sign_in(state)?;
        return Ok(email);
    }
    caller.authorize(state, READ).await?;
    Ok(email)
}

async fn find(state: &AppState, email: &str) -> Result<projections::users::User, ApiError> {
    projections::users::by_email(&state.pool, email)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user {email}")))
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.authorize(&state, READ).await?;
    let users = projections::users::list(&state.pool).await?;
    Ok(Json(json!(users)))
}

pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(email): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let email = authorize_read(&state, &caller, &email).await?;
    Ok(Json(json!(find(&state, &email).await?)))
}

#[derive(Debug, Deserialize)]
pub struct NewUser {
    email: String,
    role: String,
    name: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewUser>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.authorize(&state, CREATE).await?;
    let user = users::add(
        &state.pool,
        &state.appender,
        &caller.requester(),
        &body.email,
        &body.role,
        body.name.as_deref(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(json!(user))))
}

#[derive(Debug, Deserialize)]
pub struct RoleChange {
    role: String,
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(email): Path<String>,
    JsonBody(body): JsonBody<RoleChange>,
) -> Result<Json<Value>, ApiError> {
    caller.authorize(&state, UPDATE).await?;
    let changed = users::set_role(
        &state.pool,
        &state.appender,
        &caller.requester(),
        &email,
        &body.role,
    )
    .await?;
    let user = match changed {
        Some(user) => user,
        // Already that role: nothing recorded, the user as they are.
        None => find(&state, &valid_email(&email)?).await?,
    };
    Ok(Json(json!(user)))
}

#[derive(Debug, Default, Deserialize)]
pub struct DisableRequest {
    reason: Option<String>,
}

pub async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    Path(email): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.authorize(&state, UPDATE).await?;
    // The body is optional: none, or `{"reason": "..."}`.
    let request: DisableRequest = if body.iter().all(u8::is_ascii_whitespace) {
        DisableRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    let reason = request.reason;
    let (user, revoked) = users::disable(
        &state.pool,
        &state.appender,
        &caller.requester(),
        &email,
        reason.as_deref(),
    )
    .await?;
    let mut view = json!(user);
    view["sessions_revoked"] = json!(revoked);
    Ok(Json(view))
}

pub async fn sessions(
    State(state): State<AppState>,
    caller: Caller,
    Path(email): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let email = authorize_read(&state, &caller, &email).await?;
    let user = find(&state, &email).await?;
    let list = projections::sessions::for_user(&state.pool, user.id).await?;
    Ok(Json(json!(list)))
}

pub async fn revoke_session(
    State(state): State<AppState>,
    caller: Caller,
    Path((email, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    caller.authorize(&state, UPDATE).await?;
    let session = sessions::revoke(
        &state.pool,
        &state.appender,
        &caller.requester(),
        &email,
        &id,
    )
    .await?;
    Ok(Json(json!(session)))
}

pub async fn revoke_all(
    State(state): State<AppState>,
    caller: Caller,
    Path(email): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.authorize(&state, UPDATE).await?;
    let revoked =
        sessions::revoke_all(&state.pool, &state.appender, &caller.requester(), &email).await?;
    Ok(Json(json!({"revoked": revoked})))
}
