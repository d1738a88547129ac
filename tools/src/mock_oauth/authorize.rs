//! The authorization endpoint and its user-picker page.
//!
//! `GET` and `POST` run the same validation: the picker page re-submits the original request
//! parameters as hidden fields plus the chosen `login_hint`, so no server-side state exists
//! until a code is issued.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::{find_user, PendingCode, Shared, Tamper, SUPPORTED_SCOPES, TEST_USERS};

const PICKER_TEMPLATE: &str = "picker.html";
const ERROR_TEMPLATE: &str = "error.html";

/// The picker and error pages; `.html` names make minijinja escape every value.
pub(super) fn templates() -> Result<minijinja::Environment<'static>, minijinja::Error> {
    let mut env = minijinja::Environment::new();
    env.add_template(PICKER_TEMPLATE, include_str!("page.html"))?;
    env.add_template(ERROR_TEMPLATE, include_str!("error.html"))?;
    Ok(env)
}

/// Authorization request parameters. Unknown ones (`prompt`, `access_type`, `hd`, …) are
/// ignored, as Google ignores what it does not need; a repeated one fails to parse, which
/// RFC 6749 section 3.1 makes an error anyway.
#[derive(Debug, Default, Deserialize)]
pub(super) struct AuthorizeParams {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    /// The test user to sign in as. Set by the picker buttons, or by headless tests directly.
    login_hint: Option<String>,
    /// `cancel`: the person declined (the picker's Cancel button) → `access_denied`.
    action: Option<String>,
    /// Test control; see [`Tamper`].
    mock_tamper: Option<String>,
}

pub(super) async fn authorize_get(
    State(shared): State<Arc<Shared>>,
    params: Result<Query<AuthorizeParams>, QueryRejection>,
) -> Response {
    match params {
        Ok(Query(params)) => authorize(&shared, params),
        Err(rejection) => error_page(
            &shared,
            "invalid_request",
            &format!("unreadable query: {}", rejection.body_text()),
        ),
    }
}

pub(super) async fn authorize_post(
    State(shared): State<Arc<Shared>>,
    params: Result<Form<AuthorizeParams>, FormRejection>,
) -> Response {
    match params {
        Ok(Form(params)) => authorize(&shared, params),
        Err(rejection) => error_page(
            &shared,
            "invalid_request",
            &format!("unreadable form: {}", rejection.body_text()),
        ),
    }
}

fn authorize(shared: &Shared, params: AuthorizeParams) -> Response {
    // Until client and redirect URI check out, errors must not redirect anywhere (RFC 6749 4.1.2.1).
    let Some(client_id) = params.client_id.as_deref().filter(|c| !c.is_empty()) else {
        return error_page(shared, "invalid_request", "client_id is required");
    };
    if client_id != shared.client_id {
        return error_page(shared, "invalid_client", "unknown client_id");
    }
    let Some(redirect_uri) = params.redirect_uri.as_deref().filter(|r| !r.is_empty()) else {
        return error_page(shared, "invalid_request", "redirect_uri is required");
    };
    let Some(redirect) = allowed_redirect(shared, redirect_uri) else {
        return error_page(
            shared,
            "redirect_uri_mismatch",
            "redirect_uri is not registered for this client",
        );
    };

    // Test controls are refused outright rather than redirected: a stray mock_tamper means the
    // caller's setup is wrong, and a loud 400 says so better than an error the RP may swallow.
    let tamper = match params.mock_tamper.as_deref() {
        None => None,
        Some(_) if !shared.test_controls => {
            return error_page(
                shared,
                "invalid_request",
                "mock_tamper is a test control; start the provider with --test-controls",
            );
        }
        Some(value) => match Tamper::parse(value) {
            Some(tamper) => Some(tamper),
            None => {
                return error_page(
                    shared,
                    "invalid_request",
                    &format!(
                        "unknown mock_tamper {value:?}; known: {}",
                        Tamper::ALL.map(Tamper::as_str).join(", ")
                    ),
                );
            }
        },
    };

    let state = params.state.as_deref();
    let fail =
        |error: &str, description: &str| redirect_with_error(&redirect, error, description, state);

    match params.response_type.as_deref() {
        None | Some("") => return fail("invalid_request", "response_type is required"),
        Some("code") => {}
        Some(_) => {
            return fail(
                "unsupported_response_type",
                "only response_type=code is supported",
            )
        }
    }

    let scope: Vec<String> = params
        .scope
        .as_deref()
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if !scope.iter().any(|s| s == "openid") {
        return fail("invalid_scope", "scope must include openid");
    }
    if let Some(unknown) = scope
        .iter()
        .find(|s| !SUPPORTED_SCOPES.contains(&s.as_str()))
    {
        return fail("invalid_scope", &format!("unsupported scope {unknown:?}"));
    }

    let Some(code_challenge) = params.code_challenge.as_deref().filter(|c| !c.is_empty()) else {
        return fail("invalid_request", "code_challenge is required (PKCE)");
    };
    if params.code_challenge_method.as_deref() != Some("S256") {
        return fail("invalid_request", "code_challenge_method must be S256");
    }
    if !is_s256_challenge(code_challenge) {
        return fail(
            "invalid_request",
            "code_challenge must be the base64url SHA-256 of the verifier (43 characters)",
        );
    }

    if params.action.as_deref() == Some("cancel") {
        return fail("access_denied", "the user declined");
    }

    let Some(hint) = params.login_hint.as_deref().filter(|h| !h.is_empty()) else {
        return picker_page(shared, &params, tamper);
    };
    let Some(user) = find_user(hint) else {
        return error_page(
            shared,
            "invalid_request",
            &format!("login_hint {hint:?} is not a test user"),
        );
    };

    let code = super::random_token();
    let now = Instant::now();
    {
        let mut store = shared.store();
        store.prune(now);
        store.codes.insert(
            code.clone(),
            PendingCode {
                client_id: client_id.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                code_challenge: code_challenge.to_owned(),
                nonce: params.nonce.clone().filter(|n| !n.is_empty()),
                scope,
                user,
                tamper,
                expires_at: now + shared.code_ttl,
            },
        );
    }
    tracing::info!(
        user = user.email,
        client_id,
        tamper = tamper.map(Tamper::as_str),
        "authorization code issued"
    );

    let mut location = redirect;
    {
        let mut query = location.query_pairs_mut();
        query.append_pair("code", &code);
        if let Some(state) = state {
            query.append_pair("state", state);
        }
    }
    found(location.as_str())
}

/// The redirect URI parsed, if this client may use it: one of the registered URIs exactly, or,
/// when none are registered, any plain-http loopback URI. Parsing (rather than a string prefix)
/// keeps `http://localhost.evil.example` out.
fn allowed_redirect(shared: &Shared, redirect_uri: &str) -> Option<url::Url> {
    let parsed = url::Url::parse(redirect_uri).ok()?;
    if parsed.fragment().is_some() {
        return None;
    }
    let allowed = if shared.redirect_uris.is_empty() {
        parsed.scheme() == "http"
            && matches!(parsed.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
    } else {
        shared.redirect_uris.iter().any(|r| r == redirect_uri)
    };
    allowed.then_some(parsed)
}

/// 43 base64url characters: exactly what BASE64URL(SHA256(verifier)) without padding is.
fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn redirect_with_error(
    redirect: &url::Url,
    error: &str,
    description: &str,
    state: Option<&str>,
) -> Response {
    let mut location = redirect.clone();
    {
        let mut query = location.query_pairs_mut();
        query.append_pair("error", error);
        query.append_pair("error_description", description);
        if let Some(state) = state {
            query.append_pair("state", state);
        }
    }
    tracing::info!(
        error,
        description,
        "authorization request refused (redirected)"
    );
    found(location.as_str())
}

/// 302, as Google answers; `axum::response::Redirect` only offers 303/307/308.
fn found(location: &str) -> Response {
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, "no-store"),
        ],
    )
        .into_response()
}

fn picker_page(shared: &Shared, params: &AuthorizeParams, tamper: Option<Tamper>) -> Response {
    // Every original parameter goes back as a hidden field, so the POST re-validates the same request.
    let hidden: Vec<(&str, &str)> = [
        ("response_type", &params.response_type),
        ("client_id", &params.client_id),
        ("redirect_uri", &params.redirect_uri),
        ("scope", &params.scope),
        ("state", &params.state),
        ("nonce", &params.nonce),
        ("code_challenge", &params.code_challenge),
        ("code_challenge_method", &params.code_challenge_method),
        ("mock_tamper", &params.mock_tamper),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
    .collect();
    let rendered = shared
        .templates
        .get_template(PICKER_TEMPLATE)
        .and_then(|t| {
            t.render(minijinja::context! {
                action => shared.endpoint("/authorize"),
                client_id => params.client_id,
                redirect_uri => params.redirect_uri,
                hidden => hidden,
                users => TEST_USERS,
                tamper => tamper.map(Tamper::as_str),
            })
        });
    match rendered {
        Ok(html) => (
            StatusCode::OK,
            [(header::CACHE_CONTROL, "no-store")],
            Html(html),
        )
            .into_response(),
        Err(e) => template_failure(&e),
    }
}

/// A 400 page for errors that must not be redirected.
pub(super) fn error_page(shared: &Shared, error: &str, description: &str) -> Response {
    tracing::info!(
        error,
        description,
        "authorization request refused (error page)"
    );
    let rendered = shared
        .templates
        .get_template(ERROR_TEMPLATE)
        .and_then(|t| t.render(minijinja::context! { error => error, description => description }));
    match rendered {
        Ok(html) => (
            StatusCode::BAD_REQUEST,
            [(header::CACHE_CONTROL, "no-store")],
            Html(html),
        )
            .into_response(),
        Err(e) => template_failure(&e),
    }
}

fn template_failure(error: &minijinja::Error) -> Response {
    tracing::error!(%error, "rendering a page failed");
    (StatusCode::INTERNAL_SERVER_ERROR, "page rendering failed").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_challenge_shape() {
        assert!(is_s256_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!is_s256_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c"
        ));
        assert!(!is_s256_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"
        ));
    }

    #[test]
    fn templates_parse() {
        templates().expect("templates compile");
    }
}
