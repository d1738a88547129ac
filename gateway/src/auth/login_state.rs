//! Logins in progress (`login_states`, migration 0004): one row per
//! authorization request, found by the SHA-256 of its `state`, claimed once
//! by the provider's callback, and (CLI) collected once by `/complete`.
//! Rows outlive their expiry by a day so a late or replayed callback is told
//! apart from an unknown one; then they are deleted.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};
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

impl From<String> for Status {
    fn from(text: String) -> Status {
        Status::parse(&text)
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
    /// CLI logins: the code the CLI prints and the confirmation page shows.
    pub user_code: Option<&'a str>,
    /// The address the login was started from (shown on the confirmation page).
    pub start_ip: Option<&'a str>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LoginRow {
    pub id: Uuid,
    pub channel: String,
    pub cli_secret_sha256: Option<String>,
    pub pkce_verifier: String,
    pub nonce: String,
    #[sqlx(flatten)]
    pub device: Device,
    #[sqlx(try_from = "String")]
    pub status: Status,
    pub user_id: Option<Uuid>,
    pub email: Option<String>,
    pub name: Option<String>,
    failure_reason: Option<String>,
    failure_detail: Option<String>,
    pub session_id: Option<Uuid>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub user_code: Option<String>,
    pub start_ip: Option<String>,
    /// CLI logins: SHA-256 of the confirmation cookie set at the callback.
    pub confirm_sha256: Option<String>,
    /// CLI logins: when the person pressed Confirm (`/complete` waits for it).
    pub confirmed_at: Option<DateTime<Utc>>,
}

impl LoginRow {
    /// Why the login failed, once it has.
    pub fn failure(&self) -> Option<LoginFailure> {
        self.failure_reason
            .as_deref()
            .map(|reason| LoginFailure::from_stored(reason, self.failure_detail.as_deref()))
    }
}

const COLUMNS: &str =
    "id, channel, cli_secret_sha256, pkce_verifier, nonce, device_id, device_name, \
     device_os, client_version, status, user_id, email, name, failure_reason, failure_detail, \
     session_id, expires_at, created_at, user_code, start_ip, confirm_sha256, confirmed_at";

/// Record a new login (and forget logins that ended more than a day ago).
pub async fn insert(pool: &PgPool, new: &NewLogin<'_>) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_states WHERE expires_at < $1 - interval '1 day'")
        .bind(new.created_at)
        .execute(pool)
        .await?;
    sqlx::query(
        "INSERT INTO login_states (id, state_sha256, channel, cli_secret_sha256, pkce_verifier, nonce, \
         device_id, device_name, device_os, client_version, status, created_at, expires_at, updated_at, \
         user_code, start_ip) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', $11, $12, $11, $13, $14)",
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
    .bind(new.user_code)
    .bind(new.start_ip)
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
    let claimed = sqlx::query_as(&format!(
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
        return Ok(Claim::Claimed(row));
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
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM login_states WHERE state_sha256 = $1"
    ))
    .bind(state_sha256)
    .fetch_optional(executor)
    .await
}

/// The row, locked until the transaction ends (one `/complete` at a time per login).
pub async fn lock_by_state(
    executor: impl PgExecutor<'_>,
    state_sha256: &str,
) -> Result<Option<LoginRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM login_states WHERE state_sha256 = $1 FOR UPDATE"
    ))
    .bind(state_sha256)
    .fetch_optional(executor)
    .await
}

pub async fn by_id(pool: &PgPool, id: Uuid) -> Result<Option<LoginRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM login_states WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
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

/// CLI logins, at the callback: the SHA-256 of the confirmation cookie the
/// browser now holds (see `cli_confirm`).
pub async fn await_confirmation(
    pool: &PgPool,
    id: Uuid,
    confirm_sha256: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE login_states SET confirm_sha256 = $2 WHERE id = $1")
        .bind(id)
        .bind(confirm_sha256)
        .execute(pool)
        .await?;
    Ok(())
}

/// The person confirmed: only an admitted, unexpired, not yet confirmed
/// login is marked (and locked until the caller's transaction ends).
/// `false` when it was not in that state.
pub async fn mark_confirmed(
    executor: impl PgExecutor<'_>,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let marked: Option<Uuid> = sqlx::query_scalar(
        "UPDATE login_states SET confirmed_at = $2, updated_at = $2 \
         WHERE id = $1 AND status = 'authenticated' AND confirmed_at IS NULL AND expires_at > $2 \
         RETURNING id",
    )
    .bind(id)
    .bind(now)
    .fetch_optional(executor)
    .await?;
    Ok(marked.is_some())
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
