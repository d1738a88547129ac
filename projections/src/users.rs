//! People who may sign in: `user.created`, `user.role_changed`, `user.disabled`.

use chrono::{DateTime, Utc};
use events::catalogue::{EventPayload, UserCreated, UserDisabled, UserRoleChanged};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::change::{At, Change};
use crate::FoldError;

pub(crate) fn fold(
    event_type: &str,
    data: &serde_json::Value,
    at: At,
) -> Result<Option<Vec<Change>>, FoldError> {
    let changes = match event_type {
        UserCreated::TYPE => {
            let p: UserCreated = crate::payload(data)?;
            vec![Change::InsertUser {
                id: p.user_id,
                email: p.email,
                name: p.name,
                role: p.role,
                at,
            }]
        }
        UserRoleChanged::TYPE => {
            let p: UserRoleChanged = crate::payload(data)?;
            vec![Change::SetUserRole {
                id: p.user_id,
                role: p.role,
                at,
            }]
        }
        UserDisabled::TYPE => {
            let p: UserDisabled = crate::payload(data)?;
            vec![Change::DisableUser { id: p.user_id, at }]
        }
        _ => return Ok(None),
    };
    Ok(Some(changes))
}

/// The read model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub role: String,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, email, name, role, disabled, created_at, updated_at";

/// Emails are compared case-insensitively; they are stored lower-cased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

pub async fn by_email(pool: &PgPool, email: &str) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE email = $1"))
        .bind(normalize_email(email))
        .fetch_optional(pool)
        .await
}

pub async fn by_id(pool: &PgPool, id: Uuid) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

pub async fn list(pool: &PgPool) -> Result<Vec<User>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM users ORDER BY email"))
        .fetch_all(pool)
        .await
}
