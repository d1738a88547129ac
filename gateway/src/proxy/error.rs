//! Why the proxy ended a request itself, who is at fault, and the one place
//! that maps that to a status and a body.
//!
//! Bodies are what the rack itself would send: plain text `message\n`, or
//! `{"error": message}` when the client asked for JSON (the CLI prints either).
//! 5xx bodies say what happened in user terms and carry the request id, never
//! an internal detail; the detail goes to the log and the audit event.

use axum::body::Body;
use axum::response::Response;
use decision::rbac::Denial;
use http::{header, HeaderMap, HeaderValue, StatusCode};

use crate::auth::principal::AuthFailure;

/// Who caused the failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The request itself: credentials, path, permissions, size.
    Client,
    /// The rack: unreachable, untrusted certificate, broken reply.
    Upstream,
    /// The gateway: audit store, configuration, a bug.
    Gateway,
}

impl Fault {
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Client => "client",
            Fault::Upstream => "upstream",
            Fault::Gateway => "gateway",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyError {
    /// Credentials missing, unknown, expired, revoked, owner disabled, or a browser cookie.
    Unauthenticated(AuthFailure),
    /// Too many failed authentications from this address in this window.
    RateLimited { retry_after_secs: u64 },
    /// The path cannot be normalised safely (`..`, encoded slashes, ...).
    BadPath(String),
    /// No rack route has this method and path: never forwarded.
    UnknownRoute(String),
    /// A websocket upgrade to a plain route, or a plain request to a websocket route.
    WebSocketMismatch,
    /// The websocket handshake itself is malformed.
    BadUpgrade(String),
    /// RBAC or policy said no.
    Forbidden(Denial),
    /// The MFA the permission needs was not shown (or the code was refused).
    Mfa(crate::mfa::require::MfaDenial),
    /// A browser's cross-site request (`Origin` of another host, or
    /// `Sec-Fetch-Site: cross-site`/`same-site`) to a websocket or a
    /// state-changing route: what riding a cached credential looks like.
    BrowserRequest(String),
    /// The client's request body broke off while it was being sent on.
    ClientBodyBroken,
    /// A form the proxy reads did not arrive within `CLIENT_BODY_TIMEOUT_SECONDS`.
    ClientBodyTimeout { seconds: u64 },
    /// A form the proxy must read to decide is larger than `PROXY_MAX_FORM_BYTES`.
    FormTooLarge { limit: usize },
    /// A form the proxy must read to decide could not be read as the rack
    /// would read it (415), or its `Content-Type` is ambiguous (400).
    FormUnreadable(decision::routes::BodyError),
    /// The audit event could not be committed: nothing happens (fail closed).
    AuditUnavailable(String),
    /// Authentication could not be checked (the database did not answer).
    AuthUnavailable,
    /// `RACK_HOST` is not set.
    RackNotConfigured,
    /// The rack could not be reached, or its certificate was not trusted.
    RackUnreachable(String),
    /// The rack's reply broke off or could not be read.
    RackReplyBroken(String),
    /// The rack sent no response head in time (`RACK_RESPONSE_TIMEOUT_SECONDS`).
    RackTimeout(String),
    /// Reading the current env before an env change failed.
    EnvUnreadable(String),
    /// Anything else that is our fault.
    Internal(String),
}

impl ProxyError {
    pub fn fault(&self) -> Fault {
        match self {
            ProxyError::Unauthenticated(_)
            | ProxyError::RateLimited { .. }
            | ProxyError::BadPath(_)
            | ProxyError::UnknownRoute(_)
            | ProxyError::WebSocketMismatch
            | ProxyError::BadUpgrade(_)
            | ProxyError::ClientBodyBroken
            | ProxyError::ClientBodyTimeout { .. }
            | ProxyError::Forbidden(_)
            | ProxyError::BrowserRequest(_)
            | ProxyError::FormTooLarge { .. }
            | ProxyError::FormUnreadable(_) => Fault::Client,
            ProxyError::Mfa(denial) if denial.status().is_server_error() => Fault::Gateway,
            ProxyError::Mfa(_) => Fault::Client,
            ProxyError::RackUnreachable(_)
            | ProxyError::RackReplyBroken(_)
            | ProxyError::RackTimeout(_)
            | ProxyError::EnvUnreadable(_) => Fault::Upstream,
            ProxyError::AuditUnavailable(_)
            | ProxyError::AuthUnavailable
            | ProxyError::RackNotConfigured
            | ProxyError::Internal(_) => Fault::Gateway,
        }
    }

    /// The one mapping from error to status.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ProxyError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ProxyError::BadPath(_)
            | ProxyError::WebSocketMismatch
            | ProxyError::BadUpgrade(_)
            | ProxyError::ClientBodyBroken => StatusCode::BAD_REQUEST,
            ProxyError::UnknownRoute(_) => StatusCode::NOT_FOUND,
            ProxyError::ClientBodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ProxyError::Forbidden(_) | ProxyError::BrowserRequest(_) => StatusCode::FORBIDDEN,
            ProxyError::Mfa(denial) => denial.status(),
            ProxyError::FormTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::FormUnreadable(why) => why.status(),
            ProxyError::AuditUnavailable(_) | ProxyError::AuthUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ProxyError::RackNotConfigured => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::RackUnreachable(_)
            | ProxyError::RackReplyBroken(_)
            | ProxyError::EnvUnreadable(_) => StatusCode::BAD_GATEWAY,
            ProxyError::RackTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short stable word for events and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            ProxyError::Unauthenticated(f) => f.reason(),
            ProxyError::RateLimited { .. } => "rate_limited",
            ProxyError::BadPath(_) => "bad_path",
            ProxyError::UnknownRoute(_) => "unknown_route",
            ProxyError::WebSocketMismatch => "websocket_mismatch",
            ProxyError::BadUpgrade(_) => "bad_upgrade",
            ProxyError::ClientBodyBroken => "client_body_broken",
            ProxyError::ClientBodyTimeout { .. } => "client_body_timeout",
            ProxyError::Forbidden(_) => "forbidden",
            ProxyError::Mfa(denial) => denial.reason(),
            ProxyError::BrowserRequest(_) => "browser_request",
            ProxyError::FormTooLarge { .. } => "form_too_large",
            ProxyError::FormUnreadable(_) => "form_unreadable",
            ProxyError::AuditUnavailable(_) => "audit_unavailable",
            ProxyError::AuthUnavailable => "auth_unavailable",
            ProxyError::RackNotConfigured => "rack_not_configured",
            ProxyError::RackUnreachable(_) => "rack_unreachable",
            ProxyError::RackReplyBroken(_) => "rack_reply_broken",
            ProxyError::RackTimeout(_) => "rack_timeout",
            ProxyError::EnvUnreadable(_) => "env_unreadable",
            ProxyError::Internal(_) => "internal",
        }
    }

    /// What the client is told. Client faults explain themselves; our and the
    /// rack's faults say only what happened, never how.
    pub fn public_message(&self) -> String {
        match self {
            ProxyError::Unauthenticated(failure) => failure.to_string(),
            ProxyError::RateLimited { retry_after_secs } => format!(
                "too many failed authentication attempts from this address; retry in {retry_after_secs}s"
            ),
            ProxyError::BadPath(why) => why.clone(),
            ProxyError::UnknownRoute(what) => format!("no such rack route: {what}"),
            ProxyError::WebSocketMismatch => {
                "websocket upgrade does not match the route".into()
            }
            ProxyError::BadUpgrade(why) => format!("invalid websocket upgrade: {why}"),
            ProxyError::ClientBodyBroken => "the request body could not be read".into(),
            ProxyError::ClientBodyTimeout { seconds } => {
                format!("the request body did not arrive within {seconds}s")
            }
            ProxyError::Forbidden(denial) => denial.message.clone(),
            ProxyError::Mfa(denial) => denial.to_string(),
            ProxyError::BrowserRequest(what) => format!(
                "refused: {what}; the rack proxy is for the CLI, not for pages in a browser"
            ),
            ProxyError::FormTooLarge { limit } => {
                format!("request body larger than {limit} bytes")
            }
            ProxyError::FormUnreadable(why) => why.to_string(),
            ProxyError::AuditUnavailable(_) | ProxyError::AuthUnavailable => {
                "the gateway cannot record this request right now, so it was not performed; try again shortly".into()
            }
            ProxyError::RackNotConfigured => "the gateway has no rack configured".into(),
            ProxyError::RackUnreachable(_) => "the rack could not be reached".into(),
            ProxyError::RackReplyBroken(_) => "the rack's reply could not be read".into(),
            ProxyError::RackTimeout(_) => "the rack did not answer in time".into(),
            ProxyError::EnvUnreadable(_) => {
                "the rack's current environment could not be read, so the change was not sent".into()
            }
            ProxyError::Internal(_) => "internal error".into(),
        }
    }

    /// What the log and the audit event are told (no secret is ever in here:
    /// the variants carry only our own descriptions).
    pub fn detail(&self) -> String {
        match self {
            ProxyError::AuditUnavailable(d)
            | ProxyError::RackUnreachable(d)
            | ProxyError::RackReplyBroken(d)
            | ProxyError::RackTimeout(d)
            | ProxyError::EnvUnreadable(d)
            | ProxyError::Internal(d) => d.clone(),
            other => other.public_message(),
        }
    }

    /// The response the client gets.
    pub fn into_response(self, request_headers: &HeaderMap, request_id: &str) -> Response {
        let status = self.status();
        let mut message = self.public_message();
        if status.is_server_error() {
            message = format!("{message} (request id {request_id})");
        }
        let mut response = error_response(status, &message, request_headers);
        let headers = response.headers_mut();
        match &self {
            ProxyError::Unauthenticated(failure) => {
                // No `WWW-Authenticate` challenge: a browser would prompt for
                // the credential and then send it, cached, with any page's
                // request (the CLI never needs the challenge).
                headers.insert("x-error-reason", HeaderValue::from_static(failure.reason()));
            }
            ProxyError::RateLimited { retry_after_secs } => {
                headers.insert("x-error-reason", HeaderValue::from_static("rate_limited"));
                if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                    headers.insert(header::RETRY_AFTER, v);
                }
            }
            ProxyError::AuditUnavailable(_) | ProxyError::AuthUnavailable => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            ProxyError::Mfa(denial) => {
                headers.insert("x-error-reason", HeaderValue::from_static(denial.reason()));
            }
            _ => {}
        }
        if let Ok(v) = HeaderValue::from_str(request_id) {
            headers.insert("x-request-id", v);
        }
        response
    }
}

/// Plain text like the rack's `http.Error`, or JSON when `Accept` asks for it.
pub fn error_response(status: StatusCode, message: &str, request_headers: &HeaderMap) -> Response {
    let wants_json = request_headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| {
            part.split(';')
                .next()
                .is_some_and(|mt| mt.trim().eq_ignore_ascii_case("application/json"))
        });
    let (body, content_type) = if wants_json {
        let mut body = serde_json::json!({ "error": message }).to_string();
        body.push('\n');
        (body, "application/json")
    } else {
        (format!("{message}\n"), "text/plain; charset=utf-8")
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_faults() {
        let cases = [
            (
                ProxyError::Unauthenticated(AuthFailure::Revoked),
                401,
                Fault::Client,
            ),
            (
                ProxyError::RateLimited {
                    retry_after_secs: 3,
                },
                429,
                Fault::Client,
            ),
            (ProxyError::BadPath("..".into()), 400, Fault::Client),
            (
                ProxyError::UnknownRoute("GET /x".into()),
                404,
                Fault::Client,
            ),
            (
                ProxyError::Forbidden(Denial::missing("convox:app:delete")),
                403,
                Fault::Client,
            ),
            (ProxyError::FormTooLarge { limit: 1 }, 413, Fault::Client),
            (
                ProxyError::AuditUnavailable("timeout".into()),
                503,
                Fault::Gateway,
            ),
            (
                ProxyError::RackUnreachable("refused".into()),
                502,
                Fault::Upstream,
            ),
        ];
        for (error, status, fault) in cases {
            assert_eq!(error.status().as_u16(), status, "{error:?}");
            assert_eq!(error.fault(), fault, "{error:?}");
        }
    }

    #[tokio::test]
    async fn server_errors_reveal_nothing_internal() {
        let error = ProxyError::RackUnreachable("tcp connect 10.1.2.3:5443 refused".into());
        let response = error.into_response(&HeaderMap::new(), "req-1");
        assert_eq!(response.status(), 502);
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert_eq!(body, "the rack could not be reached (request id req-1)\n");
    }

    #[tokio::test]
    async fn unauthenticated_carries_reason_and_no_challenge() {
        let mut accept = HeaderMap::new();
        accept.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        let response =
            ProxyError::Unauthenticated(AuthFailure::Expired).into_response(&accept, "r");
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()["x-error-reason"], "expired");
        assert!(
            response.headers().get(header::WWW_AUTHENTICATE).is_none(),
            "no Basic challenge: a browser would cache the credential"
        );
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"], "token expired");
    }
}
