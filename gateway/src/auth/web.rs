//! The browser login: `GET /api/v1/auth/web/login` sends the
//! browser to the provider, `GET /api/v1/auth/web/callback` opens a web
//! session and sets the `session_token` cookie, `GET|POST
//! /api/v1/auth/web/logout` ends it.
//!
//! The login is bound to the browser that started it: the state also goes in
//! a short-lived `rgw_login_state` cookie, and the callback must present it
//! (so nobody can finish their own login in someone else's browser).
//! Cookies are HttpOnly, SameSite=Lax, and Secure unless `PUBLIC_URL` is plain
//! http. Logging out changes state, so it needs the CSRF token: a GET without
//! it shows a confirmation page whose button posts it.

use axum::extract::rejection::FormRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::Deserialize;
use uuid::Uuid;

use super::callback::{self, CallbackParams};
use super::caller::{self, SESSION_COOKIE};
use super::client::ClientInfo;
use super::login::{self, Channel, Device, LoginFailure};
use super::login_state::{self, NewLogin};
use super::sign_in_rate_limit::PublicAuth;
use super::{csrf, secrets, sessions, CredentialKind};
use crate::state::AppState;
use crate::web::error_redirect;

/// Holds the state of a web login in progress, for the callback to match.
pub const LOGIN_COOKIE: &str = "rgw_login_state";
const LOGIN_COOKIE_PATH: &str = "/api/v1/auth/web";

/// A `Set-Cookie` value. `max_age` 0 deletes the cookie.
pub fn cookie_header(
    name: &str,
    value: &str,
    path: &str,
    max_age: u64,
    secure: bool,
) -> HeaderValue {
    let mut cookie =
        format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax");
    if secure {
        cookie.push_str("; Secure");
    }
    // Names, paths and our secrets are URL-safe ASCII, so this is a valid header value.
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn clear_login_cookie(state: &AppState) -> HeaderValue {
    cookie_header(
        LOGIN_COOKIE,
        "",
        LOGIN_COOKIE_PATH,
        0,
        state.settings.auth.cookie_secure,
    )
}

fn clear_session_cookie(state: &AppState) -> HeaderValue {
    cookie_header(
        SESSION_COOKIE,
        "",
        "/",
        0,
        state.settings.auth.cookie_secure,
    )
}

fn with_cookies(mut response: Response, cookies: &[HeaderValue]) -> Response {
    for cookie in cookies {
        response
            .headers_mut()
            .append(header::SET_COOKIE, cookie.clone());
    }
    response
}

#[derive(Debug, Default, Deserialize)]
pub struct LoginParams {
    login_hint: Option<String>,
}

pub async fn login(
    State(state): State<AppState>,
    PublicAuth(client): PublicAuth,
    params: Result<Query<LoginParams>, QueryRejection>,
) -> Response {
    let Some(provider) = state.identity.oidc.as_ref() else {
        return error_redirect(&LoginFailure::NotConfigured);
    };
    // A hint only pre-selects the account at the provider; anything odd is dropped.
    let hint = params
        .ok()
        .and_then(|Query(p)| p.login_hint)
        .and_then(|h| crate::accounts::valid_email(&h).ok());
    let redirect_uri = state.settings.oauth_redirect_uri(Channel::Web.as_str());
    let request = match provider
        .authorization_request(&redirect_uri, hint.as_deref())
        .await
    {
        Ok(request) => request,
        Err(failure) => {
            login::record_failed(&state, &client.source, None, Channel::Web, &failure, None).await;
            return error_redirect(&failure);
        }
    };
    let now = Utc::now();
    let ttl = state.settings.auth.login_state_ttl;
    let login_id = Uuid::new_v4();
    let device = Device::default();
    let inserted = login_state::insert(
        &state.pool,
        &NewLogin {
            id: login_id,
            state_sha256: &secrets::sha256_hex(&request.state),
            channel: Channel::Web,
            cli_secret_sha256: None,
            pkce_verifier: &request.pkce_verifier,
            nonce: &request.nonce,
            device: &device,
            user_code: None,
            start_ip: None,
            created_at: now,
            expires_at: now
                + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::minutes(10)),
        },
    )
    .await;
    if let Err(e) = inserted {
        tracing::error!(error = %e, "could not store a web login");
        return error_redirect(&LoginFailure::Unavailable);
    }
    // Audit first: no recorded start, no trip to the provider.
    if let Err(e) = login::record_started(&state, &client, login_id, Channel::Web, &device).await {
        tracing::error!(error = %e, "could not record auth.login.started");
        return error_redirect(&LoginFailure::Unavailable);
    }
    let cookie = cookie_header(
        LOGIN_COOKIE,
        &request.state,
        LOGIN_COOKIE_PATH,
        ttl.as_secs(),
        state.settings.auth.cookie_secure,
    );
    with_cookies(Redirect::to(&request.url).into_response(), &[cookie])
}

pub async fn callback(
    State(state): State<AppState>,
    PublicAuth(client): PublicAuth,
    headers: HeaderMap,
    params: Result<Query<CallbackParams>, QueryRejection>,
) -> Response {
    let params = params.map(|Query(p)| p).unwrap_or_default();
    let browser_state = caller::cookie(&headers, LOGIN_COOKIE);
    let clear = clear_login_cookie(&state);
    let admitted = match callback::admit(
        &state,
        &client,
        Channel::Web,
        &params,
        Some(browser_state.as_deref()),
    )
    .await
    {
        Ok(admitted) => admitted,
        Err(failure) => return with_cookies(error_redirect(&failure), &[clear]),
    };
    let login_id = admitted.login.id;
    let opened = login::open_session(
        &state,
        &client.source,
        login_id,
        Channel::Web,
        &admitted.user,
        &Device::default(),
    )
    .await;
    let session = match opened {
        Ok(session) => session,
        Err(failure) => {
            let email = Some(admitted.user.email.as_str());
            if let Err(e) =
                login_state::mark_failed(&state.pool, login_id, &failure, email, Utc::now()).await
            {
                tracing::error!(error = %e, "could not store a login's failure");
            }
            login::record_failed(
                &state,
                &client.source,
                Some(login_id),
                Channel::Web,
                &failure,
                email,
            )
            .await;
            return with_cookies(error_redirect(&failure), &[clear]);
        }
    };
    if let Err(e) =
        login_state::mark_completed(&state.pool, login_id, Some(session.session_id), Utc::now())
            .await
    {
        // The session exists and is recorded; the login row only loses its bookkeeping.
        tracing::warn!(error = %e, "could not mark a web login completed");
    }
    let max_age = state.settings.auth.web_session_lifetime.as_secs();
    let session_cookie = cookie_header(
        SESSION_COOKIE,
        &session.secret,
        "/",
        max_age,
        state.settings.auth.cookie_secure,
    );
    with_cookies(
        Redirect::to("/app").into_response(),
        &[session_cookie, clear],
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct LogoutForm {
    csrf_token: Option<String>,
}

pub async fn logout(
    State(state): State<AppState>,
    client: ClientInfo,
    method: Method,
    headers: HeaderMap,
    form: Result<Form<LogoutForm>, FormRejection>,
) -> Response {
    let signed_out = || {
        with_cookies(
            Redirect::to("/app/login").into_response(),
            &[clear_session_cookie(&state)],
        )
    };
    let Some(secret) = caller::cookie(&headers, SESSION_COOKIE) else {
        return signed_out();
    };
    let principal = match caller::resolve(&state, &secret, &client).await {
        Ok(p) if p.kind == CredentialKind::Session => p,
        _ => return signed_out(),
    };
    let presented = headers
        .get(csrf::HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| form.ok().and_then(|Form(f)| f.csrf_token))
        .unwrap_or_default();
    if !state.identity.csrf.verify(&secret, &presented) {
        if method == Method::POST {
            return caller::csrf_refusal().into_response();
        }
        // No state change without the token: ask, with a button that carries it.
        return crate::web::logout_confirmation(
            &state,
            &principal,
            &state.identity.csrf.token(&secret),
        );
    }
    match sessions::logout(&state.pool, &state.appender, &principal, &client.source).await {
        Ok(_) => signed_out(),
        Err(e) => {
            tracing::error!(error = %e, "web logout could not be recorded");
            error_redirect(&LoginFailure::Unavailable)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_httponly_lax_and_secure_when_asked() {
        let plain = cookie_header("session_token", "v", "/", 60, false);
        assert_eq!(
            plain.to_str().unwrap(),
            "session_token=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax"
        );
        let secure = cookie_header("session_token", "v", "/", 60, true);
        assert!(secure.to_str().unwrap().ends_with("; Secure"));
    }
}
