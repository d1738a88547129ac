//! Errors of the JSON API, mapped to a status in one place: the body is
//! `{"error": "<message>"}`, and a 401 also carries `X-Error-Reason`.
//! 5xx messages say what failed for the caller, never internals.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use decision::rbac::Denial;
use events::store::AppendError;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::accounts::AccountError;
use crate::auth::AuthFailure;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// `X-Error-Reason` (401s and some 403s): a stable code for clients and tests.
    pub reason: Option<&'static str>,
    pub retry_after_seconds: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            reason: None,
            retry_after_seconds: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn with_reason(mut self, reason: &'static str) -> ApiError {
        self.reason = Some(reason);
        self
    }

    /// The audit chain or the database did not answer: the action did not happen.
    pub fn unavailable() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the gateway cannot record this action right now; nothing was changed, try again",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({"error": self.message}))).into_response();
        let headers = response.headers_mut();
        if let Some(reason) = self.reason {
            headers.insert("x-error-reason", HeaderValue::from_static(reason));
        }
        if let Some(seconds) = self.retry_after_seconds {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> ApiError {
        match &error {
            AccountError::Audit(e) => {
                tracing::error!(error = %e, "audit append failed; account change refused");
                ApiError::unavailable()
            }
            AccountError::Database(e) => {
                tracing::error!(error = %e, "database error in an account operation");
                ApiError::unavailable()
            }
            _ => ApiError::new(error.status(), error.to_string()),
        }
    }
}

impl From<AppendError> for ApiError {
    fn from(error: AppendError) -> ApiError {
        ApiError::from(AccountError::from(error))
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> ApiError {
        ApiError::from(AccountError::Database(error))
    }
}

impl From<Denial> for ApiError {
    fn from(denial: Denial) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, denial.message).with_reason("permission_denied")
    }
}

impl From<AuthFailure> for ApiError {
    fn from(failure: AuthFailure) -> ApiError {
        if failure == AuthFailure::Unavailable {
            return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, failure.to_string())
                .with_reason(failure.reason());
        }
        ApiError::new(StatusCode::UNAUTHORIZED, failure.to_string()).with_reason(failure.reason())
    }
}

/// A JSON request body whose rejections are JSON errors too.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<JsonBody<T>, ApiError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let message = match &rejection {
        JsonRejection::MissingJsonContentType(_) => {
            "expected a JSON body (Content-Type: application/json)".to_owned()
        }
        other => format!("invalid JSON body: {}", other.body_text()),
    };
    ApiError::bad_request(message)
}
