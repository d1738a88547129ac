//! Choosing a route the way the rack's router does (see [`crate::routes`]).

use http::{HeaderMap, Method};

use super::{RouteMatch, ROUTES};
use crate::path::NormalizedPath;

/// Why no route was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// No route: 404 with a `deny` event; never forwarded.
    #[error("unknown rack route")]
    NotFound,
    /// The path is a websocket route but the request is no upgrade, or the
    /// request is an upgrade to a route that is not a websocket.
    #[error("websocket upgrade does not match the route")]
    WebSocketMismatch,
}

impl RouteError {
    pub fn status(&self) -> http::StatusCode {
        match self {
            RouteError::NotFound => http::StatusCode::NOT_FOUND,
            RouteError::WebSocketMismatch => http::StatusCode::BAD_REQUEST,
        }
    }
}

/// Choose the route for a request. `websocket_upgrade`: see [`is_websocket_upgrade`].
pub fn match_route(
    method: &Method,
    path: &NormalizedPath,
    websocket_upgrade: bool,
) -> Result<RouteMatch, RouteError> {
    let mut mismatch = false;
    for route in ROUTES {
        if route.method != "*" && route.method != method.as_str() {
            continue;
        }
        let Some(params) = match_pattern(route.pattern, &path.segments) else {
            continue;
        };
        if route.websocket != websocket_upgrade {
            mismatch = true;
            continue;
        }
        return Ok(RouteMatch {
            route,
            method: method.clone(),
            params,
        });
    }
    if mismatch {
        Err(RouteError::WebSocketMismatch)
    } else {
        Err(RouteError::NotFound)
    }
}

/// The request asks for a websocket (`Upgrade` names `websocket`, any case).
/// Only a `GET` can be one: pass `method == GET && is_websocket_upgrade(..)`.
pub fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers.get_all(http::header::UPGRADE).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("websocket"))
        })
    })
}

fn match_pattern(
    pattern: &'static str,
    segments: &[String],
) -> Option<Vec<(&'static str, String)>> {
    let mut params = Vec::new();
    let mut parts = pattern.trim_start_matches('/').split('/').peekable();
    let mut count = 0;
    while let Some(part) = parts.next() {
        let i = count;
        count += 1;
        if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix("...}")) {
            // The rest of the path: one or more segments.
            if parts.peek().is_some() || segments.len() <= i {
                return None;
            }
            params.push((name, segments[i..].join("/")));
            return Some(params);
        }
        let segment = segments.get(i)?;
        if let Some(inner) = part.strip_prefix('{') {
            let (name, suffix) = inner.split_once('}')?;
            let value = segment.strip_suffix(suffix)?;
            if value.is_empty() {
                return None;
            }
            params.push((name, value.to_owned()));
        } else if part != segment {
            return None;
        }
    }
    (segments.len() == count).then_some(params)
}
