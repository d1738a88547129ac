//! The Postgres store: migrations, the chain id, reads, and the group-commit
//! [`Appender`] that is the only writer of `events`.
//!
//! Tables are described in `migrations/0001_chain.sql`; the database itself
//! refuses UPDATE, DELETE and TRUNCATE on `events` and `checkpoints`.

mod appender;
mod metrics;

use std::time::Duration;

use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgExecutor, PgPool};

pub use appender::{
    AppendError, Appender, AppenderConfig, AppenderTask, HookChain, HookError, HookRejection,
    NoHook, TxHook, DEFAULT_APPEND_TIMEOUT,
};
pub use metrics::{AppenderMetrics, BatchStats};

/// Every migration of the project (the chain and the projections share one history).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("invalid DATABASE_URL: {0}")]
    InvalidUrl(String),
}

/// One row of `events` as stored: what verification reads.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredRow {
    pub seq: i64,
    pub canonical: Vec<u8>,
    pub hash: String,
}

/// One row of `checkpoints`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredCheckpoint {
    pub size: i64,
    pub note: String,
}

/// The newest checkpoint's size, and its age in seconds.
#[derive(Debug, Clone, Copy, PartialEq, sqlx::FromRow)]
pub struct NewestCheckpoint {
    pub size: i64,
    pub age_seconds: f64,
}

pub fn connect_options(database_url: &str) -> Result<PgConnectOptions, StoreError> {
    database_url
        .parse::<PgConnectOptions>()
        .map_err(|e| StoreError::InvalidUrl(e.to_string()))
}

/// A pool for readers and projections; the appender keeps its own connection.
pub async fn connect_pool(database_url: &str, max_connections: u32) -> Result<PgPool, StoreError> {
    let options = connect_options(database_url)?;
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await?)
}

pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// The chain id: created on first call (a UUID), then always the same.
pub async fn ensure_chain_id(pool: &PgPool) -> Result<String, StoreError> {
    let candidate = uuid::Uuid::new_v4().to_string();
    sqlx::query("INSERT INTO chain_meta (chain) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(&candidate)
        .execute(pool)
        .await?;
    Ok(sqlx::query_scalar("SELECT chain FROM chain_meta")
        .fetch_one(pool)
        .await?)
}

/// The chain id if one exists (read-only callers such as verify-chain must not create one).
pub async fn chain_id(pool: &PgPool) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar("SELECT chain FROM chain_meta")
        .fetch_optional(pool)
        .await?)
}

/// Newest (seq, hash) of the chain, if any event exists.
pub async fn head(pool: &PgPool, chain: &str) -> Result<Option<(i64, String)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT seq, hash FROM events WHERE chain = $1 ORDER BY seq DESC LIMIT 1")
            .bind(chain)
            .fetch_optional(pool)
            .await?,
    )
}

/// Up to `limit` rows after seq `after`, in seq order: the chain read page by page.
pub async fn rows_after(
    executor: impl PgExecutor<'_>,
    chain: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<StoredRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT seq, canonical, hash FROM events WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    )
    .bind(chain)
    .bind(after)
    .bind(limit)
    .fetch_all(executor)
    .await?)
}

/// Stream rows in seq order from `from_seq`, in constant memory (rows are read off the socket as they arrive).
pub fn stream_rows<'a>(
    pool: &'a PgPool,
    chain: &'a str,
    from_seq: i64,
    to_seq: Option<i64>,
) -> BoxStream<'a, Result<StoredRow, StoreError>> {
    sqlx::query_as(
        "SELECT seq, canonical, hash FROM events \
         WHERE chain = $1 AND seq >= $2 AND ($3::bigint IS NULL OR seq <= $3) ORDER BY seq",
    )
    .bind(chain)
    .bind(from_seq)
    .bind(to_seq)
    .fetch(pool)
    .map_err(StoreError::from)
    .boxed()
}

pub async fn checkpoints(pool: &PgPool, chain: &str) -> Result<Vec<StoredCheckpoint>, StoreError> {
    Ok(
        sqlx::query_as("SELECT size, note FROM checkpoints WHERE chain = $1 ORDER BY size")
            .bind(chain)
            .fetch_all(pool)
            .await?,
    )
}

/// The newest signed checkpoint of the chain, if any.
pub async fn newest_checkpoint(
    pool: &PgPool,
    chain: &str,
) -> Result<Option<NewestCheckpoint>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT size, extract(epoch FROM now() - created_at)::float8 AS age_seconds \
         FROM checkpoints WHERE chain = $1 ORDER BY size DESC LIMIT 1",
    )
    .bind(chain)
    .fetch_optional(pool)
    .await?)
}

/// Take the chain-head lock for the rest of `conn`'s transaction: appenders in
/// every process wait until it ends (used by projection rebuilds).
pub async fn lock_chain_head(conn: &mut sqlx::PgConnection, chain: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(appender::chain_lock_key(chain))
        .execute(conn)
        .await?;
    Ok(())
}
