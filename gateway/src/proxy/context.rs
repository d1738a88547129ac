//! What the proxy knows about one request as it moves through the phases:
//! filled in phase by phase, read by the audit records and the request line.

use std::net::IpAddr;
use std::time::Instant;

use chrono::{DateTime, Utc};
use decision::redact;
use events::catalogue::proxy::EnvChange;
use events::{Actor, Source};
use http::{HeaderMap, Method};
use serde_json::Value;

use crate::auth::principal::{CredentialKind, Principal};

/// Longest user agent or client request id kept (longer ones are cut).
const MAX_HEADER_CHARS: usize = 256;

#[derive(Debug, Clone)]
pub struct RequestContext {
    /// Ours, a fresh UUID for every request: in events, upstream, the reply.
    pub request_id: String,
    /// The client's own `X-Request-Id`, if any: recorded as a parameter only.
    pub client_request_id: Option<String>,
    pub started: Instant,
    pub started_at: DateTime<Utc>,
    pub client_ip: IpAddr,
    pub user_agent: Option<String>,
    pub method: Method,
    /// The path after `/api/v1/rack-proxy`, as sent (still percent-encoded).
    pub raw_path: String,
    pub query: Option<String>,
    pub websocket: bool,
    pub principal: Option<Principal>,
    /// The normalised path that was authorised and is forwarded.
    pub path: Option<String>,
    pub route: Option<String>,
    pub permission: Option<String>,
    /// Redacted request parameters.
    pub params: Value,
    /// An env change's new keys, for `proxy.request` (never values).
    pub env_change: Option<EnvChange>,
    /// The keys it adds, removes and changes, read after `proxy.request`
    /// committed, for `proxy.response`.
    pub env_diff: Option<EnvChange>,
    /// The run/exec command as the rack will read it, redacted.
    pub command: Option<String>,
    /// Set once `proxy.request` with decision `allow` is committed.
    pub request_seq: Option<u64>,
    /// Removes the rack token and the presented credential from any text we
    /// record or log (upstream error descriptions).
    pub scrubber: redact::Scrubber,
}

impl RequestContext {
    pub fn new(
        method: Method,
        raw_path: String,
        query: Option<String>,
        headers: &HeaderMap,
        client_ip: IpAddr,
        websocket: bool,
    ) -> RequestContext {
        RequestContext {
            request_id: uuid::Uuid::new_v4().to_string(),
            client_request_id: header_text(headers, "x-request-id"),
            started: Instant::now(),
            started_at: Utc::now(),
            client_ip,
            user_agent: header_text(headers, "user-agent"),
            method,
            raw_path,
            query,
            websocket,
            principal: None,
            path: None,
            route: None,
            permission: None,
            params: Value::Null,
            env_change: None,
            env_diff: None,
            command: None,
            request_seq: None,
            scrubber: redact::Scrubber::new(),
        }
    }

    /// The caller as events record them; anonymous until authenticated.
    pub fn actor(&self) -> Actor {
        self.principal
            .as_ref()
            .map(Principal::actor)
            .unwrap_or_else(Actor::anonymous)
    }

    pub fn source(&self) -> Source {
        Source {
            ip: Some(self.client_ip.to_string()),
            user_agent: self.user_agent.clone(),
            request_id: Some(self.request_id.clone()),
            instance: None,
        }
    }

    /// Who the rack's own audit log names (`Convox-Actor`) and the request
    /// line's `user_email`: the user's email, or `token:<name>` for a token
    /// without an owner.
    pub fn acting_as(&self) -> Option<String> {
        let principal = self.principal.as_ref()?;
        match (&principal.email, &principal.token_name, principal.kind) {
            (Some(email), _, _) => Some(email.clone()),
            (None, Some(name), CredentialKind::ApiToken) => Some(format!("token:{name}")),
            _ => Some(principal.credential_id.to_string()),
        }
    }

    /// The path to record and log: the authorised one, or what was asked for
    /// before it was understood; anything shaped like a credential redacted.
    pub fn shown_path(&self) -> String {
        let path = self.path.clone().unwrap_or_else(|| {
            let mut raw: String = self.raw_path.chars().take(512).collect();
            if raw.is_empty() {
                raw.push('/');
            }
            raw
        });
        redact::redact_value(&path)
    }

    pub fn elapsed_us(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// A header's text for the record: control characters dropped, cut to a
/// sane length, and anything shaped like a credential redacted (clients put
/// surprising things in user agents and request ids).
fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    let value = headers.get(name)?.to_str().ok()?;
    let cleaned: String = value
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_HEADER_CHARS)
        .collect();
    (!cleaned.is_empty()).then(|| redact::redact_value(&cleaned))
}
