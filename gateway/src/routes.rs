//! The whole HTTP surface in one place: which routers are mounted, and the
//! middleware stack in order (outermost first), one line per layer.

use axum::http::Request;
use axum::Router;
use tower_http::trace::TraceLayer;

use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(crate::health::router())
        .merge(crate::proxy::handler::router())
        // Structured request spans in the JSON logs (method, path, status, latency); never
        // headers, bodies or the query string (rack API queries can carry secrets).
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            tracing::debug_span!("request", method = %request.method(), path = %request.uri().path())
        }))
        .with_state(state)
}
