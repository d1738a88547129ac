//! The whole HTTP surface in one place: which routers are mounted, and the
//! middleware stack in order (outermost first), one line per layer.

use axum::Router;
use tower_http::trace::TraceLayer;

use crate::state::AppState;

fn request_span(request: &axum::extract::Request) -> tracing::Span {
    tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(crate::health::router())
        .merge(crate::auth::router())
        .merge(crate::api::router())
        .merge(crate::mfa::routes::router())
        .merge(crate::mfa::webauthn_routes::router())
        .merge(crate::web::router())
        .merge(crate::archive::web::router())
        .merge(crate::proxy::handler::router())
        // Structured request spans in the JSON logs (method, path, status, latency); never headers,
        // bodies or the query (OAuth callbacks carry the code and state there; rack API queries can
        // carry secrets).
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}
