//! `GET /api/v1/audit/export?from_seq=N&to_seq=M`: the export bundle as a
//! streamed `.tar.gz`, for callers with `gateway:audit_log:read` (admin,
//! auditor). The download is recorded as `audit.exported` before the first
//! byte goes out; if that event cannot be committed the download is refused
//! (503), as every action is.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use events::catalogue::EventPayload;
use events::store::AppendError;
use events::Source;
use serde::Deserialize;
use serde_json::json;
use tokio_stream::wrappers::ReceiverStream;

use super::export::{self, ExportError, ExportPlan, ExportRange, TarGzSink};
use crate::auth::principal::{
    authenticate, secret_from_headers, AuthFailure, Principal, SessionRules,
};
use crate::state::AppState;

pub const EXPORT_PERMISSION: &str = "gateway:audit_log:read";

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/audit/export", get(download))
}

#[derive(Debug, Deserialize)]
struct ExportQuery {
    from_seq: Option<u64>,
    to_seq: Option<u64>,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

fn unauthorized(failure: AuthFailure) -> Response {
    let mut response = error(StatusCode::UNAUTHORIZED, failure.to_string());
    response
        .headers_mut()
        .insert("x-error-reason", HeaderValue::from_static(failure.reason()));
    response
}

async fn download(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: Result<Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let principal = match authorized(&state, &headers).await {
        Ok(principal) => principal,
        Err(response) => return response,
    };
    let Ok(Query(query)) = query else {
        return error(
            StatusCode::BAD_REQUEST,
            "from_seq and to_seq must be positive integers",
        );
    };
    let range = ExportRange {
        from_seq: query.from_seq,
        to_seq: query.to_seq,
    };
    let (plan, keys) = match plan_bundle(&state, range).await {
        Ok(planned) => planned,
        Err(response) => return response,
    };
    if let Err(response) =
        record_export(&state, &principal, &plan, source(&state, peer, &headers)).await
    {
        return response;
    }
    stream_bundle(&state, plan, keys)
}

/// The caller, signed in and allowed to read the audit log.
async fn authorized(state: &AppState, headers: &HeaderMap) -> Result<Principal, Response> {
    let secret = match secret_from_headers(headers) {
        Ok(Some(secret)) => secret,
        Ok(None) => return Err(unauthorized(AuthFailure::Missing)),
        Err(failure) => return Err(unauthorized(failure)),
    };
    let rules = SessionRules {
        web_idle_timeout: state.settings.auth.web_session_idle_timeout,
    };
    let principal = match authenticate(&state.pool, rules, &secret).await {
        Ok(principal) => principal,
        Err(AuthFailure::Unavailable) => {
            return Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "authentication is temporarily unavailable",
            ))
        }
        Err(failure) => return Err(unauthorized(failure)),
    };
    if let Err(denial) = principal.authorize(EXPORT_PERMISSION) {
        return Err(error(StatusCode::FORBIDDEN, denial.message));
    }
    // A session still restricted at sign-in (MFA to verify or enrol) reads nothing.
    if crate::mfa::require::gate(&state.settings.mfa, &principal) != crate::mfa::require::Gate::Open
    {
        return Err(error(
            StatusCode::FORBIDDEN,
            "MFA verification or enrollment required before anything else (see /app/auth/mfa/challenge)",
        ));
    }
    Ok(principal)
}

/// The bundle's extent, and the verifier keys it carries.
async fn plan_bundle(
    state: &AppState,
    range: ExportRange,
) -> Result<(ExportPlan, Vec<(String, String)>), Response> {
    let plan = match export::plan(&state.pool, state.chain(), range).await {
        Ok(plan) => plan,
        Err(ExportError::Invalid(message)) => return Err(error(StatusCode::BAD_REQUEST, message)),
        Err(e) => {
            tracing::error!(error = %e, "export: cannot plan the bundle");
            return Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the audit log cannot be read right now",
            ));
        }
    };
    let keys = match export::bundle_keys(&state.pool, state.chain(), &state.archive.verifier_keys())
        .await
    {
        Ok(keys) => keys,
        Err(e) => {
            tracing::error!(error = %e, "export: cannot read the published keys");
            return Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the audit log cannot be read right now",
            ));
        }
    };
    Ok((plan, keys))
}

/// Where the request came from, as the event records it.
fn source(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> Source {
    Source {
        ip: Some(peer.ip().to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(256).collect()),
        request_id: headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(128).collect()),
        instance: Some(state.instance.clone()),
    }
}

/// `audit.exported`, committed before the first byte goes out; the download is refused without it.
async fn record_export(
    state: &AppState,
    principal: &Principal,
    plan: &ExportPlan,
    source: Source,
) -> Result<(), Response> {
    let recorded = state
        .appender
        .append(
            plan.exported("api", "tar.gz")
                .draft(principal.actor())
                .with_source(source),
        )
        .await;
    match recorded {
        Ok(_) => Ok(()),
        Err(AppendError::Rejected(reason)) => Err(error(StatusCode::BAD_REQUEST, reason)),
        Err(e) => {
            tracing::error!(error = %e, "export refused: audit event not committed");
            Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "audit log unavailable; the export was refused",
            ))
        }
    }
}

/// The bundle as a streamed `.tar.gz`, written by a task as the client reads.
fn stream_bundle(state: &AppState, plan: ExportPlan, keys: Vec<(String, String)>) -> Response {
    let name = format!(
        "rack-gateway-export-{}-{}-{}",
        plan.chain.chars().take(8).collect::<String>(),
        plan.first_seq(),
        plan.last_seq
    );
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    let pool = state.pool.clone();
    let prefix = state.archive.prefix.clone();
    let top = name.clone();
    tokio::spawn(async move {
        let mut sink = TarGzSink::new(tx.clone(), &top, chrono::Utc::now());
        let written = export::write_bundle(&pool, &plan, &prefix, &keys, &mut sink).await;
        let result = match written {
            Ok(summary) => sink
                .finish()
                .await
                .map(|_| summary)
                .map_err(ExportError::from),
            Err(e) => Err(e),
        };
        match result {
            Ok(summary) => tracing::info!(
                first = summary.plan.first_seq(),
                last = summary.plan.last_seq,
                bytes = summary.bytes,
                "export downloaded"
            ),
            Err(e) => {
                tracing::error!(error = %e, "export download failed midway");
                // The client sees a broken stream, never a truncated bundle passed off as whole.
                let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
            }
        }
    });
    let mut response = Response::new(Body::from_stream(ReceiverStream::new(rx)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/gzip"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.tar.gz\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}
