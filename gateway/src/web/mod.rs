//! The few server-rendered pages (minijinja templates embedded in the binary;
//! no JavaScript except the WebAuthn script of the MFA pages):
//!
//! | path | page |
//! | --- | --- |
//! | `/` | redirects to `/app` |
//! | `/app` | who is signed in (email, name, role) and a sign-out button; signed out → `/app/login` |
//! | `/app/login` | "Sign in with Google" → the web login |
//! | `/app/cli/auth/confirm?login=<id>` | what a CLI login authorises (device, address, time, code) and a Confirm button (`crate::auth::cli_confirm`) |
//! | `/app/cli/auth/success?login=<id>` | "Signed in as <email>. Return to your terminal." |
//! | `/app/auth/error?error=<code>` | a clear sentence for each login failure code |
//! | `/app/assets/webauthn.js` | the WebAuthn browser side (the only script; MFA pages load it) |
//!
//! Pages are `no-store`, may not be framed, and load nothing from elsewhere.

use std::sync::LazyLock;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use chrono::SecondsFormat;
use minijinja::{context, Environment, Value};
use serde::Deserialize;

use crate::auth::caller::{self, SESSION_COOKIE};
use crate::auth::client::ClientInfo;
use crate::auth::login::LoginFailure;
use crate::auth::login_state::{self, Status};
use crate::auth::{CredentialKind, Principal};
use crate::state::AppState;

static TEMPLATES: LazyLock<Result<Environment<'static>, minijinja::Error>> = LazyLock::new(|| {
    let mut env = Environment::new();
    // `.html` names: every value is HTML-escaped.
    env.add_template("layout.html", include_str!("templates/layout.html"))?;
    env.add_template("app.html", include_str!("templates/app.html"))?;
    env.add_template("login.html", include_str!("templates/login.html"))?;
    env.add_template(
        "cli_success.html",
        include_str!("templates/cli_success.html"),
    )?;
    env.add_template("auth_error.html", include_str!("templates/auth_error.html"))?;
    env.add_template(
        "cli_confirm.html",
        include_str!("templates/cli_confirm.html"),
    )?;
    env.add_template("logout.html", include_str!("templates/logout.html"))?;
    Ok(env)
});

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/app") }))
        .route("/app", get(app))
        .route("/app/login", get(login))
        .route(
            crate::auth::cli_confirm::CONFIRM_PATH,
            get(crate::auth::cli_confirm::page).post(crate::auth::cli_confirm::confirm),
        )
        .route("/app/cli/auth/success", get(cli_success))
        .route("/app/auth/error", get(auth_error))
        .route("/app/assets/webauthn.js", get(webauthn_js))
}

/// The pages' only script: WebAuthn's browser side (`assets/webauthn.js`).
async fn webauthn_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        include_str!("assets/webauthn.js"),
    )
        .into_response()
}

/// Where a failed login sends the browser.
pub fn error_redirect(failure: &LoginFailure) -> Response {
    Redirect::to(&format!("/app/auth/error?error={}", failure.reason())).into_response()
}

/// The sentence the error page shows for a login failure code.
pub fn error_sentence(code: &str) -> &'static str {
    match code {
        "domain_not_allowed" => "Your email domain is not allowed to sign in to this gateway (email domain not allowed). Sign in with your work account, or ask an administrator to allow your domain.",
        "email_not_verified" => "Your email address is not verified with the sign-in provider (email not verified). Verify it there, then try again.",
        "unknown_user" => "There is no account for you on this gateway (user not authorized). Ask an administrator to add you.",
        "user_disabled" => "Your account on this gateway is disabled (user not authorized). Ask an administrator.",
        "invalid_state" => "This sign-in is not valid here: it is unknown, or it was started in a different browser. Start again.",
        "expired_state" => "This sign-in took too long and expired. Start again.",
        "replayed_state" => "This sign-in was already used. Start again.",
        "client_mismatch" => "This sign-in was started by a different client.",
        "invalid_id_token" => "The sign-in provider's answer failed verification, so it was refused. Try again; if it keeps failing, tell an administrator.",
        "nonce_mismatch" => "The sign-in provider's answer does not belong to this sign-in, so it was refused. Start again.",
        "exchange_failed" => "The sign-in provider did not accept this sign-in. Start again.",
        "provider_error" => "The sign-in provider reported an error, or the sign-in was cancelled. Start again.",
        "not_configured" => "Sign-in is not configured on this gateway. Ask its operator.",
        "unavailable" => "The gateway cannot record sign-ins right now, so nothing was granted. Try again in a moment.",
        "rate_limited" => "Too many sign-in attempts from your address. Wait a moment and try again.",
        _ => "Sign-in failed. Start again.",
    }
}

pub(crate) fn render(state: &AppState, status: StatusCode, template: &str, ctx: Value) -> Response {
    let rendered = match TEMPLATES.as_ref() {
        Ok(env) => env
            .get_template(template)
            .and_then(|t| t.render(context! { rack => state.settings.rack.name, ..ctx })),
        Err(e) => Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("templates did not compile: {e}"),
        )),
    };
    let mut response = match rendered {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, template, "page rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "page rendering failed").into_response()
        }
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    response
}

/// The browser's signed-in session, if its cookie names a live one.
async fn browser_session(
    state: &AppState,
    headers: &HeaderMap,
    client: &ClientInfo,
) -> Option<(Principal, String)> {
    let secret = caller::cookie(headers, SESSION_COOKIE)?;
    match caller::resolve(state, &secret, client).await {
        Ok(principal) if principal.kind == CredentialKind::Session => Some((principal, secret)),
        _ => None,
    }
}

async fn app(State(state): State<AppState>, client: ClientInfo, headers: HeaderMap) -> Response {
    let Some((principal, secret)) = browser_session(&state, &headers, &client).await else {
        return Redirect::to("/app/login").into_response();
    };
    render(
        &state,
        StatusCode::OK,
        "app.html",
        context! {
            email => principal.email,
            name => principal.name,
            role => principal.role.as_str(),
            csrf_token => state.identity.csrf.token(&secret),
            idle_minutes => state.settings.auth.web_session_idle_timeout.as_secs() / 60,
            expires_at => principal.expires_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
            public_url => state.settings.server.public_url,
        },
    )
}

async fn login(State(state): State<AppState>, client: ClientInfo, headers: HeaderMap) -> Response {
    if browser_session(&state, &headers, &client).await.is_some() {
        return Redirect::to("/app").into_response();
    }
    render(
        &state,
        StatusCode::OK,
        "login.html",
        context! {
            configured => state.identity.oidc.is_some(),
            // Absolute: the login cookies must be set on the host the provider returns to.
            login_url => format!("{}/api/v1/auth/web/login", state.settings.server.public_url),
        },
    )
}

#[derive(Debug, Default, Deserialize)]
struct SuccessParams {
    login: Option<String>,
}

async fn cli_success(
    State(state): State<AppState>,
    params: Result<Query<SuccessParams>, QueryRejection>,
) -> Response {
    let id = params
        .ok()
        .and_then(|Query(p)| p.login)
        .and_then(|id| uuid::Uuid::parse_str(&id).ok());
    let login = match id {
        Some(id) => login_state::by_id(&state.pool, id).await.ok().flatten(),
        None => None,
    };
    match login {
        Some(login)
            if login.channel == "cli"
                && (login.status == Status::Completed
                    || (login.status == Status::Authenticated && login.confirmed_at.is_some()))
                && login.email.is_some() =>
        {
            render(
                &state,
                StatusCode::OK,
                "cli_success.html",
                context! { email => login.email },
            )
        }
        _ => error_redirect(&LoginFailure::InvalidState),
    }
}

#[derive(Debug, Default, Deserialize)]
struct ErrorParams {
    error: Option<String>,
}

async fn auth_error(
    State(state): State<AppState>,
    params: Result<Query<ErrorParams>, QueryRejection>,
) -> Response {
    let code = params.ok().and_then(|Query(p)| p.error).unwrap_or_default();
    let sentence = error_sentence(&code);
    // Only known codes are echoed back.
    let shown = if sentence == error_sentence("") {
        "unknown"
    } else {
        code.as_str()
    };
    render(
        &state,
        StatusCode::OK,
        "auth_error.html",
        context! { message => sentence, code => shown },
    )
}

/// A GET logout without the CSRF token asks first.
pub fn logout_confirmation(state: &AppState, principal: &Principal, csrf_token: &str) -> Response {
    render(
        state,
        StatusCode::OK,
        "logout.html",
        context! { email => principal.email, csrf_token => csrf_token },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_compile_and_every_failure_has_its_own_sentence() {
        assert!(TEMPLATES.is_ok(), "{:?}", TEMPLATES.as_ref().err());
        let generic = error_sentence("");
        for code in [
            "domain_not_allowed",
            "email_not_verified",
            "unknown_user",
            "user_disabled",
            "invalid_state",
            "expired_state",
            "replayed_state",
            "invalid_id_token",
            "nonce_mismatch",
            "exchange_failed",
            "provider_error",
            "not_configured",
            "unavailable",
        ] {
            assert_ne!(error_sentence(code), generic, "{code}");
        }
    }
}
