//! Logins in progress (`login_states`, migration 0004): one row per
//! authorization request, found by the SHA-256 of its `state`, claimed once
//! by the provider's callback, and (CLI) collected once by `/complete`.
//! Rows outlive their expiry by a day so a late or replayed callback is told
//! apart from an unknown one; then they are deleted.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgExecutor, PgPool, Row};
use uuid::Uuid;

use super::login::{Channel, Device, LoginFailure};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    /// The callback has claimed the login and is talking to the provider.
    Exchanging,
    Authenticated,
    Failed,
    Completed,
    Expired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Exchanging => "exchanging",
            Status::Authenticated => "authenticated",
            Status::Failed => "failed",
            Status::Completed => "completed",
            Status::Expired => "expired",
        }
    }

    fn parse(text: &str) -> Status {
        match text {
            "pending" => Status::Pending,
            "exchanging" => Status::Exchanging,
            "authenticated" => Status::Authenticated,
            "failed" => Status::Failed,
            "completed" => Status::Completed,
            _ => Status::Expired,
        }
    }
}

pub struct NewLogin<'a> {
    pub id: Uuid,
    pub state_sha256: &'a str,
    pub channel: Channel,
    pub cli_secret_sha256: Option<&'a str>,
    pub pkce_verifier: &'a str,
    pub nonce: &'a str,
    pub device: &'a Device,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct LoginRow {
    pub id: Uuid,
    pub channel: String,
    pub cli_secret_sha256: Option<String>,
    pub pkce_verifier: String,
    pub nonce: String,
    pub device: Device,
    pub status: Status,
    pub user_id: Option<Uuid>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub failure: Option<LoginFailure>,
    pub session_id: Option<Uuid>,
    pub expires_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, channel, cli_secret_sha256, pkce_verifier, nonce, device_id, device_name, \
     device_os, client_version, status, user_id, email, name, failure_reason, failure_detail, \
     session_id, expires_at";

fn from_row(row: PgRow) -> LoginRow {
    let reason: Option<String> = row.get("failure_reason");
    let detail: Option<String> = row.get("failure_detail");
    LoginRow {
        id: row.get("id"),
        channel: row.get("channel"),
        cli_secret_sha256: row.get("cli_secret_sha256"),
        pkce_verifier: row.get("pkce_verifier"),
        nonce: row.get("nonce"),
        device: Device {
            id: row.get("device_id"),
            name: row.get("device_name"),
            os: row.get("device_os"),
            client_version: row.get("client_version"),
        },
        status: Status::parse(row.get::<&str, _>("status")),
        user_id: row.get("user_id"),
        email: row.get("email"),
        name: row.get("name"),
        failure: reason.map(|r| LoginFailure::from_stored(&r, detail.as_deref())),
        session_id: row.get("session_id"),
        expires_at: row.get("expires_at"),
    }
}

/// Record a new login (and forget logins that ended more than a day ago).
pub async fn insert(pool: &PgPool, new: &NewLogin<'_>) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_states WHERE expires_at < $1 - interval '1 day'")
        .bind(new.created_at)
        .execute(pool)
        .await?;
    sqlx::query(
        "INSERT INTO login_states (id, state_sha256, channel, cli_secret_sha256, pkce_verifier, nonce, \
         device_id, device_name, device_os, client_version, status, created_at, expires_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', $11, $12, $11)",
    )
    .bind(new.id)
    .bind(new.state_sha256)
    .bind(new.channel.as_str())
    .bind(new.cli_secret_sha256)
    .bind(new.pkce_verifier)
    .bind(new.nonce)
    .bind(&new.device.id)
    .bind(&new.device.name)
    .bind(&new.device.os)
    .bind(&new.device.client_version)
    .bind(new.created_at)
    .bind(new.expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// What a callback finds for the state it was given.
pub enum Claim {
    /// This callback now owns the login (status `exchanging`).
    Claimed(LoginRow),
    Unknown,
    Expired(LoginRow),
    /// Already claimed by an earlier callback.
    Used(LoginRow),
}

/// Claim a pending login for its callback, exactly once.
pub async fn claim_for_callback(
    pool: &PgPool,
    state_sha256: &str,
    channel: Channel,
    now: DateTime<Utc>,
) -> Result<Claim, sqlx::Error> {
    let claimed = sqlx::query(&format!(
        "UPDATE login_states SET status = 'exchanging', updated_at = $3 \
         WHERE state_sha256 = $1 AND channel = $2 AND status = 'pending' AND expires_at > $3 \
         RETURNING {COLUMNS}"
    ))
    .bind(state_sha256)
    .bind(channel.as_str())
    .bind(now)
    .fetch_optional(pool)
    .await?;
    if let Some(row) = claimed {
        return Ok(Claim::Claimed(from_row(row)));
    }
    let Some(row) = by_state(pool, state_sha256).await? else {
        return Ok(Claim::Unknown);
    };
    if row.channel != channel.as_str() {
        return Ok(Claim::Unknown);
    }
    if row.status == Status::Pending || row.status == Status::Expired {
        mark_expired(pool, row.id, now).await?;
        return Ok(Claim::Expired(row));
    }
    Ok(Claim::Used(row))
}

pub async fn by_state(
    executor: impl PgExecutor<'_>,
    state_sha256: &str,
) -> Result<Option<LoginRow>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM login_states WHERE state_sha256 = $1"
    ))
    .bind(state_sha256)
    .fetch_optional(executor)
    .await?;
    Ok(row.map(from_row))
}

/// The row, locked until the transaction ends (one `/complete` at a time per login).
pub async fn lock_by_state(
    executor: impl PgExecutor<'_>,
    state_sha256: &str,
) -> Result<Option<LoginRow>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM login_states WHERE state_sha256 = $1 FOR UPDATE"
    ))
    .bind(state_sha256)
    .fetch_optional(executor)
    .await?;
    Ok(row.map(from_row))
}

pub async fn by_id(pool: &PgPool, id: Uuid) -> Result<Option<LoginRow>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM login_states WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(from_row))
}

pub async fn mark_authenticated(
    pool: &PgPool,
    id: Uuid,
    user_id: Uuid,
    email: &str,
    name: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE login_states SET status = 'authenticated', user_id = $2, email = $3, name = $4, \
         updated_at = $5 WHERE id = $1",
    )
    .bind(id)
    .bind(user_id)
    .bind(email)
    .bind(name)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn mark_failed(
    pool: &PgPool,
    id: Uuid,
    failure: &LoginFailure,
    email: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE login_states SET status = 'failed', failure_reason = $2, failure_detail = $3, \
         email = $4, updated_at = $5 WHERE id = $1",
    )
    .bind(id)
    .bind(failure.reason())
    .bind(failure.detail())
    .bind(email)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

/// The login is used up: a session was opened (`session_id`), or its failure was reported.
/// The PKCE verifier and nonce are no longer needed, so they are wiped.
pub async fn mark_completed(
    executor: impl PgExecutor<'_>,
    id: Uuid,
    session_id: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE login_states SET status = 'completed', session_id = $2, pkce_verifier = '', \
         nonce = '', updated_at = $3 WHERE id = $1",
    )
    .bind(id)
    .bind(session_id)
    .bind(now)
    .execute(executor)
    .await?;
    Ok(())
}

pub async fn mark_expired(
    executor: impl PgExecutor<'_>,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE login_states SET status = 'expired', pkce_verifier = '', nonce = '', updated_at = $2 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .execute(executor)
    .await?;
    Ok(())
}
