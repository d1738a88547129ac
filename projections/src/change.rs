//! Row changes a fold produces, and the one place that turns them into SQL.
//!
//! The same executor writes the live tables (schema `public`, inside the
//! appending transaction) and a scratch schema (rebuild `--check`), so a
//! rebuild and the live fold cannot drift apart.
//!
//! Invariants the caller's input may violate (a duplicate email, an unknown
//! token) are enforced here against the current rows and reported as a
//! [`Rejection`]: the event is then not appended at all.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// A refused change, phrased for the person who asked for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejection(pub String);

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// Where a change is written: the event that causes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At {
    pub seq: i64,
    pub ts: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    InsertUser {
        id: Uuid,
        email: String,
        name: Option<String>,
        role: String,
        at: At,
    },
    SetUserRole {
        id: Uuid,
        role: String,
        at: At,
    },
    DisableUser {
        id: Uuid,
        at: At,
    },
    InsertApiToken {
        id: Uuid,
        name: String,
        token_sha256: String,
        role: String,
        user_id: Option<Uuid>,
        user_email: Option<String>,
        expires_at: Option<DateTime<Utc>>,
        created_by: Option<String>,
        at: At,
    },
    RevokeApiToken {
        id: Uuid,
        by: Option<String>,
        reason: Option<String>,
        at: At,
    },
    InsertSession {
        id: Uuid,
        user_id: Uuid,
        user_email: String,
        token_sha256: String,
        channel: String,
        device_id: Option<String>,
        device_name: Option<String>,
        device_os: Option<String>,
        client_version: Option<String>,
        expires_at: DateTime<Utc>,
        at: At,
    },
    RevokeSession {
        id: Uuid,
        by: Option<String>,
        reason: Option<String>,
        at: At,
    },
    /// Second factors, the lock and the sessions' MFA state (`crate::mfa`).
    Mfa {
        change: crate::mfa::MfaChange,
        at: At,
    },
}

/// A schema name we generated or `public`; never user input, but checked anyway
/// because it is spliced into SQL.
pub(crate) fn checked_schema(schema: &str) -> Result<&str, ApplyError> {
    let ok = !schema.is_empty()
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(schema)
    } else {
        Err(ApplyError::Database(sqlx::Error::Protocol(format!(
            "invalid schema name {schema:?}"
        ))))
    }
}

pub(crate) fn unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"))
}

/// The result of an insert that must create its row: a unique violation
/// means the event repeats one already applied, and is its rejection.
pub(crate) fn inserted(
    result: Result<sqlx::postgres::PgQueryResult, sqlx::Error>,
    rejection: impl FnOnce() -> String,
) -> Result<(), ApplyError> {
    match result {
        Ok(_) => Ok(()),
        Err(e) if unique_violation(&e) => Err(Rejection(rejection()).into()),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn expect_one_row(
    affected: u64,
    rejection: impl FnOnce() -> String,
) -> Result<(), ApplyError> {
    if affected == 1 {
        Ok(())
    } else {
        Err(Rejection(rejection()).into())
    }
}

impl Change {
    pub async fn apply(&self, conn: &mut PgConnection, schema: &str) -> Result<(), ApplyError> {
        let s = checked_schema(schema)?;
        match self {
            Change::InsertUser {
                id,
                email,
                name,
                role,
                at,
            } => {
                let result = sqlx::query(&format!(
                    "INSERT INTO {s}.users (id, email, name, role, disabled, created_at, created_seq, updated_at, updated_seq) \
                     VALUES ($1, $2, $3, $4, false, $5, $6, $5, $6)"
                ))
                .bind(id)
                .bind(email)
                .bind(name)
                .bind(role)
                .bind(at.ts)
                .bind(at.seq)
                .execute(&mut *conn)
                .await;
                inserted(result, || format!("user {email} already exists"))
            }
            Change::SetUserRole { id, role, at } => {
                let done = sqlx::query(&format!(
                    "UPDATE {s}.users SET role = $2, updated_at = $3, updated_seq = $4 WHERE id = $1"
                ))
                .bind(id)
                .bind(role)
                .bind(at.ts)
                .bind(at.seq)
                .execute(&mut *conn)
                .await?;
                expect_one_row(done.rows_affected(), || format!("no user with id {id}"))
            }
            Change::DisableUser { id, at } => {
                let done = sqlx::query(&format!(
                    "UPDATE {s}.users SET disabled = true, updated_at = $2, updated_seq = $3 \
                     WHERE id = $1 AND NOT disabled"
                ))
                .bind(id)
                .bind(at.ts)
                .bind(at.seq)
                .execute(&mut *conn)
                .await?;
                expect_one_row(done.rows_affected(), || {
                    format!("no enabled user with id {id}")
                })
            }
            Change::InsertApiToken {
                id,
                name,
                token_sha256,
                role,
                user_id,
                user_email,
                expires_at,
                created_by,
                at,
            } => {
                let result = sqlx::query(&format!(
                    "INSERT INTO {s}.api_tokens (id, name, token_sha256, role, user_id, user_email, expires_at, created_at, created_seq, created_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                ))
                .bind(id)
                .bind(name)
                .bind(token_sha256)
                .bind(role)
                .bind(user_id)
                .bind(user_email)
                .bind(expires_at)
                .bind(at.ts)
                .bind(at.seq)
                .bind(created_by)
                .execute(&mut *conn)
                .await;
                inserted(result, || {
                    format!("an active API token named {name:?} already exists")
                })
            }
            Change::RevokeApiToken { id, by, reason, at } => {
                revoke(conn, s, Revocable::ApiToken, *id, by, reason, *at).await
            }
            Change::InsertSession {
                id,
                user_id,
                user_email,
                token_sha256,
                channel,
                device_id,
                device_name,
                device_os,
                client_version,
                expires_at,
                at,
            } => {
                let result = sqlx::query(&format!(
                    "INSERT INTO {s}.sessions (id, user_id, user_email, token_sha256, channel, device_id, device_name, device_os, client_version, created_at, created_seq, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                ))
                .bind(id)
                .bind(user_id)
                .bind(user_email)
                .bind(token_sha256)
                .bind(channel)
                .bind(device_id)
                .bind(device_name)
                .bind(device_os)
                .bind(client_version)
                .bind(at.ts)
                .bind(at.seq)
                .bind(expires_at)
                .execute(&mut *conn)
                .await;
                inserted(result, || format!("session {id} already exists"))
            }
            Change::RevokeSession { id, by, reason, at } => {
                revoke(conn, s, Revocable::Session, *id, by, reason, *at).await
            }
            Change::Mfa { change, at } => change.apply(conn, s, *at).await,
        }
    }
}

/// The credentials that can be revoked; they share the revocation columns.
#[derive(Clone, Copy)]
enum Revocable {
    ApiToken,
    Session,
}

/// Mark a live credential revoked. One that does not exist or is already
/// revoked refuses the event.
async fn revoke(
    conn: &mut PgConnection,
    schema: &str,
    kind: Revocable,
    id: Uuid,
    by: &Option<String>,
    reason: &Option<String>,
    at: At,
) -> Result<(), ApplyError> {
    let (table, what) = match kind {
        Revocable::ApiToken => ("api_tokens", "API token"),
        Revocable::Session => ("sessions", "session"),
    };
    let done = sqlx::query(&format!(
        "UPDATE {schema}.{table} SET revoked_at = $2, revoked_seq = $3, revoked_by = $4, revoke_reason = $5 \
         WHERE id = $1 AND revoked_at IS NULL"
    ))
    .bind(id)
    .bind(at.ts)
    .bind(at.seq)
    .bind(by)
    .bind(reason)
    .execute(conn)
    .await?;
    expect_one_row(done.rows_affected(), || {
        format!("no active {what} with id {id}")
    })
}
