//! The group-commit appender: one writer task per process, the only code that
//! inserts into `events`.
//!
//! Callers hand it drafts and await. The writer takes everything that queued
//! while its previous commit was in flight, and in one transaction: locks the
//! chain head (an advisory lock, so every process on the database serialises
//! here), re-reads the head *inside* the lock (so several processes still make
//! one gapless chain), seals each event after the previous one, applies the
//! projections of each event through the [`TxHook`], inserts the batch, and
//! commits with `synchronous_commit = on`. Only then is each caller answered.
//!
//! Failure is bounded: every job carries a deadline (`AUDIT_APPEND_TIMEOUT_MS`),
//! and a batch that cannot commit before the earliest deadline is abandoned
//! (its connection dropped, so the server rolls it back) and every caller in
//! it gets an error — fail closed, never hang. An acknowledged event is always
//! committed: callers are answered only after COMMIT returns.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor, PgConnection};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use uuid::Uuid;

use super::metrics::AppenderMetrics;
use crate::catalogue::chain::{AppendInDoubt, CommittedButRefused};
use crate::catalogue::EventPayload;
use crate::envelope::{Actor, Draft, EnvelopeError, Event, GENESIS_PREV};

pub const DEFAULT_APPEND_TIMEOUT: Duration = Duration::from_millis(2000);

/// Jobs waiting for the writer; past this, `append` fails at once instead of queueing.
const QUEUE_CAPACITY: usize = 16_384;

/// Events in one transaction at most; bounded so one commit stays short.
const MAX_BATCH_EVENTS: usize = 2_000;

/// While unhealthy and idle, the writer checks the database this often, so
/// `/ready` recovers without waiting for traffic.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct AppenderConfig {
    pub chain: String,
    /// This process, recorded as `source.instance` when a draft leaves it empty.
    pub instance: String,
    pub append_timeout: Duration,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AppendError {
    #[error("audit append timed out after {0:?}; the action was refused")]
    Timeout(Duration),
    #[error("audit store unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Rejected(String),
    #[error("invalid event: {0}")]
    Invalid(String),
    #[error("audit appender is shut down")]
    Closed,
    #[error("audit append queue is full")]
    Overloaded,
}

/// Why a projection refused an event: the caller's input conflicts with state
/// (duplicate email, unknown token, ...). The event is not appended.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct HookRejection(pub String);

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error(transparent)]
    Rejected(#[from] HookRejection),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Work done in the appending transaction for each event (the projections).
#[async_trait]
pub trait TxHook: Send + Sync + 'static {
    /// Cheap filter: events of types that change no state skip the savepoint.
    fn affects(&self, event_type: &str) -> bool;

    /// Apply the event's effects. A [`HookRejection`] drops this job only; a
    /// database error fails the whole batch.
    async fn apply(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HookError>;
}

/// For stores without projections (benches, tools).
pub struct NoHook;

#[async_trait]
impl TxHook for NoHook {
    fn affects(&self, _: &str) -> bool {
        false
    }
    async fn apply(&self, _: &mut PgConnection, _: &Event) -> Result<(), HookError> {
        Ok(())
    }
}

struct Job {
    drafts: Vec<Draft>,
    enqueued: Instant,
    deadline: Instant,
    reply: oneshot::Sender<Result<Vec<Event>, AppendError>>,
}

/// Handle to the writer task. Cheap to clone.
#[derive(Clone)]
pub struct Appender {
    queue: mpsc::Sender<Job>,
    shared: Arc<Shared>,
    timeout: Duration,
}

struct Shared {
    healthy: AtomicBool,
    head: AtomicI64,
    metrics: AppenderMetrics,
    config: AppenderConfig,
}

impl Appender {
    /// Start the writer task. It connects lazily and reconnects after failures.
    pub fn spawn(
        connect: PgConnectOptions,
        config: AppenderConfig,
        hook: Arc<dyn TxHook>,
        metrics: AppenderMetrics,
    ) -> (Appender, AppenderTask) {
        let (queue, rx) = mpsc::channel(QUEUE_CAPACITY);
        let (stop, stopped) = watch::channel(false);
        let timeout = config.append_timeout;
        let shared = Arc::new(Shared {
            healthy: AtomicBool::new(true),
            head: AtomicI64::new(0),
            metrics,
            config,
        });
        let writer = Writer {
            connect,
            conn: None,
            hook,
            shared: shared.clone(),
            committing: None,
            in_doubt: Vec::new(),
        };
        let task = tokio::spawn(writer.run(rx, stopped));
        (
            Appender {
                queue,
                shared,
                timeout,
            },
            AppenderTask { stop, task },
        )
    }

    pub fn chain(&self) -> &str {
        &self.shared.config.chain
    }

    pub fn instance(&self) -> &str {
        &self.shared.config.instance
    }

    /// Append one event; returns it sealed once it is committed.
    pub async fn append(&self, draft: Draft) -> Result<Event, AppendError> {
        let mut events = self.append_all(vec![draft]).await?;
        events.pop().ok_or(AppendError::Closed)
    }

    /// Append several events atomically and contiguously: all commit, or none.
    pub async fn append_all(&self, drafts: Vec<Draft>) -> Result<Vec<Event>, AppendError> {
        for draft in &drafts {
            draft
                .validate()
                .map_err(|e| AppendError::Invalid(e.to_string()))?;
        }
        if drafts.is_empty() {
            return Ok(Vec::new());
        }
        if drafts.len() > MAX_BATCH_EVENTS {
            return Err(AppendError::Invalid(format!(
                "at most {MAX_BATCH_EVENTS} events per atomic append"
            )));
        }
        let now = Instant::now();
        let deadline = now + self.timeout;
        let (reply, answer) = oneshot::channel();
        let job = Job {
            drafts,
            enqueued: now,
            deadline,
            reply,
        };
        match self.queue.try_send(job) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.shared.metrics.record_failure();
                return Err(AppendError::Overloaded);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(AppendError::Closed),
        }
        // The writer answers every job by its deadline; this outer bound is a
        // second guarantee that a caller never waits longer than promised.
        match tokio::time::timeout_at(deadline + Duration::from_millis(50), answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(AppendError::Closed),
            Err(_) => Err(AppendError::Timeout(self.timeout)),
        }
    }

    /// False after the last batch failed, until one succeeds again.
    pub fn is_healthy(&self) -> bool {
        self.shared.healthy.load(Ordering::Relaxed) && !self.queue.is_closed()
    }

    /// Highest seq this process has committed or seen as head (0 before any).
    pub fn head_seq(&self) -> i64 {
        self.shared.head.load(Ordering::Relaxed)
    }

    pub fn metrics(&self) -> &AppenderMetrics {
        &self.shared.metrics
    }
}

/// The writer task. Dropping this leaves the writer running until every
/// [`Appender`] is dropped; [`AppenderTask::shutdown`] stops it explicitly.
pub struct AppenderTask {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl AppenderTask {
    /// Refuse new appends, commit (or answer) everything already queued, then stop.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

struct Writer {
    connect: PgConnectOptions,
    conn: Option<PgConnection>,
    hook: Arc<dyn TxHook>,
    shared: Arc<Shared>,
    /// Ids of the batch whose COMMIT is in flight; if the commit then fails or
    /// times out, its outcome is unknown (the server may have committed it).
    committing: Option<Vec<Uuid>>,
    /// Events whose callers were told the append failed, but which may have
    /// committed anyway. Settled at the start of the next transaction.
    in_doubt: Vec<Uuid>,
}

impl Writer {
    /// Runs until every `Appender` handle is dropped, or shutdown is asked, and the queue is drained.
    async fn run(mut self, mut rx: mpsc::Receiver<Job>, mut stop: watch::Receiver<bool>) {
        let mut watching_stop = true;
        loop {
            let unhealthy = !self.shared.healthy.load(Ordering::Relaxed);
            let first = tokio::select! {
                job = rx.recv() => match job {
                    Some(job) => job,
                    None => break,
                },
                changed = stop.changed(), if watching_stop => {
                    match changed {
                        Ok(()) if *stop.borrow() => {
                            // New sends now fail; recv still yields what is queued, then None.
                            rx.close();
                            watching_stop = false;
                        }
                        Ok(()) => {}
                        Err(_) => watching_stop = false,
                    }
                    continue;
                }
                _ = tokio::time::sleep(PROBE_INTERVAL), if unhealthy => {
                    self.probe().await;
                    continue;
                }
            };
            let mut jobs = vec![first];
            let mut events = jobs[0].drafts.len();
            while events < MAX_BATCH_EVENTS {
                match rx.try_recv() {
                    Ok(job) => {
                        events += job.drafts.len();
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            self.commit_jobs(jobs, &mut rx).await;
        }
        if let Some(conn) = self.conn.take() {
            let _ = conn.close().await;
        }
    }

    async fn commit_jobs(&mut self, jobs: Vec<Job>, rx: &mut mpsc::Receiver<Job>) {
        let now = Instant::now();
        let (live, expired): (Vec<Job>, Vec<Job>) =
            jobs.into_iter().partition(|j| j.deadline > now);
        for job in expired {
            let _ = job
                .reply
                .send(Err(AppendError::Timeout(self.shared.config.append_timeout)));
        }
        let Some(deadline) = live.iter().map(|j| j.deadline).min() else {
            return;
        };
        let mut live = live;
        let outcome = tokio::time::timeout_at(deadline, self.commit(&mut live, rx)).await;
        let shared = self.shared.clone();
        let metrics = &shared.metrics;
        match outcome {
            Ok(Ok(results)) => {
                self.shared.healthy.store(true, Ordering::Relaxed);
                let committed: usize = results
                    .iter()
                    .filter_map(|r| r.as_ref().ok())
                    .map(Vec::len)
                    .sum();
                if let Some(head) = results
                    .iter()
                    .filter_map(|r| r.as_ref().ok())
                    .flat_map(|events| events.last())
                    .map(|e| e.seq as i64)
                    .max()
                {
                    self.shared.head.fetch_max(head, Ordering::Relaxed);
                    metrics.set_head(head);
                }
                metrics.record_batch(committed);
                for (job, result) in live.into_iter().zip(results) {
                    metrics.record_latency(job.enqueued.elapsed());
                    let _ = job.reply.send(result);
                }
            }
            Ok(Err(error)) => {
                self.note_in_doubt();
                // The connection may be broken or mid-transaction; start over next time.
                self.conn = None;
                self.shared.healthy.store(false, Ordering::Relaxed);
                tracing::error!(error = %error, jobs = live.len(), "audit append failed; callers refused");
                for job in live {
                    metrics.record_failure();
                    let _ = job.reply.send(Err(error.clone()));
                }
            }
            Err(_elapsed) => {
                self.note_in_doubt();
                // Dropping the connection makes the server roll the open transaction back
                // (unless COMMIT was already on its way: see `note_in_doubt`).
                self.conn = None;
                self.shared.healthy.store(false, Ordering::Relaxed);
                tracing::error!(jobs = live.len(), "audit append timed out; callers refused");
                for job in live {
                    metrics.record_failure();
                    let _ = job
                        .reply
                        .send(Err(AppendError::Timeout(self.shared.config.append_timeout)));
                }
            }
        }
    }

    /// A failure after COMMIT was sent leaves the batch's outcome unknown.
    fn note_in_doubt(&mut self) {
        if let Some(ids) = self.committing.take() {
            tracing::warn!(
                events = ids.len(),
                "commit outcome unknown; will settle on the next transaction"
            );
            self.in_doubt.extend(ids);
        }
    }

    async fn probe(&mut self) {
        let deadline = Instant::now() + self.shared.config.append_timeout;
        let ok = tokio::time::timeout_at(deadline, async {
            let mut conn = self.take_connection().await?;
            conn.execute("SELECT 1").await?;
            Ok::<_, sqlx::Error>(conn)
        })
        .await;
        if let Ok(Ok(conn)) = ok {
            self.conn = Some(conn);
            self.shared.healthy.store(true, Ordering::Relaxed);
        }
    }

    /// The writer's connection, opened if needed. It is owned by the batch in
    /// flight and put back only after success, so any failure (or a timeout
    /// that drops the batch) discards it and the server rolls back.
    async fn take_connection(&mut self) -> Result<PgConnection, sqlx::Error> {
        if let Some(conn) = self.conn.take() {
            return Ok(conn);
        }
        let mut conn = PgConnection::connect_with(&self.connect).await?;
        // Durability is the point: a commit is acknowledged only once it is on disk.
        conn.execute("SET synchronous_commit = on").await?;
        conn.execute("SET idle_in_transaction_session_timeout = '30s'")
            .await?;
        Ok(conn)
    }

    /// One transaction for the whole batch, in the steps the module doc
    /// names. Returns one result per job: a job rejected by a projection is
    /// rolled back to its savepoint and does not consume a seq; the rest
    /// commit together.
    async fn commit(
        &mut self,
        batch: &mut Vec<Job>,
        rx: &mut mpsc::Receiver<Job>,
    ) -> Result<Vec<Result<Vec<Event>, AppendError>>, AppendError> {
        let shared = self.shared.clone();
        let config = &shared.config;
        let mut conn = self.take_connection().await.map_err(unavailable)?;
        let in_doubt = self.in_doubt.clone();
        let mut tx = conn.begin().await.map_err(unavailable)?;

        let mut head = lock_head(&mut tx, &config.chain).await?;
        top_up(batch, rx);
        let mut sealed = Vec::new();
        if let Some(event) = settle_in_doubt(&mut tx, config, &in_doubt, &mut head).await? {
            sealed.push(event);
        }
        let results = seal_jobs(
            &mut tx,
            self.hook.as_ref(),
            config,
            batch,
            &mut head,
            &mut sealed,
        )
        .await?;

        if !sealed.is_empty() {
            insert_events(&mut tx, &sealed).await.map_err(unavailable)?;
        }
        self.committing = Some(
            sealed
                .iter()
                .filter_map(|e| Uuid::parse_str(&e.id).ok())
                .collect(),
        );
        let committed = tx.commit().await;
        // A definite answer either way: nothing is in doubt from this batch.
        self.committing = None;
        committed.map_err(unavailable)?;
        self.in_doubt.retain(|id| !in_doubt.contains(id));
        self.conn = Some(conn);
        Ok(results)
    }
}

/// Where the chain ends inside the transaction: the next event is sealed
/// after `seq`, linking to `prev`.
struct Head {
    seq: u64,
    prev: String,
}

impl Head {
    fn seal(&mut self, draft: Draft, chain: &str) -> Result<Event, EnvelopeError> {
        let event = Event::seal(
            draft,
            chain,
            self.seq + 1,
            &self.prev,
            Uuid::now_v7(),
            Utc::now(),
        )?;
        self.seq = event.seq;
        self.prev = event.hash.clone();
        Ok(event)
    }
}

/// Lock the chain head (every process on the database serialises here), then
/// read it *inside* the lock, so several processes still make one gapless chain.
async fn lock_head(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    chain: &str,
) -> Result<Head, AppendError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(chain_lock_key(chain))
        .execute(&mut **tx)
        .await
        .map_err(unavailable)?;
    let head: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM events WHERE chain = $1 ORDER BY seq DESC LIMIT 1")
            .bind(chain)
            .fetch_optional(&mut **tx)
            .await
            .map_err(unavailable)?;
    Ok(match head {
        Some((seq, hash)) => Head {
            seq: seq as u64,
            prev: hash,
        },
        None => Head {
            seq: 0,
            prev: GENESIS_PREV.to_owned(),
        },
    })
}

/// While we waited for the lock (another process committing), more jobs
/// queued here: take them into this transaction too. Under contention this
/// is what keeps batches large.
fn top_up(batch: &mut Vec<Job>, rx: &mut mpsc::Receiver<Job>) {
    let mut queued: usize = batch.iter().map(|j| j.drafts.len()).sum();
    while queued < MAX_BATCH_EVENTS {
        match rx.try_recv() {
            Ok(job) => {
                queued += job.drafts.len();
                batch.push(job);
            }
            Err(_) => break,
        }
    }
}

/// Events of an earlier batch whose COMMIT timed out: if they are in the
/// chain, their callers were nevertheless refused; say so in the chain, with
/// an `audit.append_in_doubt` sealed first in this transaction.
async fn settle_in_doubt(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    config: &AppenderConfig,
    in_doubt: &[Uuid],
    head: &mut Head,
) -> Result<Option<Event>, AppendError> {
    if in_doubt.is_empty() {
        return Ok(None);
    }
    let found: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT seq, id::text, type FROM events WHERE chain = $1 AND id = ANY($2) ORDER BY seq",
    )
    .bind(&config.chain)
    .bind(in_doubt)
    .fetch_all(&mut **tx)
    .await
    .map_err(unavailable)?;
    if found.is_empty() {
        return Ok(None);
    }
    let refused = found
        .into_iter()
        .map(|(seq, id, event_type)| CommittedButRefused {
            seq: seq as u64,
            id,
            event_type,
        })
        .collect();
    let mut draft = AppendInDoubt::new(refused).draft(Actor::system("appender"));
    draft.source.instance = Some(config.instance.clone());
    head.seal(draft, &config.chain).map(Some).map_err(invalid)
}

/// Seal each job's events after the previous one and apply the hook (the
/// projections) to them in a savepoint. A job the hook rejects, or with a
/// draft that cannot be sealed, is answered with its error and gives its
/// seqs back; the others' events are added to `sealed`.
async fn seal_jobs(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    hook: &dyn TxHook,
    config: &AppenderConfig,
    batch: &[Job],
    head: &mut Head,
    sealed: &mut Vec<Event>,
) -> Result<Vec<Result<Vec<Event>, AppendError>>, AppendError> {
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        let (job_seq, job_prev) = (head.seq, head.prev.clone());
        let mut job_events = Vec::with_capacity(job.drafts.len());
        let mut failure = None;
        for draft in &job.drafts {
            let mut draft = draft.clone();
            if draft.source.instance.is_none() {
                draft.source.instance = Some(config.instance.clone());
            }
            match head.seal(draft, &config.chain) {
                Ok(event) => job_events.push(event),
                Err(e) => {
                    failure = Some(invalid(e));
                    break;
                }
            }
        }
        if failure.is_none() && job_events.iter().any(|e| hook.affects(&e.event_type)) {
            failure = apply_hook(tx, hook, &job_events).await?;
        }
        match failure {
            None => {
                sealed.extend(job_events.iter().cloned());
                results.push(Ok(job_events));
            }
            Some(error) => {
                head.seq = job_seq;
                head.prev = job_prev;
                results.push(Err(error));
            }
        }
    }
    Ok(results)
}

/// Apply projections for one job inside a savepoint. `Ok(Some(_))` = the job is
/// rejected and rolled back; `Err(_)` = the batch must fail.
async fn apply_hook(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    hook: &dyn TxHook,
    events: &[Event],
) -> Result<Option<AppendError>, AppendError> {
    tx.execute("SAVEPOINT rgw_job").await.map_err(unavailable)?;
    for event in events {
        match hook.apply(&mut *tx, event).await {
            Ok(()) => {}
            Err(HookError::Rejected(rejection)) => {
                tx.execute("ROLLBACK TO SAVEPOINT rgw_job")
                    .await
                    .map_err(unavailable)?;
                return Ok(Some(AppendError::Rejected(rejection.0)));
            }
            Err(HookError::Database(error)) => return Err(unavailable(error)),
        }
    }
    tx.execute("RELEASE SAVEPOINT rgw_job")
        .await
        .map_err(unavailable)?;
    Ok(None)
}

async fn insert_events(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    events: &[Event],
) -> Result<(), sqlx::Error> {
    let mut seqs = Vec::with_capacity(events.len());
    let mut canonicals = Vec::with_capacity(events.len());
    let mut hashes = Vec::with_capacity(events.len());
    let mut ids = Vec::with_capacity(events.len());
    let mut timestamps = Vec::with_capacity(events.len());
    let mut types = Vec::with_capacity(events.len());
    let mut actor_kinds = Vec::with_capacity(events.len());
    let mut actor_ids = Vec::with_capacity(events.len());
    let mut actor_emails = Vec::with_capacity(events.len());
    let mut request_ids = Vec::with_capacity(events.len());
    for event in events {
        seqs.push(event.seq as i64);
        canonicals.push(event.canonical_bytes());
        hashes.push(event.hash.clone());
        ids.push(Uuid::parse_str(&event.id).unwrap_or_default());
        timestamps.push(
            crate::envelope::parse_ts(&event.ts)
                .map_err(|e| sqlx::Error::Protocol(e.to_string()))?,
        );
        types.push(event.event_type.clone());
        actor_kinds.push(event.actor.kind.as_str().to_owned());
        actor_ids.push(event.actor.id.clone());
        actor_emails.push(event.actor.email.clone());
        request_ids.push(event.source.request_id.clone());
    }
    let chain = events.first().map(|e| e.chain.clone()).unwrap_or_default();
    sqlx::query(
        "INSERT INTO events (chain, seq, canonical, hash, id, ts, type, actor_kind, actor_id, actor_email, request_id, body) \
         SELECT $1, t.seq, t.canonical, t.hash, t.id, t.ts, t.type, t.actor_kind, t.actor_id, t.actor_email, t.request_id, \
                convert_from(t.canonical, 'UTF8')::jsonb \
         FROM UNNEST($2::bigint[], $3::bytea[], $4::text[], $5::uuid[], $6::timestamptz[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[]) \
              AS t(seq, canonical, hash, id, ts, type, actor_kind, actor_id, actor_email, request_id)",
    )
    .bind(chain)
    .bind(seqs)
    .bind(canonicals)
    .bind(hashes)
    .bind(ids)
    .bind(timestamps)
    .bind(types)
    .bind(actor_kinds)
    .bind(actor_ids)
    .bind(actor_emails)
    .bind(request_ids)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Advisory lock key of a chain: every writer of the chain, in any process, takes it.
pub(crate) fn chain_lock_key(chain: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("rack-gateway/chain-head/{chain}").as_bytes());
    i64::from_be_bytes([
        digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
    ])
}

fn unavailable(error: sqlx::Error) -> AppendError {
    AppendError::Unavailable(error.to_string())
}

fn invalid(error: EnvelopeError) -> AppendError {
    AppendError::Invalid(error.to_string())
}

/// Several hooks in order (projections, then checkpoint bookkeeping, ...).
pub struct HookChain(pub Vec<Arc<dyn TxHook>>);

#[async_trait]
impl TxHook for HookChain {
    fn affects(&self, event_type: &str) -> bool {
        self.0.iter().any(|hook| hook.affects(event_type))
    }

    async fn apply(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HookError> {
        for hook in &self.0 {
            if hook.affects(&event.event_type) {
                hook.apply(conn, event).await?;
            }
        }
        Ok(())
    }
}
