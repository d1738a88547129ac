//! The authenticated caller of a gateway API route ([`Caller`], an extractor).
//!
//! Credential sources, in order: `Authorization: Bearer`, then
//! `Authorization: Basic` (the password), then the `session_token` cookie. A
//! request authenticated by the cookie that changes state (anything but GET,
//! HEAD, OPTIONS) must carry the session's CSRF token in `X-CSRF-Token`.
//! Refusals are JSON with `X-Error-Reason`; a web session found idle or
//! expired is revoked as it is refused.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};

use super::client::ClientInfo;
use super::principal::{self, AuthFailure, Principal, SessionRules};
use super::{csrf, sessions};
use crate::accounts::users::Requester;
use crate::api::ApiError;
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "session_token";

/// Someone the gateway knows, calling an API route.
pub struct Caller {
    pub principal: Principal,
    /// Authenticated by the browser's `session_token` cookie (so CSRF rules apply).
    pub via_cookie: bool,
    pub client: ClientInfo,
    /// An MFA code on the request (`X-MFA-TOTP`, or the token's `.totp.<code>` suffix).
    pub mfa_proof: Option<String>,
}

impl Caller {
    /// Who asks, and from where, as recorded on the events this call causes.
    pub fn requester(&self) -> Requester {
        Requester {
            actor: self.principal.actor(),
            source: self.client.source.clone(),
        }
    }

    /// Refuse unless the caller's role holds `permission` (the standard denial
    /// message), then unless it has shown the MFA the permission needs
    /// ([`crate::mfa::require`]: sign-in verification, step-up, proof on the request).
    pub async fn authorize(&self, state: &AppState, permission: &str) -> Result<(), ApiError> {
        self.principal.authorize(permission)?;
        crate::mfa::require::check(state, &self.asking(), permission).await?;
        Ok(())
    }

    /// Refuse a session still restricted at sign-in (MFA to verify or enrol),
    /// for routes that need no permission (one's own records).
    pub fn require_past_sign_in(&self, state: &AppState) -> Result<(), ApiError> {
        use crate::mfa::require::{gate, Gate, MfaDenial};
        match gate(&state.settings.mfa, &self.principal) {
            Gate::Open => Ok(()),
            restricted => Err(MfaDenial::of_gate(state, restricted).into()),
        }
    }

    /// This caller as MFA sees it.
    pub fn asking(&self) -> crate::mfa::require::Asking<'_> {
        crate::mfa::require::Asking {
            principal: &self.principal,
            requester: self.requester(),
            channel: self.mfa_channel(),
            device: self.client.source.user_agent.clone(),
            proof: self.mfa_proof.as_deref(),
        }
    }

    /// `web` for browser sessions, else `cli` (the JSON API).
    pub fn mfa_channel(&self) -> crate::mfa::verify::Channel {
        if self.via_cookie || self.principal.channel.as_deref() == Some("web") {
            crate::mfa::verify::Channel::Web
        } else {
            crate::mfa::verify::Channel::Cli
        }
    }
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim().trim_matches('"').to_owned())
        .filter(|value| !value.is_empty())
}

/// The presented secret and whether it came from the cookie.
pub fn presented_secret(headers: &HeaderMap) -> Result<Option<(String, bool)>, AuthFailure> {
    if let Some(secret) = principal::secret_from_headers(headers)? {
        return Ok(Some((secret, false)));
    }
    Ok(cookie(headers, SESSION_COOKIE).map(|secret| (secret, true)))
}

pub fn session_rules(state: &AppState) -> SessionRules {
    SessionRules {
        web_idle_timeout: state.settings.auth.web_session_idle_timeout,
    }
}

/// Authenticate a secret; a web session refused as idle or expired is revoked on the way.
pub async fn resolve(
    state: &AppState,
    secret: &str,
    client: &ClientInfo,
) -> Result<Principal, AuthFailure> {
    match principal::authenticate(&state.pool, session_rules(state), secret).await {
        Ok(principal) => Ok(principal),
        Err(failure) => {
            if matches!(failure, AuthFailure::IdleTimeout | AuthFailure::Expired) {
                sessions::revoke_when_seen(
                    &state.pool,
                    &state.appender,
                    secret,
                    failure,
                    &client.source,
                )
                .await;
            }
            Err(failure)
        }
    }
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

pub fn csrf_refusal() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "missing or invalid CSRF token: send X-CSRF-Token with browser requests that change state",
    )
    .with_reason("csrf_failed")
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let Ok(client) = ClientInfo::from_request_parts(parts, state).await;
        let (presented, via_cookie) =
            presented_secret(&parts.headers)?.ok_or(AuthFailure::Missing)?;
        let (secret, inline_proof) = principal::split_inline_proof(&presented);
        let secret = secret.to_owned();
        let header_proof = parts
            .headers
            .get(crate::mfa::require::TOTP_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty());
        let mfa_proof = header_proof.or(inline_proof).map(str::to_owned);
        let principal = resolve(state, &secret, &client).await?;
        if via_cookie && changes_state(&parts.method) {
            let presented = parts
                .headers
                .get(csrf::HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !state.identity.csrf.verify(&secret, presented) {
                return Err(csrf_refusal());
            }
        }
        Ok(Caller {
            principal,
            via_cookie,
            client,
            mfa_proof,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            HeaderValue::from_static("other=1; xsession_token=no; session_token=rgw_sess_x"),
        );
        assert_eq!(
            cookie(&headers, SESSION_COOKIE).as_deref(),
            Some("rgw_sess_x")
        );
        assert_eq!(cookie(&headers, "missing"), None);
        assert_eq!(
            presented_secret(&headers).unwrap(),
            Some(("rgw_sess_x".to_owned(), true))
        );
        headers.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("Bearer rgw_token_y"),
        );
        assert_eq!(
            presented_secret(&headers).unwrap(),
            Some(("rgw_token_y".to_owned(), false)),
            "the header wins over the cookie"
        );
    }
}
