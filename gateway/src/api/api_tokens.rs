//! API tokens for automation (admin: `gateway:api_token:*`). The secret is
//! in the create response once; no read ever returns it or its hash.
//!
//! | route | permission |
//! | --- | --- |
//! | `GET /api/v1/api-tokens`, `GET /api/v1/api-tokens/{id}` | `gateway:api_token:read` |
//! | `POST /api/v1/api-tokens` | `gateway:api_token:create` |
//! | `DELETE /api/v1/api-tokens/{id}` | `gateway:api_token:delete` |

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use projections::api_tokens::ApiToken;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{ApiError, JsonBody};
use crate::accounts::api_tokens::{self, NewToken};
use crate::auth::caller::Caller;
use crate::state::AppState;

const READ: &str = "gateway:api_token:read";
const CREATE: &str = "gateway:api_token:create";
const DELETE: &str = "gateway:api_token:delete";

/// A token as the API shows it (identity contract).
fn view(token: &ApiToken) -> Value {
    json!({
        "id": token.id,
        "name": token.name,
        "role": token.role,
        "user_email": token.user_email,
        "expires_at": token.expires_at,
        "created_at": token.created_at,
        "created_by": token.created_by,
        "revoked_at": token.revoked_at,
        "revoked_by": token.revoked_by,
    })
}

fn token_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id.trim())
        .map_err(|_| ApiError::bad_request(format!("{id:?} is not a token id (a UUID)")))
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.authorize(&state, READ).await?;
    let tokens = projections::api_tokens::list(&state.pool).await?;
    Ok(Json(Value::Array(tokens.iter().map(view).collect())))
}

pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.authorize(&state, READ).await?;
    let id = token_id(&id)?;
    let token = projections::api_tokens::by_id(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no API token {id}")))?;
    Ok(Json(view(&token)))
}

#[derive(Debug, Deserialize)]
pub struct CreateRequest {
    name: String,
    role: String,
    user_email: Option<String>,
    expires_at: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.authorize(&state, CREATE).await?;
    let created = api_tokens::create(
        &state.pool,
        &state.appender,
        &caller.requester(),
        NewToken {
            name: &body.name,
            role: &body.role,
            user_email: body.user_email.as_deref(),
            expires_at: body.expires_at.as_deref(),
        },
    )
    .await?;
    let mut response = view(&created.token);
    response["token"] = json!(created.secret);
    Ok((StatusCode::CREATED, Json(response)))
}

pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.authorize(&state, DELETE).await?;
    let token =
        api_tokens::revoke(&state.pool, &state.appender, &caller.requester(), &id, None).await?;
    Ok(Json(view(&token)))
}
