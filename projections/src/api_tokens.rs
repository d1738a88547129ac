//! API tokens for automation: `api_token.created` (holding only the SHA-256 of
//! the secret) and `api_token.revoked`.

use chrono::{DateTime, Utc};
use events::catalogue::{ApiTokenCreated, ApiTokenRevoked, EventPayload};
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
        ApiTokenCreated::TYPE => {
            let p: ApiTokenCreated = crate::payload(data)?;
            vec![Change::InsertApiToken {
                id: p.token_id,
                name: p.name,
                token_sha256: p.token_sha256,
                role: p.role,
                user_id: p.user_id,
                user_email: p.user_email,
                expires_at: crate::optional_time(
                    event_type,
                    "expires_at",
                    p.expires_at.as_deref(),
                )?,
                created_by: actor,
                at,
            }]
        }
        ApiTokenRevoked::TYPE => {
            let p: ApiTokenRevoked = crate::payload(data)?;
            vec![Change::RevokeApiToken {
                id: p.token_id,
                by: actor,
                reason: p.reason,
                at,
            }]
        }
        _ => return Ok(None),
    };
    Ok(Some(changes))
}

/// The read model (never the secret; not even its hash leaves the crate's reads
/// except through [`by_sha256`], which callers use to authenticate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ApiToken {
    pub id: Uuid,
    pub name: String,
    pub role: String,
    pub user_id: Option<Uuid>,
    pub user_email: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<String>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
}

impl ApiToken {
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }
}

const COLUMNS: &str =
    "id, name, role, user_id, user_email, expires_at, created_at, created_by, revoked_at, revoked_by";

/// Look a presented secret up by its SHA-256 (the index lookup is on a hash,
/// so timing reveals nothing about the secret).
pub async fn by_sha256(pool: &PgPool, token_sha256: &str) -> Result<Option<ApiToken>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_tokens WHERE token_sha256 = $1"
    ))
    .bind(token_sha256)
    .fetch_optional(pool)
    .await
}

pub async fn by_id(pool: &PgPool, id: Uuid) -> Result<Option<ApiToken>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM api_tokens WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

pub async fn active_by_name(pool: &PgPool, name: &str) -> Result<Option<ApiToken>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_tokens WHERE name = $1 AND revoked_at IS NULL"
    ))
    .bind(name)
    .fetch_optional(pool)
    .await
}

pub async fn list(pool: &PgPool) -> Result<Vec<ApiToken>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_tokens ORDER BY created_seq"
    ))
    .fetch_all(pool)
    .await
}
