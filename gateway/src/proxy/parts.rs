//! The parts of the proxy that outlive a request, built once at start and
//! shared by every request: the rack client, the failed-authentication
//! limiter, the stdout request log, the trusted proxies, the streams still
//! running, and the scrubber that knows the rack's credentials.

use std::sync::Arc;

use secrecy::ExposeSecret;

use super::auth_failure_limit::AuthFailureLimiter;
use super::inflight::Inflight;
use super::record::RequestLog;
use super::upstream::{Rack, RackConfigError};
use crate::net::client_addr::{BadCidr, TrustedProxies};
use crate::settings::Settings;
use decision::redact::Scrubber;

#[derive(Debug, thiserror::Error)]
pub enum ProxySetupError {
    #[error(transparent)]
    Rack(#[from] RackConfigError),
    #[error(transparent)]
    TrustedProxies(#[from] BadCidr),
}

/// What every proxied request shares (`AppState::proxy`).
pub struct ProxyParts {
    /// `None` when `RACK_HOST` is not set: every allowed request then gets 503.
    pub rack: Option<Rack>,
    pub auth_failure_limiter: Arc<AuthFailureLimiter>,
    pub request_log: RequestLog,
    pub trusted_proxies: TrustedProxies,
    /// Streams and websockets still open: a stop waits for their `proxy.response`.
    pub inflight: Arc<Inflight>,
    /// Knows the rack's credentials in every form they travel in; each
    /// request's scrubber starts from this one.
    pub scrubber: Scrubber,
}

impl ProxyParts {
    pub fn new(settings: &Settings) -> Result<ProxyParts, ProxySetupError> {
        let rack = Rack::from_settings(settings)?;
        let mut scrubber = Scrubber::new();
        if let Some(token) = &settings.rack.token {
            scrubber.add_basic(&settings.rack.username, token.expose_secret());
        }
        match &rack {
            Some(rack) => tracing::info!(
                rack = %settings.rack.name,
                tls_trust = rack.trust.map(|t| t.as_str()).unwrap_or("plain_http"),
                "rack proxy ready"
            ),
            None => tracing::warn!("RACK_HOST is not set: the rack proxy will answer 503"),
        }
        Ok(ProxyParts {
            rack,
            auth_failure_limiter: Arc::new(AuthFailureLimiter::new(
                settings.proxy.auth_failure_limit,
                settings.proxy.auth_failure_window,
            )),
            request_log: if settings.proxy.request_log {
                RequestLog::stdout()
            } else {
                RequestLog::off()
            },
            trusted_proxies: TrustedProxies::parse(&settings.server.trusted_proxy_cidrs)?,
            inflight: Arc::new(Inflight::new()),
            scrubber,
        })
    }
}
