//! A Postgres source: the `events` and `checkpoints` tables, read-only.
//!
//! Rows are streamed in seq order (the server sends them as we read), so
//! memory stays constant. Every wait is bounded: a database that stops
//! answering is a connection error (exit 2), never a hang.

use std::time::Duration;

use events::note::Verifier;
use events::store::{self, StoreError, StoredRow};
use events::verify::{ChainVerifier, Failure, Summary};
use futures::stream::BoxStream;
use futures::StreamExt;
use sqlx::PgPool;

use super::pipeline::{Halt, Pipeline, Raw, ReadBatch};
use super::{progress, RunError};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest silence between two rows before we give up on the server.
const ROW_TIMEOUT: Duration = Duration::from_secs(120);

pub struct DatabaseSource {
    pool: PgPool,
    chain: String,
}

impl DatabaseSource {
    pub async fn connect(url: &str, chain: Option<String>) -> Result<DatabaseSource, RunError> {
        let options = store::connect_options(url).map_err(|e| RunError::new(e.to_string()))?;
        // One direct attempt first: a refused or misconfigured connection fails
        // at once with the server's own reason (a pool would retry until its timeout).
        let probe = tokio::time::timeout(
            CONNECT_TIMEOUT,
            <sqlx::PgConnection as sqlx::Connection>::connect_with(&options),
        )
        .await
        .map_err(|_| RunError::new("database: no answer within 15s"))?
        .map_err(|e| RunError::new(format!("database: {e}")))?;
        let _ = sqlx::Connection::close(probe).await;
        let pool = tokio::time::timeout(
            CONNECT_TIMEOUT,
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(2)
                .connect_with(options),
        )
        .await
        .map_err(|_| RunError::new("database: no answer within 15s"))?
        .map_err(|e| RunError::new(format!("database: {e}")))?;
        let chain = match chain {
            Some(chain) => chain,
            None => store::chain_id(&pool)
                .await
                .map_err(|e| RunError::new(format!("database: {e}")))?
                .ok_or_else(|| {
                    RunError::new("database: no chain here (chain_meta is empty); pass --chain")
                })?,
        };
        Ok(DatabaseSource { pool, chain })
    }

    pub fn chain(&self) -> &str {
        &self.chain
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Verifier keys the gateway published in its `gateway.started` events.
    /// Read from the search copy, so they are only as trustworthy as the database.
    pub async fn published_keys(&self) -> Result<Vec<Verifier>, RunError> {
        let vkeys: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT body->'data'->>'checkpoint_vkey' FROM events \
             WHERE chain = $1 AND type = 'gateway.started' AND body->'data' ? 'checkpoint_vkey'",
        )
        .bind(&self.chain)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| RunError::new(format!("database: {e}")))?;
        Ok(vkeys
            .iter()
            .filter_map(|v| Verifier::from_vkey(v).ok())
            .collect())
    }

    /// The keys to verify with: those given (trusted), or, when none were
    /// given, those the gateway published (not independently trusted); and
    /// whether they were given. A chain a gateway signed verifies either way.
    pub async fn keys(&self, trusted: Vec<Verifier>) -> Result<(Vec<Verifier>, bool), RunError> {
        if trusted.is_empty() {
            Ok((self.published_keys().await?, false))
        } else {
            Ok((trusted, true))
        }
    }

    /// Newest seq, for the progress bar.
    async fn head(&self) -> Option<u64> {
        store::head(&self.pool, &self.chain)
            .await
            .ok()
            .flatten()
            .map(|(seq, _)| seq.max(0) as u64)
    }

    /// Add every checkpoint to `verifier`, in size order.
    pub async fn add_checkpoints(
        &self,
        verifier: &mut ChainVerifier,
    ) -> Result<Result<(), Failure>, RunError> {
        let checkpoints = store::checkpoints(&self.pool, &self.chain)
            .await
            .map_err(|e| RunError::new(format!("database: {e}")))?;
        for checkpoint in checkpoints {
            let label = format!("database checkpoint {}", checkpoint.size);
            if let Err(failure) = verifier.add_checkpoint(&label, &checkpoint.note) {
                return Ok(Err(failure));
            }
        }
        Ok(Ok(()))
    }

    /// Stream every row through the verifier. The inner `Err` is an integrity
    /// failure with the number of events checked before it.
    pub async fn verify(
        &self,
        keys: Vec<Verifier>,
        show_progress: bool,
    ) -> Result<Result<Summary, (Failure, u64)>, RunError> {
        let mut verifier = ChainVerifier::new(Some(self.chain.clone()), keys);
        if let Err(failure) = self.add_checkpoints(&mut verifier).await? {
            return Ok(Err((failure, 0)));
        }
        let bar = progress(self.head().await, show_progress);
        let mut events = Pipeline::new(RowStream {
            rows: store::stream_rows(&self.pool, &self.chain, 1, None),
        });
        loop {
            let prepared = match events.next().await {
                Ok(Some(prepared)) => prepared,
                Ok(None) => break,
                Err(Halt::Run(error)) => return Err(error),
                Err(Halt::Integrity(failure)) => {
                    bar.finish_and_clear();
                    return Ok(Err((failure, verifier.events())));
                }
            };
            if let Err(failure) = verifier.push_prepared(prepared) {
                bar.finish_and_clear();
                return Ok(Err((failure, verifier.events())));
            }
            if verifier.events().is_multiple_of(4096) {
                bar.set_position(verifier.events());
            }
        }
        bar.finish_and_clear();
        let checked = verifier.events();
        Ok(verifier.finish().map_err(|failure| (failure, checked)))
    }
}

/// The rows of one chain as the server streams them.
struct RowStream<'a> {
    rows: BoxStream<'a, Result<StoredRow, StoreError>>,
}

#[async_trait::async_trait]
impl ReadBatch for RowStream<'_> {
    async fn read_batch(&mut self, max: usize, into: &mut Vec<Raw>) -> Result<bool, Halt> {
        while into.len() < max {
            let next = tokio::time::timeout(ROW_TIMEOUT, self.rows.next())
                .await
                .map_err(|_| Halt::Run(RunError::new("database stopped answering mid-stream")))?;
            let Some(row) = next else { return Ok(false) };
            let row = row.map_err(|e| Halt::Run(RunError::new(format!("database: {e}"))))?;
            into.push(Raw::Row(row));
        }
        Ok(true)
    }
}
