//! Liveness, readiness and metrics: `GET /health`, `GET /ready`, `GET /metrics`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/api/v1/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
}

/// Alive: the process answers. No dependency is checked, so orchestrators do not restart us for a database outage.
async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok", "service": "rack-gateway"}))
}

/// Ready to take traffic: the database answers and the appender can commit.
/// Anything less means every request would be refused (fail closed), so say so.
async fn ready(State(state): State<AppState>) -> Response {
    let mut problems = Vec::new();
    let database = tokio::time::timeout(
        Duration::from_secs(1),
        sqlx::query("SELECT 1").execute(&state.pool),
    )
    .await;
    match database {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => problems.push(format!("database: {e}")),
        Err(_) => problems.push("database: no answer within 1s".to_owned()),
    }
    if !state.appender.is_healthy() {
        problems.push("audit appender: last commit failed; appends are refused".to_owned());
    }
    if let Some(fault) = state.checkpoints.fault() {
        problems.push(format!("checkpoint signer: {fault}"));
    }
    if let Some(problem) = state.archive.status.problem() {
        problems.push(problem);
    }
    if problems.is_empty() {
        (StatusCode::OK, Json(json!({"status": "ready"}))).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "problems": problems})),
        )
            .into_response()
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    match events::store::newest_checkpoint(&state.pool, state.chain()).await {
        Ok(Some(newest)) => {
            state.metrics.checkpoint_size.set(newest.size);
            state
                .metrics
                .checkpoint_age_seconds
                .set(newest.age_seconds.max(0.0) as i64);
        }
        Ok(None) => {
            state.metrics.checkpoint_size.set(0);
            state.metrics.checkpoint_age_seconds.set(-1);
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read checkpoints"),
    }
    state
        .metrics
        .checkpoint_leader
        .set(i64::from(state.checkpoints.leader.load(Ordering::Relaxed)));
    crate::archive::refresh_metrics(&state.archive.status, &state.pool, state.chain()).await;
    let mut body = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut body, &state.metrics.registry) {
        tracing::error!(error = %e, "metrics encoding failed");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
