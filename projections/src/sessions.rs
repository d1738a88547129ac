//! Signed-in sessions (web and CLI): `session.created` (the token's SHA-256
//! only) and `session.revoked` (by whom, why).

use chrono::{DateTime, Utc};
use events::catalogue::{EventPayload, SessionCreated, SessionRevoked};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::change::{At, Change};
use crate::FoldError;

pub(crate) fn fold(
    event_type: &str,
    data: &serde_json::Value,
    actor: Option<String>,
    at: At,
) -> Result<Option<Vec<Change>>, FoldError> {
    let changes = match event_type {
        SessionCreated::TYPE => {
            let p: SessionCreated = crate::payload(data)?;
            let expires_at = crate::optional_time(event_type, "expires_at", Some(&p.expires_at))?
                .ok_or_else(|| FoldError::new(event_type, "expires_at is required"))?;
            vec![Change::InsertSession {
                id: p.session_id,
                user_id: p.user_id,
                user_email: p.email,
                token_sha256: p.token_sha256,
                channel: p.channel,
                device_id: p.device_id,
                device_name: p.device_name,
                device_os: p.device_os,
                client_version: p.client_version,
                expires_at,
                at,
            }]
        }
        SessionRevoked::TYPE => {
            let p: SessionRevoked = crate::payload(data)?;
            vec![Change::RevokeSession {
                id: p.session_id,
                by: actor,
                reason: Some(p.reason),
                at,
            }]
        }
        _ => return Ok(None),
    };
    Ok(Some(changes))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Session {
    pub id: Uuid,
    pub user_id: Uuid,
    pub user_email: String,
    pub channel: String,
    pub device_id: Option<String>,
    pub device_name: Option<String>,
    pub device_os: Option<String>,
    pub client_version: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
    pub revoke_reason: Option<String>,
}

impl Session {
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

const COLUMNS: &str =
    "id, user_id, user_email, channel, device_id, device_name, device_os, client_version, \
                       created_at, expires_at, revoked_at, revoked_by, revoke_reason";

pub async fn by_sha256(pool: &PgPool, token_sha256: &str) -> Result<Option<Session>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM sessions WHERE token_sha256 = $1"
    ))
    .bind(token_sha256)
    .fetch_optional(pool)
    .await
}

pub async fn by_id(pool: &PgPool, id: Uuid) -> Result<Option<Session>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM sessions WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

pub async fn for_user(pool: &PgPool, user_id: Uuid) -> Result<Vec<Session>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM sessions WHERE user_id = $1 ORDER BY created_seq DESC"
    ))
    .bind(user_id)
    .fetch_all(pool)
    .await
}

/// Sessions that still grant access (not revoked, not past their absolute expiry).
pub async fn active_for_user(
    pool: &PgPool,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<Session>, sqlx::Error> {
    Ok(for_user(pool, user_id)
        .await?
        .into_iter()
        .filter(|s| s.is_active(now))
        .collect())
}
