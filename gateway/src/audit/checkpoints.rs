//! Signed checkpoints (`docs/events.md` §4).
//!
//! One replica at a time signs (it holds a session advisory lock on a
//! dedicated connection; if it dies, the lock goes with its connection). The
//! signer follows the chain from seq 1, re-checking every event's hash and link
//! as it goes, so it only ever signs a log it has verified itself, and keeps
//! only the Merkle frontier (O(log n)) in memory. It signs every
//! `CHECKPOINT_EVERY_EVENTS` events, or every `CHECKPOINT_EVERY_SECONDS` while
//! events arrive, and on request (an archive segment closing). Each checkpoint
//! is appended as `checkpoint.created`, whose hook stores the note in
//! `checkpoints` in the same transaction; the table's key (chain, size) makes a
//! second signature of the same size impossible.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use events::catalogue::{self, CheckpointCreated, Effect, EventPayload};
use events::checkpoint::Checkpoint;
use events::merkle::{leaf_hash, CompactRange};
use events::note::Signer;
use events::store::{self, AppendError, Appender, HookError, HookRejection, StoredRow, TxHook};
use events::{Actor, Event, GENESIS_PREV};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

const POLL: Duration = Duration::from_millis(200);
const PAGE: i64 = 5_000;

/// Stores each `checkpoint.created` note in `checkpoints`, in the appending transaction.
pub struct CheckpointRecorder;

#[async_trait]
impl TxHook for CheckpointRecorder {
    fn affects(&self, event_type: &str) -> bool {
        event_type == CheckpointCreated::TYPE
    }

    async fn apply(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HookError> {
        let payload = CheckpointCreated::from_data(&event.data)
            .map_err(|e| HookRejection(format!("malformed checkpoint.created: {e}")))?;
        if payload.size >= event.seq {
            return Err(HookRejection(format!(
                "checkpoint of size {} cannot be recorded at seq {}",
                payload.size, event.seq
            ))
            .into());
        }
        let inserted = sqlx::query(
            "INSERT INTO checkpoints (chain, size, note) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(&event.chain)
        .bind(payload.size as i64)
        .bind(&payload.note)
        .execute(conn)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(HookRejection(format!(
                "a checkpoint of size {} already exists",
                payload.size
            ))
            .into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct CheckpointConfig {
    pub every_events: u64,
    pub every_seconds: u64,
}

/// What `/metrics` and `/ready` report about checkpointing in this process.
#[derive(Default)]
pub struct CheckpointStatus {
    pub leader: AtomicBool,
    /// Events followed and verified so far.
    pub tracked: AtomicU64,
    pub last_signed_size: AtomicU64,
    /// Set when the signer found the chain inconsistent; it then refuses to sign.
    pub fault: Mutex<Option<String>>,
}

impl CheckpointStatus {
    pub fn fault(&self) -> Option<String> {
        self.fault.lock().ok().and_then(|f| f.clone())
    }
}

/// Ask the running signer for a checkpoint of everything committed so far.
#[derive(Clone)]
pub struct CheckpointRequests(mpsc::Sender<oneshot::Sender<Result<u64, String>>>);

impl CheckpointRequests {
    /// Returns the size of a checkpoint covering at least the head at call time
    /// (an existing one when nothing new arrived). Only the leader answers.
    pub async fn checkpoint_now(&self) -> Result<u64, String> {
        let (reply, answer) = oneshot::channel();
        self.0
            .send(reply)
            .await
            .map_err(|_| "checkpoint signer is not running".to_owned())?;
        answer
            .await
            .map_err(|_| "checkpoint signer stopped".to_owned())?
    }
}

pub struct Checkpointer {
    pub pool: PgPool,
    pub connect: PgConnectOptions,
    pub appender: Appender,
    pub signer: Arc<Signer>,
    pub config: CheckpointConfig,
    pub status: Arc<CheckpointStatus>,
}

impl Checkpointer {
    pub fn spawn(
        self,
        stop: watch::Receiver<bool>,
    ) -> (CheckpointRequests, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(64);
        let task = tokio::spawn(self.run(rx, stop));
        (CheckpointRequests(tx), task)
    }

    async fn run(
        self,
        mut requests: mpsc::Receiver<oneshot::Sender<Result<u64, String>>>,
        mut stop: watch::Receiver<bool>,
    ) {
        let chain = self.appender.chain().to_owned();
        loop {
            if *stop.borrow() {
                return;
            }
            match self.lead(&chain, &mut requests, &mut stop).await {
                Ok(()) => return,
                Err(error) => {
                    self.status.leader.store(false, Ordering::Relaxed);
                    tracing::warn!(error = %error, "checkpoint signer not leading; retrying");
                }
            }
            // Followers (and a leader that lost its connection) answer requests with an error, then retry.
            let wait = tokio::time::sleep(Duration::from_secs(2));
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    _ = &mut wait => break,
                    _ = stop.changed() => return,
                    Some(reply) = requests.recv() => {
                        let _ = reply.send(Err("this replica is not the checkpoint signer".into()));
                    }
                }
            }
        }
    }

    /// Hold leadership and sign until stopped. `Err` = lost the database or not the leader.
    async fn lead(
        &self,
        chain: &str,
        requests: &mut mpsc::Receiver<oneshot::Sender<Result<u64, String>>>,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), String> {
        let mut lock_conn = PgConnection::connect_with(&self.connect)
            .await
            .map_err(|e| e.to_string())?;
        let leader: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(leader_lock_key(chain))
            .fetch_one(&mut lock_conn)
            .await
            .map_err(|e| e.to_string())?;
        if !leader {
            return Err("another replica signs checkpoints".into());
        }
        self.status.leader.store(true, Ordering::Relaxed);
        tracing::info!("this replica signs checkpoints");

        let mut follower = ChainFollower::new(chain);
        let (mut last_size, age) = newest_checkpoint(&self.pool, chain).await?;
        let mut last_signed_at = age.and_then(|age| Instant::now().checked_sub(age));
        let mut arrivals_since = 0u64;
        loop {
            // Keep the lock connection alive; losing it means losing leadership.
            sqlx::query("SELECT 1")
                .execute(&mut lock_conn)
                .await
                .map_err(|e| e.to_string())?;
            let before = follower.size();
            // Never read past the next count boundary, so a burst still gets a
            // checkpoint every `every_events` events, not one after the burst.
            let boundary = last_size + self.config.every_events;
            let budget = boundary.saturating_sub(follower.size()).max(1);
            let new = follower.catch_up(&self.pool, budget).await.map_err(|fault| {
                if let Ok(mut slot) = self.status.fault.lock() {
                    *slot = Some(fault.clone());
                }
                tracing::error!(fault = %fault, "chain inconsistent: refusing to sign checkpoints");
                fault
            })?;
            arrivals_since += new;
            self.status
                .tracked
                .store(follower.size(), Ordering::Relaxed);
            if follower.size() > before && follower.size() <= last_size {
                // Catching up below an existing checkpoint: nothing new to sign yet.
                arrivals_since = 0;
            }
            let behind = follower.size() - before == budget;
            let count_due = follower.size() >= last_size + self.config.every_events;
            let time_due = arrivals_since > 0
                && last_signed_at.is_none_or(|at| {
                    at.elapsed() >= Duration::from_secs(self.config.every_seconds)
                });
            let mut waiting: Vec<oneshot::Sender<Result<u64, String>>> = Vec::new();
            while let Ok(reply) = requests.try_recv() {
                waiting.push(reply);
            }
            if (count_due || time_due || !waiting.is_empty()) && follower.size() > last_size {
                match self.sign(&follower).await {
                    Ok(size) | Err(SignOutcome::AlreadySigned(size)) => {
                        last_size = size;
                        last_signed_at = Some(Instant::now());
                        arrivals_since = 0;
                        self.status.last_signed_size.store(size, Ordering::Relaxed);
                    }
                    Err(SignOutcome::Failed(error)) => {
                        tracing::warn!(error = %error, "checkpoint not signed; will retry");
                        for reply in waiting.drain(..) {
                            let _ = reply.send(Err(error.clone()));
                        }
                    }
                }
            }
            for reply in waiting {
                let _ = reply.send(if last_size > 0 {
                    Ok(last_size)
                } else {
                    Err("no events to checkpoint".into())
                });
            }
            if behind {
                // More to read right away.
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = stop.changed() => {
                    if *stop.borrow() {
                        let _ = lock_conn.close().await;
                        self.status.leader.store(false, Ordering::Relaxed);
                        return Ok(());
                    }
                }
            }
        }
    }

    async fn sign(&self, follower: &ChainFollower) -> Result<u64, SignOutcome> {
        let checkpoint = Checkpoint {
            origin: Checkpoint::origin_for_chain(&follower.chain),
            size: follower.size(),
            root: follower.tree.root(),
            head: follower.last_hash.clone(),
        };
        let note = checkpoint
            .sign(&self.signer)
            .map_err(|e| SignOutcome::Failed(e.to_string()))?;
        let payload = CheckpointCreated {
            size: checkpoint.size,
            root: STANDARD.encode(checkpoint.root),
            head: checkpoint.head.clone(),
            key: self.signer.name().to_owned(),
            note,
        };
        match self
            .appender
            .append(payload.draft(Actor::system("checkpointer")))
            .await
        {
            Ok(_) => {
                tracing::info!(size = checkpoint.size, "checkpoint signed");
                Ok(checkpoint.size)
            }
            Err(AppendError::Rejected(_)) => Err(SignOutcome::AlreadySigned(checkpoint.size)),
            Err(e) => Err(SignOutcome::Failed(e.to_string())),
        }
    }
}

enum SignOutcome {
    AlreadySigned(u64),
    Failed(String),
}

/// Reads the chain in order and keeps what signing needs: the Merkle frontier and the head hash.
struct ChainFollower {
    chain: String,
    tree: CompactRange,
    last_hash: String,
}

impl ChainFollower {
    fn new(chain: &str) -> Self {
        ChainFollower {
            chain: chain.to_owned(),
            tree: CompactRange::new(),
            last_hash: GENESIS_PREV.to_owned(),
        }
    }

    fn size(&self) -> u64 {
        self.tree.size()
    }

    /// Read and check up to `budget` events past what we hold; returns how many
    /// events other than checkpoint and archive bookkeeping arrived. `Err` names the first fault.
    async fn catch_up(&mut self, pool: &PgPool, budget: u64) -> Result<u64, String> {
        let mut arrivals = 0;
        let limit = self.size() + budget;
        loop {
            let page = PAGE.min((limit - self.size()) as i64);
            if page == 0 {
                return Ok(arrivals);
            }
            let rows = store::rows_after(pool, &self.chain, self.size() as i64, page)
                .await
                .map_err(|e| e.to_string())?;
            let count = rows.len() as i64;
            for StoredRow {
                seq,
                canonical,
                hash,
            } in rows
            {
                let event = Event::from_canonical(&canonical, &hash)
                    .map_err(|e| format!("event {seq}: {e}"))?;
                let expected_seq = self.size() + 1;
                if seq as u64 != expected_seq || event.seq != expected_seq {
                    return Err(format!("expected seq {expected_seq}, found {seq}"));
                }
                if event.computed_hash() != hash {
                    return Err(format!("event {seq}: hash does not match its bytes"));
                }
                if event.prev != self.last_hash {
                    return Err(format!(
                        "event {seq}: prev does not link to event {}",
                        seq - 1
                    ));
                }
                self.tree.push(leaf_hash(&canonical));
                self.last_hash = hash;
                // Bookkeeping (checkpoints, archive shipments) does not make a
                // chain "active": counting it would make checkpoints and
                // segments beget each other forever on a quiet chain.
                if catalogue::effect_of(&event.event_type) != Effect::Bookkeeping {
                    arrivals += 1;
                }
            }
            if count < page {
                return Ok(arrivals);
            }
        }
    }
}

/// Size of the newest checkpoint (0 if none), and how long ago it was made.
async fn newest_checkpoint(pool: &PgPool, chain: &str) -> Result<(u64, Option<Duration>), String> {
    let newest = store::newest_checkpoint(pool, chain)
        .await
        .map_err(|e| e.to_string())?;
    Ok(newest
        .map(|n| {
            (
                n.size as u64,
                Duration::try_from_secs_f64(n.age_seconds.max(0.0)).ok(),
            )
        })
        .unwrap_or((0, None)))
}

fn leader_lock_key(chain: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(format!("rack-gateway/checkpoint-signer/{chain}").as_bytes());
    i64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// Load the signing key file (`PRIVATE+KEY+name+id+base64`, as `keygen` writes it).
pub fn load_signer(path: &std::path::Path) -> Result<Signer, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("CHECKPOINT_SIGNING_KEY_FILE {}: {e}", path.display()))?;
    Signer::from_skey(text.trim()).map_err(|e| {
        format!(
            "CHECKPOINT_SIGNING_KEY_FILE {}: not a signing key: {e}",
            path.display()
        )
    })
}
