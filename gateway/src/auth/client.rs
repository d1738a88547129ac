//! Who is on the other end of a request, as far as the network says: the
//! client address (through trusted proxies only) and the event [`Source`]
//! (ip, user agent, request id, instance) every event of the request carries.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use events::Source;
use ipnet::IpNet;

use crate::state::AppState;

/// Longest user agent recorded in an event; the rest is cut.
const MAX_USER_AGENT: usize = 256;

/// The client of this request, for events and per-client limits.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub ip: IpAddr,
    pub source: Source,
}

/// Parse `TRUSTED_PROXY_CIDRS` (a bare address counts as a /32 or /128).
pub fn parse_trusted_proxies(cidrs: &[String]) -> Result<Vec<IpNet>, String> {
    cidrs
        .iter()
        .map(|text| {
            text.parse::<IpNet>()
                .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("TRUSTED_PROXY_CIDRS: {text:?} is not a CIDR or an address"))
        })
        .collect()
}

/// The client address: the peer, unless the peer is a trusted proxy, in which
/// case the nearest `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| part.trim().parse().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .unwrap_or(peer)
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
        let ip = client_ip(peer, &parts.headers, &state.identity.trusted_proxies);
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
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = parse_trusted_proxies(&["10.0.0.0/8".into(), "192.168.1.1".into()]).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("203.0.113.9, 198.51.100.7, 10.1.2.3"),
        );
        let direct: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(client_ip(direct, &headers, &trusted), direct);
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        assert_eq!(
            client_ip(proxy, &headers, &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &trusted), proxy);
        assert!(parse_trusted_proxies(&["nonsense".into()]).is_err());
    }

    #[test]
    fn request_ids_are_kept_only_when_sane() {
        let mut headers = HeaderMap::new();
        headers.insert("x-request-id", HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&headers), "abc-123");
        headers.insert("x-request-id", HeaderValue::from_static("a b<script>"));
        assert_eq!(request_id(&headers).len(), 36);
    }
}
