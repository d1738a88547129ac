//! The CLI login's confirmation page: the step that stops a CLI login link
//! from phishing a session.
//!
//! `/api/v1/auth/cli/start` is unauthenticated, so anyone can start a login
//! and send its provider URL to a victim; without this step, the victim
//! signing in would hand the attacker's CLI a session. So after the
//! provider, the callback does not finish the login: it sets a cookie only
//! this browser holds (its SHA-256 is kept with the login) and sends the
//! browser to `GET /app/cli/auth/confirm?login=<id>`, which shows what is
//! being authorised — the CLI's device name and OS, the address and time the
//! login was started from, and the short `user_code` that the `/start`
//! answer carried and the CLI printed — and a Confirm button (a POST form).
//! The person compares the codes; nothing is typed. Only
//! `POST /app/cli/auth/confirm` from the browser holding the cookie marks
//! the login confirmed, recorded as `auth.login.confirmed`; until then
//! `/complete` answers 202.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Form, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{SecondsFormat, Utc};
use events::catalogue::{EventPayload, LoginConfirmed};
use events::Actor;
use minijinja::context;
use serde::Deserialize;
use uuid::Uuid;

use super::client::ClientInfo;
use super::login::LoginFailure;
use super::login_state::{self, LoginRow, Status};
use super::secrets;
use super::web::cookie_header;
use crate::state::AppState;
use crate::web::{error_redirect, render};

/// Where the confirmation page and its form live (the cookie's path).
pub const CONFIRM_PATH: &str = "/app/cli/auth/confirm";

/// Letters and digits no one confuses (no 0/O, 1/I/L, 5/S, 8/B, U/V).
const USER_CODE_ALPHABET: &[u8] = b"ACDEFGHJKMNPQRTWXYZ2345679";

/// A short code shown by the CLI and by the confirmation page: `XXXX-XXXX`.
/// Not a secret (both sides show it); it lets the person see that the login
/// they confirm is the one their terminal started.
pub fn new_user_code() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes)?;
    let letters: String = bytes
        .iter()
        .map(|b| USER_CODE_ALPHABET[*b as usize % USER_CODE_ALPHABET.len()] as char)
        .collect();
    Ok(format!("{}-{}", &letters[..4], &letters[4..]))
}

/// The per-login cookie that proves "this is the browser that signed in".
fn cookie_name(login_id: Uuid) -> String {
    format!("rgw_cli_confirm_{}", login_id.simple())
}

/// At the callback: a fresh confirmation secret for this login; its SHA-256
/// is stored, the secret goes to the browser as a cookie (the returned
/// `Set-Cookie`), and the browser is sent to the confirmation page.
pub async fn await_confirmation(state: &AppState, login_id: Uuid) -> Response {
    let secret = match secrets::generate(secrets::SecretKind::Session) {
        Ok(generated) => generated.secret,
        Err(e) => {
            tracing::error!(error = %e, "no randomness for a CLI login confirmation");
            return error_redirect(&LoginFailure::Unavailable);
        }
    };
    let stored =
        login_state::await_confirmation(&state.pool, login_id, &secrets::sha256_hex(&secret)).await;
    if let Err(e) = stored {
        tracing::error!(error = %e, "could not store a CLI login's confirmation");
        return error_redirect(&LoginFailure::Unavailable);
    }
    let cookie = cookie_header(
        &cookie_name(login_id),
        &secret,
        CONFIRM_PATH,
        state.settings.auth.login_state_ttl.as_secs(),
        state.settings.auth.cookie_secure,
    );
    let mut response = Redirect::to(&format!("{CONFIRM_PATH}?login={login_id}")).into_response();
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

#[derive(Debug, Default, Deserialize)]
pub struct ConfirmParams {
    login: Option<String>,
}

/// The login this browser may confirm: a CLI login admitted by the provider,
/// not expired, whose confirmation cookie this request carries.
async fn login_for_this_browser(
    state: &AppState,
    headers: &HeaderMap,
    login: Option<&str>,
) -> Result<LoginRow, LoginFailure> {
    let id = login
        .and_then(|id| Uuid::parse_str(id.trim()).ok())
        .ok_or(LoginFailure::InvalidState)?;
    let row = login_state::by_id(&state.pool, id)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "could not read a CLI login");
            LoginFailure::Unavailable
        })?
        .ok_or(LoginFailure::InvalidState)?;
    let presented = super::caller::cookie(headers, &cookie_name(id));
    let bound = match (presented, row.confirm_sha256.as_deref()) {
        (Some(secret), Some(expected)) => {
            secrets::hashes_equal(&secrets::sha256_hex(&secret), expected)
        }
        _ => false,
    };
    if row.channel != "cli" || !bound {
        return Err(LoginFailure::InvalidState);
    }
    if row.expires_at <= Utc::now() || row.status == Status::Expired {
        return Err(LoginFailure::ExpiredState);
    }
    match row.status {
        Status::Authenticated if row.confirmed_at.is_none() => Ok(row),
        Status::Authenticated | Status::Completed => Err(LoginFailure::ReplayedState),
        _ => Err(LoginFailure::InvalidState),
    }
}

/// `GET /app/cli/auth/confirm?login=<id>`: what is being authorised, and Confirm.
pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<ConfirmParams>, QueryRejection>,
) -> Response {
    let params = params.map(|Query(p)| p).unwrap_or_default();
    let row = match login_for_this_browser(&state, &headers, params.login.as_deref()).await {
        Ok(row) => row,
        Err(failure) => return error_redirect(&failure),
    };
    render(
        &state,
        StatusCode::OK,
        "cli_confirm.html",
        context! {
            login_id => row.id.to_string(),
            email => row.email,
            user_code => row.user_code,
            device_name => row.device.name,
            device_os => row.device.os,
            client_version => row.device.client_version,
            started_from => row.start_ip,
            started_at => row.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            action => CONFIRM_PATH,
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct ConfirmForm {
    login: Option<String>,
}

/// `POST /app/cli/auth/confirm` (form `login=<id>`): from the browser that
/// signed in (its cookie), and not from another site's page; recorded as
/// `auth.login.confirmed` before it takes effect.
pub async fn confirm(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    form: Result<Form<ConfirmForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    if cross_site(&headers) {
        return error_redirect(&LoginFailure::InvalidState);
    }
    let login = form.ok().and_then(|Form(f)| f.login);
    let row = match login_for_this_browser(&state, &headers, login.as_deref()).await {
        Ok(row) => row,
        Err(failure) => return error_redirect(&failure),
    };
    match record_confirmation(&state, &client, &row).await {
        Ok(true) => {
            let mut response =
                Redirect::to(&format!("/app/cli/auth/success?login={}", row.id)).into_response();
            response.headers_mut().append(
                header::SET_COOKIE,
                cookie_header(
                    &cookie_name(row.id),
                    "",
                    CONFIRM_PATH,
                    0,
                    state.settings.auth.cookie_secure,
                ),
            );
            response
        }
        Ok(false) => error_redirect(&LoginFailure::ReplayedState),
        Err(failure) => error_redirect(&failure),
    }
}

/// Mark the login confirmed and append `auth.login.confirmed` in one step:
/// the row stays locked (so `/complete` waits) until the event is committed,
/// and if it cannot be, the login stays unconfirmed. `Ok(false)`: it was
/// confirmed, completed or expired meanwhile.
async fn record_confirmation(
    state: &AppState,
    client: &ClientInfo,
    row: &LoginRow,
) -> Result<bool, LoginFailure> {
    let unavailable = |e: sqlx::Error| {
        tracing::error!(error = %e, "could not confirm a CLI login");
        LoginFailure::Unavailable
    };
    let mut tx = state.pool.begin().await.map_err(unavailable)?;
    if !login_state::mark_confirmed(&mut *tx, row.id, Utc::now())
        .await
        .map_err(unavailable)?
    {
        return Ok(false);
    }
    let (Some(user_id), Some(email)) = (row.user_id, row.email.clone()) else {
        return Err(LoginFailure::InvalidState);
    };
    let payload = LoginConfirmed {
        login_id: row.id,
        channel: "cli".to_owned(),
        email: email.clone(),
        user_id,
        user_code: row.user_code.clone().unwrap_or_default(),
        device_name: row.device.name.clone(),
        device_os: row.device.os.clone(),
        started_from: row.start_ip.clone(),
        started_at: row.created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
    };
    let actor = Actor {
        kind: events::ActorKind::User,
        id: Some(user_id.to_string()),
        email: Some(email),
        role: None,
    };
    state
        .appender
        .append(payload.draft(actor).with_source(client.source.clone()))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "could not record a CLI login's confirmation");
            LoginFailure::Unavailable
        })?;
    tx.commit().await.map_err(unavailable)?;
    Ok(true)
}

/// A form post from another site's page (`Sec-Fetch-Site: cross-site` or
/// `same-site`): the cookie is `SameSite=Lax` already; this says no twice.
fn cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .is_some_and(|site| {
            let site = site.trim();
            site.eq_ignore_ascii_case("cross-site") || site.eq_ignore_ascii_case("same-site")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_short_and_unambiguous() {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let code = new_user_code().unwrap();
            assert_eq!(code.len(), 9, "{code}");
            assert_eq!(&code[4..5], "-");
            assert!(code
                .chars()
                .filter(|c| *c != '-')
                .all(|c| USER_CODE_ALPHABET.contains(&(c as u8))));
            seen.insert(code);
        }
        assert!(seen.len() > 190, "codes repeat too often");
    }
}
