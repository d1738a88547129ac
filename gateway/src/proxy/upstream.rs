//! The rack, as the proxy talks to it: `RACK_HOST` with the rack's own Basic
//! credentials (`RACK_USERNAME:RACK_TOKEN`), over a TLS configuration that
//! trusts only what the operator said to trust (see [`crate::net::rack_tls`]).
//!
//! One HTTP client (connection pool) for all requests, and the same TLS
//! configuration for websockets. Nothing here logs a header value.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::{HeaderMap, HeaderValue};
use rustls::ClientConfig;
use secrecy::ExposeSecret;
use serde::Deserialize;

use crate::net::rack_tls::{self, RackTrust};
use crate::settings::Settings;

/// How long reading the current env (before an env change) may take in all.
const ENV_READ_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum RackConfigError {
    #[error("RACK_HOST {0:?} is not an http(s) URL")]
    Host(String),
    #[error(transparent)]
    Tls(#[from] rack_tls::RackTlsError),
    #[error("RACK_TOKEN is required when RACK_HOST is set")]
    NoToken,
    #[error("building the HTTP client: {0}")]
    Client(String),
}

pub struct Rack {
    /// `scheme://host[:port][/prefix]`, no trailing slash.
    base: String,
    /// The same for websockets (`ws`/`wss`).
    ws_base: String,
    /// What a browser on the rack's own origin would send (`Origin` on websockets).
    origin: HeaderValue,
    authorization: HeaderValue,
    pub http: reqwest::Client,
    /// Set for `https` racks.
    tls: Option<Arc<ClientConfig>>,
    pub trust: Option<RackTrust>,
    pub connect_timeout: Duration,
}

impl std::fmt::Debug for Rack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rack")
            .field("base", &self.base)
            .field("trust", &self.trust)
            .finish_non_exhaustive()
    }
}

impl Rack {
    /// `None` when no rack is configured (the proxy then answers 503).
    pub fn from_settings(settings: &Settings) -> Result<Option<Rack>, RackConfigError> {
        let Some(host) = settings.rack.host.as_deref() else {
            return Ok(None);
        };
        let url = url::Url::parse(host).map_err(|_| RackConfigError::Host(host.to_owned()))?;
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return Err(RackConfigError::Host(host.to_owned())),
        };
        if url.host_str().is_none() || url.query().is_some() || !url.username().is_empty() {
            return Err(RackConfigError::Host(host.to_owned()));
        }
        let token = settings
            .rack
            .token
            .as_ref()
            .ok_or(RackConfigError::NoToken)?;
        let mut authorization = HeaderValue::from_str(&format!(
            "Basic {}",
            STANDARD.encode(format!(
                "{}:{}",
                settings.rack.username,
                token.expose_secret()
            ))
        ))
        .map_err(|_| RackConfigError::NoToken)?;
        authorization.set_sensitive(true);

        let authority = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let prefix = url.path().trim_end_matches('/');
        let scheme = url.scheme();
        let base = format!("{scheme}://{authority}{prefix}");
        let ws_base = format!("{}://{authority}{prefix}", if https { "wss" } else { "ws" });
        let origin = HeaderValue::from_str(&format!("{scheme}://{authority}"))
            .map_err(|_| RackConfigError::Host(host.to_owned()))?;

        let connect_timeout = settings.proxy.rack_connect_timeout;
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(connect_timeout)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60))
            .http1_only();
        let (tls, trust) = if https {
            let (config, trust) = rack_tls::client_config(
                crate::net::crypto_provider(),
                settings.rack.tls_ca_file.as_deref(),
                settings.rack.tls_fingerprint.as_deref(),
                settings.server.dev_mode,
            )?;
            if trust == RackTrust::DevAcceptAny {
                tracing::warn!(
                    "DEV_MODE: the rack's TLS certificate is not verified; set RACK_TLS_FINGERPRINT or RACK_TLS_CA_FILE"
                );
            }
            builder = builder.use_preconfigured_tls((*config).clone());
            (Some(config), Some(trust))
        } else {
            (None, None)
        };
        let http = builder
            .build()
            .map_err(|e| RackConfigError::Client(e.to_string()))?;
        Ok(Some(Rack {
            base,
            ws_base,
            origin,
            authorization,
            http,
            tls,
            trust,
            connect_timeout,
        }))
    }

    /// The rack URL for an authorised path (already encoded) and the original query.
    pub fn url_for(&self, path: &str, query: Option<&str>) -> String {
        match query {
            Some(q) if !q.is_empty() => format!("{}{path}?{q}", self.base),
            _ => format!("{}{path}", self.base),
        }
    }

    pub fn ws_url_for(&self, path: &str) -> String {
        format!("{}{path}", self.ws_base)
    }

    pub fn authorization(&self) -> &HeaderValue {
        &self.authorization
    }

    pub fn origin(&self) -> &HeaderValue {
        &self.origin
    }

    pub fn tls(&self) -> Option<Arc<ClientConfig>> {
        self.tls.clone()
    }

    /// The app's current env (`K=V` lines) the way the CLI reads it: the newest
    /// release's `env`. `Ok("")` for an app without releases. Errors are our
    /// own descriptions (never a value from the reply).
    pub async fn current_env(&self, app: &str, headers: &HeaderMap) -> Result<String, String> {
        let read = async {
            let app = encode_segment(app);
            let list: Vec<ReleaseRef> = self
                .get_json(&format!("/apps/{app}/releases?limit=1"), headers)
                .await?;
            let Some(newest) = list.into_iter().next() else {
                return Ok(String::new());
            };
            let release: ReleaseEnv = self
                .get_json(
                    &format!("/apps/{app}/releases/{}", encode_segment(&newest.id)),
                    headers,
                )
                .await?;
            Ok(release.env)
        };
        tokio::time::timeout(ENV_READ_TIMEOUT, read)
            .await
            .map_err(|_| format!("no answer within {ENV_READ_TIMEOUT:?}"))?
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path_and_query: &str,
        headers: &HeaderMap,
    ) -> Result<T, String> {
        let response = self
            .http
            .get(format!("{}{path_and_query}", self.base))
            .headers(headers.clone())
            .header(http::header::AUTHORIZATION, self.authorization.clone())
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| describe_reqwest_error(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("the rack answered {status} reading the env"));
        }
        response
            .json::<T>()
            .await
            .map_err(|_| "the rack's release reply was not the expected JSON".to_owned())
    }
}

#[derive(Deserialize)]
struct ReleaseRef {
    id: String,
}

#[derive(Deserialize)]
struct ReleaseEnv {
    #[serde(default)]
    env: String,
}

/// Percent-encode one path segment (everything but RFC 3986 unreserved characters).
pub fn encode_segment(segment: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(segment, SEGMENT).to_string()
}

/// A description of a failed exchange with the rack, for logs and events:
/// the kind of failure and its chain of causes, never a URL with a query or
/// a header value (reqwest errors carry the URL; it is dropped here).
pub fn describe_reqwest_error(error: &reqwest::Error) -> String {
    let kind = if error.is_connect() {
        "connect"
    } else if error.is_timeout() {
        "timeout"
    } else if error.is_body() {
        "body"
    } else if error.is_request() {
        "request"
    } else if error.is_decode() {
        "decode"
    } else {
        "other"
    };
    // reqwest's own Display names the URL; only the causes below it are kept.
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    if causes.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {}", causes.join(": "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded() {
        assert_eq!(encode_segment("myapp"), "myapp");
        assert_eq!(encode_segment("a b/c"), "a%20b%2Fc");
        assert_eq!(encode_segment("R1.x_y~z-"), "R1.x_y~z-");
    }
}
