//! The gateway's own JSON API (README "Signing in"). Every route
//! takes a [`crate::auth::caller::Caller`] and asks `rbac` before acting;
//! every change is an event appended through `accounts` or `auth::sessions`.
//!
//! - [`info`]: `GET /api/v1/info` (who am I), `POST /api/v1/auth/logout`
//! - [`users`]: users and their sessions (admin: `gateway:user:*`; a user may read their own)
//! - [`api_tokens`]: API tokens (admin: `gateway:api_token:*`)
//! - [`error`]: [`ApiError`] (JSON errors, one status mapping) and [`JsonBody`]

pub mod api_tokens;
pub mod error;
pub mod info;
pub mod users;

use axum::routing::{get, post};
use axum::Router;

pub use error::{ApiError, JsonBody};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/info", get(info::info))
        .route("/api/v1/auth/logout", post(info::logout))
        .route("/api/v1/users", get(users::list).post(users::create))
        .route("/api/v1/users/{email}", get(users::show).put(users::update))
        .route("/api/v1/users/{email}/disable", post(users::disable))
        .route("/api/v1/users/{email}/sessions", get(users::sessions))
        .route(
            "/api/v1/users/{email}/sessions/revoke_all",
            post(users::revoke_all),
        )
        .route(
            "/api/v1/users/{email}/sessions/{id}/revoke",
            post(users::revoke_session),
        )
        .route(
            "/api/v1/api-tokens",
            get(api_tokens::list).post(api_tokens::create),
        )
        .route(
            "/api/v1/api-tokens/{id}",
            get(api_tokens::show).delete(api_tokens::revoke),
        )
}
