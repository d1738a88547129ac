//! Sessions as events: `session.created` (the secret's SHA-256 only) when a
//! login succeeds, `session.revoked` (the actor is who revoked it; `reason`
//! says why) on logout, by an admin, when the user is disabled
//! (`accounts::users::disable`), or when a web session is next seen after its
//! idle timeout or expiry. The projection is `projections::sessions`;
//! `principal::authenticate` reads it on every request, so a revoked session
//! is refused on its next call, here and in the rack proxy.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use events::catalogue::{EventPayload, Logout, SessionCreated, SessionRevoked};
use events::store::Appender;
use events::{Actor, Source};
use projections::sessions::{self, Session};
use projections::users::User;
use sqlx::PgPool;
use uuid::Uuid;

use super::login::{Channel, Device};
use super::principal::{AuthFailure, Principal};
use super::secrets::{self, SecretKind};
use crate::accounts::users::Requester;
use crate::accounts::{valid_email, AccountError};

/// Why a session was revoked (`session.revoked` `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeReason {
    Logout,
    Admin,
    UserDisabled,
    IdleTimeout,
    Expired,
}

impl RevokeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RevokeReason::Logout => "logout",
            RevokeReason::Admin => "admin",
            RevokeReason::UserDisabled => "user_disabled",
            RevokeReason::IdleTimeout => "idle_timeout",
            RevokeReason::Expired => "expired",
        }
    }
}

/// A new session for `user`: its `session.created` payload and the secret
/// (returned to the client once; only its SHA-256 is in the payload).
pub fn new_session(
    user: &User,
    channel: Channel,
    device: &Device,
    lifetime: Duration,
    now: DateTime<Utc>,
) -> Result<(SessionCreated, String), getrandom::Error> {
    let generated = secrets::generate(SecretKind::Session)?;
    let lifetime = chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::days(90));
    let payload = SessionCreated {
        session_id: Uuid::new_v4(),
        user_id: user.id,
        email: user.email.clone(),
        channel: channel.as_str().to_owned(),
        token_sha256: generated.sha256,
        device_id: device.id.clone(),
        device_name: device.name.clone(),
        device_os: device.os.clone(),
        client_version: device.client_version.clone(),
        expires_at: (now + lifetime).to_rfc3339_opts(SecondsFormat::Secs, true),
    };
    Ok((payload, generated.secret))
}

fn revoked(session: &Session, reason: RevokeReason) -> SessionRevoked {
    SessionRevoked {
        session_id: session.id,
        user_id: session.user_id,
        email: session.user_email.clone(),
        reason: reason.as_str().to_owned(),
    }
}

/// The caller ends their own session: `session.revoked` (reason `logout`) and
/// `auth.logout`, together.
pub async fn logout(
    pool: &PgPool,
    appender: &Appender,
    principal: &Principal,
    source: &Source,
) -> Result<Session, AccountError> {
    let session = sessions::by_id(pool, principal.credential_id)
        .await?
        .ok_or_else(|| AccountError::NotFound("no such session".into()))?;
    let actor = principal.actor();
    let drafts = vec![
        revoked(&session, RevokeReason::Logout)
            .draft(actor.clone())
            .with_source(source.clone()),
        Logout {
            session_id: session.id,
            channel: session.channel.clone(),
        }
        .draft(actor)
        .with_source(source.clone()),
    ];
    appender.append_all(drafts).await?;
    Ok(session)
}

/// An admin revokes one session of `email`'s.
pub async fn revoke(
    pool: &PgPool,
    appender: &Appender,
    by: &Requester,
    email: &str,
    session_id: &str,
) -> Result<Session, AccountError> {
    let email = valid_email(email)?;
    let id = Uuid::parse_str(session_id.trim())
        .map_err(|_| AccountError::Invalid(format!("{session_id:?} is not a session id")))?;
    let session = sessions::by_id(pool, id)
        .await?
        .filter(|s| s.user_email == email)
        .ok_or_else(|| AccountError::NotFound(format!("no session {id} for {email}")))?;
    if session.revoked_at.is_some() {
        return Err(AccountError::Conflict(format!(
            "session {id} is already revoked"
        )));
    }
    appender
        .append(by.draft(&revoked(&session, RevokeReason::Admin)))
        .await?;
    sessions::by_id(pool, id)
        .await?
        .ok_or_else(|| AccountError::NotFound(format!("no session {id}")))
}

/// An admin revokes every live session of `email`'s, atomically; how many.
pub async fn revoke_all(
    pool: &PgPool,
    appender: &Appender,
    by: &Requester,
    email: &str,
) -> Result<usize, AccountError> {
    let email = valid_email(email)?;
    let user = projections::users::by_email(pool, &email)
        .await?
        .ok_or_else(|| AccountError::NotFound(format!("no user {email}")))?;
    let live = sessions::active_for_user(pool, user.id, Utc::now()).await?;
    if live.is_empty() {
        return Ok(0);
    }
    let drafts = live
        .iter()
        .map(|s| by.draft(&revoked(s, RevokeReason::Admin)))
        .collect();
    appender.append_all(drafts).await?;
    Ok(live.len())
}

/// A session refused for idleness or age is revoked when next seen, so the
/// projection (and an admin's list) shows it ended, and why. Best effort: the
/// refusal stands either way, and a concurrent revoke makes this a no-op.
pub async fn revoke_when_seen(
    pool: &PgPool,
    appender: &Appender,
    secret: &str,
    failure: AuthFailure,
    source: &Source,
) {
    let reason = match failure {
        AuthFailure::IdleTimeout => RevokeReason::IdleTimeout,
        AuthFailure::Expired => RevokeReason::Expired,
        _ => return,
    };
    if secrets::classify(secret) != Some(SecretKind::Session) {
        return;
    }
    let session = match sessions::by_sha256(pool, &secrets::sha256_hex(secret)).await {
        Ok(Some(session)) if session.revoked_at.is_none() => session,
        Ok(_) => return,
        Err(e) => {
            tracing::warn!(error = %e, "could not look up a stale session to revoke it");
            return;
        }
    };
    let draft = revoked(&session, reason)
        .draft(Actor::system("gateway"))
        .with_source(source.clone());
    match appender.append(draft).await {
        Ok(_) => {
            tracing::info!(session = %session.id, reason = reason.as_str(), "stale session revoked")
        }
        Err(e) => {
            tracing::info!(error = %e, "stale session not revoked (already revoked, or audit unavailable)")
        }
    }
}
