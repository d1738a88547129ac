//! Who is calling: a presented secret resolved to a [`Principal`], or a
//! precise [`AuthFailure`] (its reason goes in the `X-Error-Reason` header and
//! the audit event, never the secret).
//!
//! Sources, in order: `Authorization: Bearer <secret>`, then
//! `Authorization: Basic base64(any:<secret>)` (the username is ignored, as the
//! rack does). A session's role is read from its user on every call, so a role
//! change, a disable or a revoke takes effect on the next request.

use axum::http::HeaderMap;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use decision::rbac::Role;
use events::{Actor, ActorKind};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::secrets::{self, SecretKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    Session,
    ApiToken,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Principal {
    pub kind: CredentialKind,
    /// The session id or API token id.
    pub credential_id: Uuid,
    pub user_id: Option<Uuid>,
    /// The user's email (sessions) or the token owner's (tokens with an owner).
    pub email: Option<String>,
    pub name: Option<String>,
    /// The role it acts with: for a token owned by a person, never more than
    /// the owner's current role (`decision::rbac::cap_token_role`).
    pub role: Role,
    /// A token whose role and owner's role are not ordered: the owner's role,
    /// which must hold every permission too ([`Principal::authorize`]).
    pub ceiling: Option<Role>,
    pub token_name: Option<String>,
    /// Sessions: `web` or `cli`.
    pub channel: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Sessions: what MFA this session has shown (`None` for API tokens,
    /// which are never asked for MFA).
    pub mfa: Option<SessionMfa>,
}

/// A session's second-factor state, read with the session on every call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionMfa {
    /// Verified for sign-in (by a method, a backup code or a trusted device).
    pub verified: bool,
    /// What verified it (`totp`, `webauthn`, `yubikey`, `backup_code`, `trusted_device`).
    pub method: Option<String>,
    /// The last verification that opened the step-up window.
    pub recent_step_up_at: Option<DateTime<Utc>>,
    /// The person has at least one usable method.
    pub enrolled: bool,
}

impl Principal {
    /// The actor recorded on events this caller causes.
    pub fn actor(&self) -> Actor {
        match self.kind {
            CredentialKind::Session => Actor {
                kind: ActorKind::User,
                id: self.user_id.map(|id| id.to_string()),
                email: self.email.clone(),
                role: Some(self.role.to_string()),
            },
            CredentialKind::ApiToken => Actor {
                kind: ActorKind::ApiToken,
                id: Some(self.credential_id.to_string()),
                email: self.email.clone(),
                role: Some(self.role.to_string()),
            },
        }
    }

    /// May this caller use `permission`? Its role must hold it, and so must
    /// its [`ceiling`](Principal::ceiling), if any.
    pub fn authorize(&self, permission: &str) -> Result<(), decision::rbac::Denial> {
        decision::rbac::authorize(self.role, permission)?;
        match self.ceiling {
            Some(owner) => decision::rbac::authorize(owner, permission),
            None => Ok(()),
        }
    }

    /// A name for logs and the rack's own audit log (`Convox-Actor`).
    pub fn display_name(&self) -> String {
        match (&self.email, &self.token_name) {
            (Some(email), _) if self.kind == CredentialKind::Session => email.clone(),
            (_, Some(token)) => format!("token:{token}"),
            (Some(email), None) => email.clone(),
            (None, None) => self.credential_id.to_string(),
        }
    }
}

/// Why a credential was refused. `reason()` is stable (header, events, tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("authentication required")]
    Missing,
    #[error("malformed credentials")]
    Malformed,
    #[error("unknown token")]
    Unknown,
    #[error("token expired")]
    Expired,
    #[error("token revoked")]
    Revoked,
    #[error("the token's user is disabled")]
    OwnerDisabled,
    #[error("session expired after inactivity")]
    IdleTimeout,
    #[error("browser session cookies are not permitted for CLI routes")]
    CookieNotAllowed,
    #[error("authentication is temporarily unavailable")]
    Unavailable,
    #[error(
        "this account is locked after repeated failed MFA verifications; an admin must unlock it"
    )]
    Locked,
}

impl AuthFailure {
    pub fn reason(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing_credentials",
            AuthFailure::Malformed => "malformed_credentials",
            AuthFailure::Unknown => "unknown_token",
            AuthFailure::Expired => "expired",
            AuthFailure::Revoked => "revoked",
            AuthFailure::OwnerDisabled => "user_disabled",
            AuthFailure::IdleTimeout => "idle_timeout",
            AuthFailure::CookieNotAllowed => "cookie_not_allowed",
            AuthFailure::Unavailable => "unavailable",
            AuthFailure::Locked => "user_locked",
        }
    }
}

/// The secret in the Authorization header, if any (Bearer, or Basic's password).
pub fn secret_from_headers(headers: &HeaderMap) -> Result<Option<String>, AuthFailure> {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| AuthFailure::Malformed)?.trim();
    let (scheme, rest) = value.split_once(' ').ok_or(AuthFailure::Malformed)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Some(rest.to_owned()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD.decode(rest).map_err(|_| AuthFailure::Malformed)?;
        let text = String::from_utf8(decoded).map_err(|_| AuthFailure::Malformed)?;
        let (_username, password) = text.split_once(':').ok_or(AuthFailure::Malformed)?;
        return Ok(Some(password.to_owned()));
    }
    Err(AuthFailure::Malformed)
}

/// The marker of an MFA code carried on the credential itself
/// (`<token>.totp.<code>`), so the plain `convox` CLI can send one in `RACK_URL`.
pub const INLINE_PROOF: &str = ".totp.";

/// A presented secret split from the MFA code it may carry.
pub fn split_inline_proof(presented: &str) -> (&str, Option<&str>) {
    match presented.split_once(INLINE_PROOF) {
        Some((secret, code)) if !code.is_empty() => (secret, Some(code)),
        Some((secret, _)) => (secret, None),
        None => (presented, None),
    }
}

/// Settings that decide whether a session is still good.
#[derive(Debug, Clone, Copy)]
pub struct SessionRules {
    /// Web sessions end after this long without use (extended on use).
    pub web_idle_timeout: std::time::Duration,
}

/// Resolve a presented secret. Never logs or returns the secret.
pub async fn authenticate(
    pool: &PgPool,
    rules: SessionRules,
    presented: &str,
) -> Result<Principal, AuthFailure> {
    let Some(kind) = secrets::classify(presented) else {
        return Err(if presented.starts_with("rgw_") {
            AuthFailure::Malformed
        } else {
            AuthFailure::Unknown
        });
    };
    let hash = secrets::sha256_hex(presented);
    let now = Utc::now();
    match kind {
        SecretKind::ApiToken => {
            let token = projections::api_tokens::by_sha256(pool, &hash)
                .await
                .map_err(unavailable)?
                .ok_or(AuthFailure::Unknown)?;
            token_principal(pool, token, now).await
        }
        SecretKind::Session => {
            let session = projections::sessions::by_sha256(pool, &hash)
                .await
                .map_err(unavailable)?
                .ok_or(AuthFailure::Unknown)?;
            let (id, created_at, web) = (session.id, session.created_at, session.channel == "web");
            let principal = session_principal(pool, session, now).await?;
            if web {
                touch_web_session(pool, id, created_at, rules.web_idle_timeout, now).await?;
            }
            Ok(principal)
        }
    }
}

/// Is this caller still who it was? The credential read again by its id
/// (revoked, expired, owner disabled, role changed), for long-lived streams
/// that were authorised once at their start. A web session's idle clock is
/// not consulted: an open stream is use.
pub async fn recheck(pool: &PgPool, principal: &Principal) -> Result<Principal, AuthFailure> {
    let now = Utc::now();
    match principal.kind {
        CredentialKind::ApiToken => {
            let token = projections::api_tokens::by_id(pool, principal.credential_id)
                .await
                .map_err(unavailable)?
                .ok_or(AuthFailure::Revoked)?;
            token_principal(pool, token, now).await
        }
        CredentialKind::Session => {
            let session = projections::sessions::by_id(pool, principal.credential_id)
                .await
                .map_err(unavailable)?
                .ok_or(AuthFailure::Revoked)?;
            session_principal(pool, session, now).await
        }
    }
}

async fn token_principal(
    pool: &PgPool,
    token: projections::api_tokens::ApiToken,
    now: DateTime<Utc>,
) -> Result<Principal, AuthFailure> {
    if token.revoked_at.is_some() {
        return Err(AuthFailure::Revoked);
    }
    if token.expires_at.is_some_and(|at| at <= now) {
        return Err(AuthFailure::Expired);
    }
    let token_role: Role = token.role.parse().map_err(|_| AuthFailure::Unknown)?;
    // A token is never stronger than its owner now is.
    let owner = match token.user_id {
        Some(id) => {
            let user = projections::users::by_id(pool, id)
                .await
                .map_err(unavailable)?
                .ok_or(AuthFailure::OwnerDisabled)?;
            if user.disabled {
                return Err(AuthFailure::OwnerDisabled);
            }
            Some(user)
        }
        None => None,
    };
    let (role, ceiling) = match &owner {
        Some(user) => {
            let owner_role: Role = user.role.parse().map_err(|_| AuthFailure::OwnerDisabled)?;
            decision::rbac::cap_token_role(token_role, owner_role)
        }
        None => (token_role, None),
    };
    Ok(Principal {
        kind: CredentialKind::ApiToken,
        credential_id: token.id,
        user_id: token.user_id,
        email: token.user_email.clone(),
        name: owner.and_then(|u| u.name),
        role,
        ceiling,
        token_name: Some(token.name),
        channel: None,
        expires_at: token.expires_at,
        mfa: None,
    })
}

async fn session_principal(
    pool: &PgPool,
    session: projections::sessions::Session,
    now: DateTime<Utc>,
) -> Result<Principal, AuthFailure> {
    if session.revoked_at.is_some() {
        return Err(AuthFailure::Revoked);
    }
    if session.expires_at <= now {
        return Err(AuthFailure::Expired);
    }
    let user = projections::users::by_id(pool, session.user_id)
        .await
        .map_err(unavailable)?
        .ok_or(AuthFailure::OwnerDisabled)?;
    if user.disabled {
        return Err(AuthFailure::OwnerDisabled);
    }
    let role: Role = user.role.parse().map_err(|_| AuthFailure::OwnerDisabled)?;
    let mfa = projections::mfa::principal_state(pool, session.id, user.id)
        .await
        .map_err(unavailable)?;
    if mfa.locked_at.is_some() {
        return Err(AuthFailure::Locked);
    }
    Ok(Principal {
        mfa: Some(SessionMfa {
            verified: mfa.mfa_verified,
            method: mfa.mfa_method,
            recent_step_up_at: mfa.recent_step_up_at,
            enrolled: mfa.enrolled,
        }),
        kind: CredentialKind::Session,
        credential_id: session.id,
        user_id: Some(user.id),
        email: Some(user.email),
        name: user.name,
        role,
        ceiling: None,
        token_name: None,
        channel: Some(session.channel),
        expires_at: Some(session.expires_at),
    })
}

/// Refuse an idle web session, else record this use (at most every 15 s, so a
/// busy page does not write on every request).
async fn touch_web_session(
    pool: &PgPool,
    session: Uuid,
    created_at: DateTime<Utc>,
    idle: std::time::Duration,
    now: DateTime<Utc>,
) -> Result<(), AuthFailure> {
    let last: Option<DateTime<Utc>> =
        sqlx::query_scalar("SELECT last_seen_at FROM session_activity WHERE session_id = $1")
            .bind(session)
            .fetch_optional(pool)
            .await
            .map_err(unavailable)?;
    let last = last.unwrap_or(created_at);
    let idle = chrono::Duration::from_std(idle).unwrap_or(chrono::Duration::MAX);
    if now - last > idle {
        return Err(AuthFailure::IdleTimeout);
    }
    sqlx::query(
        "INSERT INTO session_activity (session_id, last_seen_at) VALUES ($1, $2) \
         ON CONFLICT (session_id) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at \
         WHERE session_activity.last_seen_at < EXCLUDED.last_seen_at - interval '15 seconds'",
    )
    .bind(session)
    .bind(now)
    .execute(pool)
    .await
    .map_err(unavailable)?;
    Ok(())
}

fn unavailable(error: sqlx::Error) -> AuthFailure {
    tracing::error!(error = %error, "credential lookup failed");
    AuthFailure::Unavailable
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_str(value).unwrap(),
        );
        h
    }

    #[test]
    fn an_mfa_code_may_ride_on_the_token() {
        assert_eq!(
            split_inline_proof("rgw_sess_abc.totp.123456"),
            ("rgw_sess_abc", Some("123456"))
        );
        assert_eq!(split_inline_proof("rgw_sess_abc"), ("rgw_sess_abc", None));
        assert_eq!(
            split_inline_proof("rgw_sess_abc.totp."),
            ("rgw_sess_abc", None)
        );
    }

    #[test]
    fn reads_bearer_and_basic_password() {
        assert_eq!(secret_from_headers(&HeaderMap::new()), Ok(None));
        assert_eq!(
            secret_from_headers(&headers("Bearer abc")),
            Ok(Some("abc".into()))
        );
        let basic = format!("Basic {}", STANDARD.encode("convox:rgw_token_x"));
        assert_eq!(
            secret_from_headers(&headers(&basic)),
            Ok(Some("rgw_token_x".into()))
        );
        let no_colon = format!("Basic {}", STANDARD.encode("justuser"));
        assert_eq!(
            secret_from_headers(&headers(&no_colon)),
            Err(AuthFailure::Malformed)
        );
        assert_eq!(
            secret_from_headers(&headers("Basic !!!")),
            Err(AuthFailure::Malformed)
        );
        assert_eq!(
            secret_from_headers(&headers("Digest x")),
            Err(AuthFailure::Malformed)
        );
    }
}
