//! Refold every projection from seq 1.
//!
//! - [`rebuild`]: replace the live tables with a fresh fold, holding the chain
//!   head lock so no event lands half-way.
//! - [`check`]: fold into a scratch schema inside one REPEATABLE READ
//!   transaction (the events and the live rows are one snapshot), compare every
//!   row with the live tables, and roll the scratch schema away.

use events::store::{self, StoreError, StoredRow};
use events::Event;
use serde_json::Value;
use sqlx::{Acquire, Executor, PgConnection, PgPool};

use crate::change::ApplyError;
use crate::TABLES;

const PAGE: i64 = 2_000;

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("event {seq} cannot be folded: {message} (run verify-chain)")]
    Corrupt { seq: i64, message: String },
    #[error("no chain in this database")]
    NoChain,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RebuildReport {
    pub events: u64,
    pub folded: u64,
}

/// One row that differs between the live tables and a fresh fold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub table: String,
    pub key: String,
    /// Column-by-column description, e.g. `role: live "admin", rebuilt "viewer"`.
    pub detail: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.table, self.key, self.detail)
    }
}

/// Replace the live projection tables with a fold of the whole chain.
pub async fn rebuild(pool: &PgPool) -> Result<RebuildReport, RebuildError> {
    let chain = store::chain_id(pool).await?.ok_or(RebuildError::NoChain)?;
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    store::lock_chain_head(&mut tx, &chain).await?;
    let tables: Vec<&str> = TABLES.iter().map(|(t, _)| *t).collect();
    tx.execute(format!("TRUNCATE {}", tables.join(", ")).as_str())
        .await?;
    let report = fold_into(&mut tx, &chain, "public").await?;
    tx.commit().await?;
    Ok(report)
}

/// Fold into a scratch schema and list every row that differs from the live tables.
pub async fn check(pool: &PgPool) -> Result<(RebuildReport, Vec<Difference>), RebuildError> {
    let chain = store::chain_id(pool).await?.ok_or(RebuildError::NoChain)?;
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    tx.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .await?;
    let scratch = format!("rgw_check_{}", uuid::Uuid::new_v4().simple());
    tx.execute(format!("CREATE SCHEMA {scratch}").as_str())
        .await?;
    for (table, _) in TABLES {
        tx.execute(
            format!("CREATE TABLE {scratch}.{table} (LIKE public.{table} INCLUDING ALL)").as_str(),
        )
        .await?;
    }
    let report = fold_into(&mut tx, &chain, &scratch).await?;
    let mut differences = Vec::new();
    for (table, key) in TABLES {
        let rows: Vec<DifferentRow> = sqlx::query_as(&format!(
            "SELECT coalesce(l.{key}, r.{key})::text AS key, to_jsonb(l) AS live, to_jsonb(r) AS rebuilt \
             FROM public.{table} l FULL OUTER JOIN {scratch}.{table} r ON l.{key} = r.{key} \
             WHERE to_jsonb(l) IS DISTINCT FROM to_jsonb(r) ORDER BY 1"
        ))
        .fetch_all(&mut *tx)
        .await?;
        for row in rows {
            differences.push(Difference {
                table: (*table).to_owned(),
                key: format!("{key}={}", row.key),
                detail: describe(row.live.as_ref(), row.rebuilt.as_ref()),
            });
        }
    }
    // The scratch schema existed only inside this transaction.
    tx.rollback().await?;
    Ok((report, differences))
}

/// A row that differs between the live table and the rebuilt one (`None`: absent there).
#[derive(sqlx::FromRow)]
struct DifferentRow {
    key: String,
    live: Option<Value>,
    rebuilt: Option<Value>,
}

fn describe(live: Option<&Value>, rebuilt: Option<&Value>) -> String {
    match (live, rebuilt) {
        (Some(_), None) => "row exists in the live table but no event creates it".into(),
        (None, Some(_)) => "row missing from the live table".into(),
        (Some(Value::Object(l)), Some(Value::Object(r))) => {
            let mut columns: Vec<&String> = l.keys().chain(r.keys()).collect();
            columns.sort();
            columns.dedup();
            columns
                .into_iter()
                .filter(|c| l.get(*c) != r.get(*c))
                .map(|c| {
                    format!(
                        "{c}: live {}, rebuilt {}",
                        l.get(c).unwrap_or(&Value::Null),
                        r.get(c).unwrap_or(&Value::Null)
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        }
        _ => "rows differ".into(),
    }
}

/// Stream the chain in pages and apply every event's changes to `schema`.
async fn fold_into(
    conn: &mut PgConnection,
    chain: &str,
    schema: &str,
) -> Result<RebuildReport, RebuildError> {
    let mut report = RebuildReport::default();
    let mut after: i64 = 0;
    loop {
        let rows = store::rows_after(&mut *conn, chain, after, PAGE).await?;
        if rows.is_empty() {
            return Ok(report);
        }
        for StoredRow {
            seq,
            canonical,
            hash,
        } in rows
        {
            after = seq;
            report.events += 1;
            let event =
                Event::from_canonical(&canonical, &hash).map_err(|e| RebuildError::Corrupt {
                    seq,
                    message: e.to_string(),
                })?;
            if !crate::affects(&event.event_type) {
                continue;
            }
            match crate::apply_event(&mut *conn, schema, &event).await {
                Ok(()) => report.folded += 1,
                Err(ApplyError::Rejected(rejection)) => {
                    return Err(RebuildError::Corrupt {
                        seq,
                        message: rejection.0,
                    })
                }
                Err(ApplyError::Database(e)) => return Err(e.into()),
            }
        }
    }
}
