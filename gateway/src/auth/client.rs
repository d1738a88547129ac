//! Who is on the other end of a request, as far as the network says: the
//! client address (through trusted proxies only, see [`crate::net::client_addr`]) and the event [`Source`]
//! (ip, user agent, request id, instance) every event of the request carries.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use events::Source;

use crate::state::AppState;

/// Longest user agent recorded in an event; the rest is cut.
const MAX_USER_AGENT: usize = 256;

/// The client of this request, for events and per-client limits.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub ip: IpAddr,
    pub source: Source,
}

/// `X-Request-Id` when it is a sane token, else a fresh UUID.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 128
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

fn user_agent(headers: &HeaderMap) -> Option<String> {
    let text = headers.get(http::header::USER_AGENT)?.to_str().ok()?.trim();
    if text.is_empty() {
        return None;
    }
    Some(text.chars().take(MAX_USER_AGENT).collect())
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<ClientInfo, Infallible> {
        if let Some(info) = parts.extensions.get::<ClientInfo>() {
            return Ok(info.clone());
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let ip = state
            .identity
            .trusted_proxies
            .client_ip(peer, &parts.headers);
        let info = ClientInfo {
            ip,
            source: Source {
                ip: Some(ip.to_string()),
                user_agent: user_agent(&parts.headers),
                request_id: Some(request_id(&parts.headers)),
                instance: Some(state.instance.clone()),
            },
        };
        // Every event of one request carries the same request id.
        parts.extensions.insert(info.clone());
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn request_ids_are_kept_only_when_sane() {
        let mut headers = HeaderMap::new();
        headers.insert("x-request-id", HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&headers), "abc-123");
        headers.insert("x-request-id", HeaderValue::from_static("a b<script>"));
        assert_eq!(request_id(&headers).len(), 36);
    }
}
