//! The token and userinfo endpoints.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::keys::{at_hash, corrupt_signature};
use super::{AccessGrant, PendingCode, Shared, Tamper, TestUser, UsedCode};

/// How long a redeemed code is remembered when no token came of it (a failed redemption).
const FORGET_FAILED_CODE_AFTER: Duration = Duration::from_secs(600);

#[derive(Debug, Default, Deserialize)]
pub(super) struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    code_verifier: Option<String>,
}

/// An RFC 6749 section 5.2 error.
struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    /// Set when the client tried HTTP authentication: the RFC then requires 401 + WWW-Authenticate.
    basic_challenge: bool,
}

impl OAuthError {
    fn bad_request(error: &'static str, description: impl Into<String>) -> OAuthError {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            error,
            description: description.into(),
            basic_challenge: false,
        }
    }

    fn invalid_grant(description: impl Into<String>) -> OAuthError {
        OAuthError::bad_request("invalid_grant", description)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        tracing::info!(
            error = self.error,
            description = %self.description,
            "token request refused"
        );
        let mut response = (
            self.status,
            no_store(),
            Json(serde_json::json!({
                "error": self.error,
                "error_description": self.description,
            })),
        )
            .into_response();
        if self.basic_challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="mock-oauth""#),
            );
        }
        response
    }
}

fn no_store() -> [(header::HeaderName, &'static str); 2] {
    [
        (header::CACHE_CONTROL, "no-store"),
        (header::PRAGMA, "no-cache"),
    ]
}

#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    id_token: String,
    scope: String,
}

pub(super) async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => {
            return OAuthError::bad_request(
                "invalid_request",
                format!("unreadable form: {}", rejection.body_text()),
            )
            .into_response()
        }
    };
    match exchange(&shared, &headers, form) {
        Ok(response) => (StatusCode::OK, no_store(), Json(response)).into_response(),
        Err(error) => error.into_response(),
    }
}

fn exchange(
    shared: &Shared,
    headers: &HeaderMap,
    form: TokenForm,
) -> Result<TokenResponse, OAuthError> {
    match form.grant_type.as_deref() {
        None | Some("") => {
            return Err(OAuthError::bad_request(
                "invalid_request",
                "grant_type is required",
            ))
        }
        Some("authorization_code") => {}
        Some(_) => {
            return Err(OAuthError::bad_request(
                "unsupported_grant_type",
                "only authorization_code is supported",
            ))
        }
    }
    authenticate_client(shared, headers, &form)?;

    let code = form
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| OAuthError::bad_request("invalid_request", "code is required"))?;

    let now = Instant::now();
    // Any presentation consumes the code, failed or not, so a wrong verifier can't be retried
    // against it; a second presentation revokes what the first one issued (RFC 6749 4.1.2).
    let pending = {
        let mut store = shared.store();
        store.prune(now);
        match store.codes.remove(code) {
            Some(pending) => {
                store.used_codes.insert(
                    code.to_owned(),
                    UsedCode {
                        access_token: None,
                        forget_at: now + FORGET_FAILED_CODE_AFTER.max(shared.token_ttl),
                    },
                );
                pending
            }
            None => {
                if let Some(used) = store.used_codes.get_mut(code) {
                    if let Some(token) = used.access_token.take() {
                        store.tokens.remove(&token);
                    }
                    tracing::warn!("authorization code replayed; its access token is revoked");
                    return Err(OAuthError::invalid_grant("code was already used"));
                }
                return Err(OAuthError::invalid_grant("unknown or expired code"));
            }
        }
    };

    check_code(shared, &pending, &form, now)?;

    let access_token = super::random_token();
    let id_token = id_token(shared, &pending, &access_token).map_err(|e| {
        tracing::error!(error = %e, "signing the ID token failed");
        OAuthError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: "server_error",
            description: "could not sign the ID token".to_owned(),
            basic_challenge: false,
        }
    })?;
    {
        let mut store = shared.store();
        store.tokens.insert(
            access_token.clone(),
            AccessGrant {
                user: pending.user,
                scope: pending.scope.clone(),
                expires_at: now + shared.token_ttl,
            },
        );
        if let Some(used) = store.used_codes.get_mut(code) {
            used.access_token = Some(access_token.clone());
        }
    }
    tracing::info!(
        user = pending.user.email,
        tamper = pending.tamper.map(Tamper::as_str),
        "tokens issued"
    );
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: shared.token_ttl.as_secs(),
        id_token,
        scope: pending.scope.join(" "),
    })
}

/// Client authentication by `client_secret_basic` or `client_secret_post`, never both (RFC 6749 2.3).
fn authenticate_client(
    shared: &Shared,
    headers: &HeaderMap,
    form: &TokenForm,
) -> Result<(), OAuthError> {
    let authorization = headers.get(header::AUTHORIZATION);
    let (client_id, secret, via_header) = match authorization {
        Some(value) => {
            let unauthorized = |description: &str| OAuthError {
                status: StatusCode::UNAUTHORIZED,
                error: "invalid_client",
                description: description.to_owned(),
                basic_challenge: true,
            };
            let (id, secret) = parse_basic(value).ok_or_else(|| {
                unauthorized("Authorization header is not valid Basic credentials")
            })?;
            if form.client_secret.is_some() {
                return Err(OAuthError::bad_request(
                    "invalid_request",
                    "client authenticated by both Basic and client_secret",
                ));
            }
            if form
                .client_id
                .as_deref()
                .is_some_and(|body_id| body_id != id)
            {
                return Err(unauthorized(
                    "client_id in body differs from Basic credentials",
                ));
            }
            (id, secret, true)
        }
        None => {
            let id = form.client_id.clone().unwrap_or_default();
            let Some(secret) = form.client_secret.clone() else {
                return Err(OAuthError {
                    status: StatusCode::UNAUTHORIZED,
                    error: "invalid_client",
                    description: "client authentication is required".to_owned(),
                    basic_challenge: true,
                });
            };
            (id, secret, false)
        }
    };
    // Compare digests in constant time so response timing says nothing about the secret.
    let id_ok = digest_eq(&client_id, &shared.client_id);
    let secret_ok = digest_eq(&secret, &shared.client_secret);
    if id_ok && secret_ok {
        return Ok(());
    }
    Err(OAuthError {
        status: if via_header {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        },
        error: "invalid_client",
        description: "client authentication failed".to_owned(),
        basic_challenge: via_header,
    })
}

fn digest_eq(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes())
        .ct_eq(&Sha256::digest(b.as_bytes()))
        .into()
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))`, as RFC 6749 2.3.1 specifies.
fn parse_basic(value: &HeaderValue) -> Option<(String, String)> {
    let value = value.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id)?, form_decode(secret)?))
}

fn form_decode(component: &str) -> Option<String> {
    let spaced = component.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

fn check_code(
    shared: &Shared,
    pending: &PendingCode,
    form: &TokenForm,
    now: Instant,
) -> Result<(), OAuthError> {
    if pending.expires_at <= now {
        return Err(OAuthError::invalid_grant("code expired"));
    }
    if pending.client_id != shared.client_id {
        return Err(OAuthError::invalid_grant(
            "code was issued to another client",
        ));
    }
    if form.redirect_uri.as_deref() != Some(pending.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    let verifier = form
        .code_verifier
        .as_deref()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| OAuthError::bad_request("invalid_request", "code_verifier is required"))?;
    if !is_code_verifier(verifier) {
        return Err(OAuthError::invalid_grant(
            "code_verifier must be 43-128 unreserved characters",
        ));
    }
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if !bool::from(computed.as_bytes().ct_eq(pending.code_challenge.as_bytes())) {
        return Err(OAuthError::invalid_grant("PKCE verification failed"));
    }
    Ok(())
}

/// RFC 7636 4.1: 43 to 128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
fn is_code_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// The user's claims the granted scopes allow (OIDC Core 5.4): `email` → email and
/// email_verified, `profile` → names. `hd` comes with any scope, as Google sends it.
#[derive(Serialize)]
struct UserClaims {
    sub: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    given_name: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    family_name: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hd: Option<&'static str>,
}

impl UserClaims {
    fn new(user: &'static TestUser, scope: &[String]) -> UserClaims {
        let has = |s: &str| scope.iter().any(|granted| granted == s);
        let email = has("email");
        let profile = has("profile");
        UserClaims {
            sub: user.sub,
            email: email.then_some(user.email),
            email_verified: email.then_some(user.email_verified),
            name: profile.then_some(user.name),
            given_name: profile.then_some(user.given_name),
            family_name: profile.then_some(user.family_name),
            hd: user.hd,
        }
    }
}

#[derive(Serialize)]
struct IdTokenClaims {
    iss: String,
    aud: String,
    /// Google sets the authorized party to the client id too.
    azp: String,
    iat: i64,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<String>,
    at_hash: String,
    #[serde(flatten)]
    user: UserClaims,
}

fn id_token(
    shared: &Shared,
    pending: &PendingCode,
    access_token: &str,
) -> Result<String, jsonwebtoken::errors::Error> {
    let now = chrono::Utc::now().timestamp();
    let ttl = i64::try_from(shared.token_ttl.as_secs()).unwrap_or(i64::MAX / 2);
    let mut claims = IdTokenClaims {
        iss: shared.issuer.clone(),
        aud: pending.client_id.clone(),
        azp: pending.client_id.clone(),
        iat: now,
        exp: now.saturating_add(ttl),
        nonce: pending.nonce.clone(),
        at_hash: at_hash(access_token),
        user: UserClaims::new(pending.user, &pending.scope),
    };
    match pending.tamper {
        None | Some(Tamper::Signature) => {}
        Some(Tamper::Expired) => {
            // An hour past expiry: no clock-skew leeway a relying party might allow covers it.
            claims.exp = now - 3600;
            claims.iat = claims.exp - ttl;
        }
        Some(Tamper::WrongAud) => claims.aud = format!("{}-other-client", pending.client_id),
        Some(Tamper::WrongIss) => claims.iss = "https://wrong-issuer.invalid".to_owned(),
        Some(Tamper::WrongNonce) => claims.nonce = Some(super::random_token()),
        Some(Tamper::NoEmailVerified) => claims.user.email_verified = None,
    }
    let token = shared.key.sign(&claims)?;
    Ok(match pending.tamper {
        Some(Tamper::Signature) => corrupt_signature(&token),
        _ => token,
    })
}

pub(super) async fn userinfo(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned());
    let Some(token) = bearer else {
        return unauthorized_bearer(r#"Bearer realm="mock-oauth""#);
    };
    let claims = {
        let store = shared.store();
        store
            .tokens
            .get(&token)
            .filter(|grant| grant.expires_at > Instant::now())
            .map(|grant| UserClaims::new(grant.user, &grant.scope))
    };
    match claims {
        Some(claims) => (StatusCode::OK, no_store(), Json(claims)).into_response(),
        None => unauthorized_bearer(
            r#"Bearer realm="mock-oauth", error="invalid_token", error_description="unknown, expired or revoked access token""#,
        ),
    }
}

fn unauthorized_bearer(challenge: &'static str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, challenge)],
        Json(serde_json::json!({"error": "invalid_token"})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let encoded = STANDARD.encode("my%20client:s%3Acret+x");
        let value = HeaderValue::from_str(&format!("Basic {encoded}")).expect("header");
        assert_eq!(
            parse_basic(&value),
            Some(("my client".to_owned(), "s:cret x".to_owned()))
        );
        let bearer = HeaderValue::from_static("Bearer abc");
        assert_eq!(parse_basic(&bearer), None);
    }

    #[test]
    fn verifier_shape() {
        assert!(is_code_verifier(&"a".repeat(43)));
        assert!(is_code_verifier(&"a~._-".repeat(25)));
        assert!(!is_code_verifier(&"a".repeat(42)));
        assert!(!is_code_verifier(&"a".repeat(129)));
        assert!(!is_code_verifier(&format!("{}+", "a".repeat(43))));
    }

    #[test]
    fn scopes_gate_claims() {
        let user = &super::super::TEST_USERS[0];
        let only_openid =
            serde_json::to_value(UserClaims::new(user, &["openid".to_owned()])).expect("json");
        assert_eq!(
            only_openid,
            serde_json::json!({"sub": user.sub, "hd": "example.com"})
        );
        let all = serde_json::to_value(UserClaims::new(
            user,
            &[
                "openid".to_owned(),
                "email".to_owned(),
                "profile".to_owned(),
            ],
        ))
        .expect("json");
        assert_eq!(all["email"], "admin@example.com");
        assert_eq!(all["email_verified"], true);
        assert_eq!(all["name"], "Admin User");
    }
}
