//! The shipper: every event into S3 with Object Lock, within seconds.
//!
//! **Who ships.** The replica that signs checkpoints (it holds the signer's
//! advisory lock), so asking for a checkpoint is an in-process call that is
//! always answered. When leadership moves, the new leader starts over from
//! the bucket.
//!
//! **Where it resumes.** From the bucket, never from memory alone: on taking
//! the lead it checks that the bucket has Object Lock, publishes the verifier
//! key under `keys/`, lists every segment key, requires them to be
//! contiguous from seq 1, and re-reads the database over that range, checking
//! each event and each segment's checkpoint, comparing the newest segment and
//! any segment not yet recorded as shipped with the bucket's checksum, and
//! recording (as `archive.shipped`, `recovered: true`) segments that a crash
//! left unrecorded. A checkpoint object missing after the newest segment is
//! uploaded; one missing anywhere else is a fault.
//!
//! **What it ships.** Segment `L+1 ..= C`, C the smallest checkpoint above L
//! (see the module doc of [`super`]), then the checkpoint `C.note`, then the
//! `archive.shipped` event. Before each upload it lists the keys after its
//! last one: a segment it did not write means another shipper was active, so
//! it starts over from the bucket.
//!
//! **What it never does.** Ask S3 to replace or delete anything (see
//! [`super::s3`]), or ship bytes that do not match their signed checkpoint.
//! A bucket that disagrees with the database stops shipping with an alarm
//! (`/ready` 503, `rgw_archive_fault`, an error log); an S3 outage only
//! delays it (retries with back-off; `rgw_archive_lag_seconds` grows;
//! requests are not affected).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use events::archive::Layout;
use events::catalogue::{self, ArchiveShipped, EventPayload};
use events::store::{AppendError, Appender};
use events::Actor;
use sqlx::PgPool;
use tokio::sync::watch;

use super::s3::{ObjectStore, PutOutcome, S3Error};
use super::segments::{
    checkpoints_between, next_checkpoint, ChainCursor, SegmentBytes, SegmentError,
};
use super::{ArchiveStatus, Fault};
use crate::audit::checkpoints::{CheckpointRequests, CheckpointStatus};
use crate::settings::ArchiveSettings;

/// How often an idle shipper looks for new events.
const POLL: Duration = Duration::from_millis(250);
const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often a bucket without Object Lock is checked again.
const LOCK_RECHECK: Duration = Duration::from_secs(30);
const CHECKPOINT_WAIT: Duration = Duration::from_secs(10);

pub const SEGMENT_CONTENT_TYPE: &str = "application/x-ndjson";
pub const NOTE_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

pub struct Shipper {
    pub pool: PgPool,
    pub appender: Appender,
    pub store: ObjectStore,
    pub layout: Layout,
    pub chain: String,
    /// The checkpoint signer's key name and verifier key (`name+id+base64`).
    pub key_name: String,
    pub vkey: String,
    pub settings: ArchiveSettings,
    pub checkpoint_requests: CheckpointRequests,
    pub signer: Arc<CheckpointStatus>,
    pub status: Arc<ArchiveStatus>,
}

/// How far the bucket is known to hold the chain.
struct Position {
    /// The chain followed up to the last shipped seq.
    cursor: ChainCursor,
    /// Key of the last segment (`None`: the bucket holds none).
    last_key: Option<String>,
}

/// The archive's segments as the bucket lists them.
struct BucketSegments {
    /// (first, last, key), contiguous from seq 1.
    segments: Vec<(u64, u64, String)>,
    /// Sizes of the checkpoint notes present.
    notes: HashSet<u64>,
}

impl BucketSegments {
    /// Last seq in the bucket (0: none).
    fn shipped(&self) -> u64 {
        self.segments.last().map_or(0, |&(_, l, _)| l)
    }
}

/// What `archive_segments` recorded as shipped to this bucket: key → (last seq, SHA-256).
type Recorded = HashMap<String, (i64, String)>;

enum ShipError {
    /// S3 or the database is unreachable: retry with back-off, keep the position.
    Transient(String),
    /// Start over from the bucket (another shipper was active).
    Resync(String),
    Fault(Fault),
}

impl From<S3Error> for ShipError {
    fn from(error: S3Error) -> Self {
        match error {
            S3Error::Diverged { .. } => ShipError::Fault(Fault::Diverged(error.to_string())),
            other => ShipError::Transient(other.to_string()),
        }
    }
}

impl From<SegmentError> for ShipError {
    fn from(error: SegmentError) -> Self {
        match error {
            SegmentError::Database(e) => ShipError::Transient(format!("database: {e}")),
            SegmentError::Inconsistent(m) => ShipError::Fault(Fault::Diverged(m)),
        }
    }
}

impl From<sqlx::Error> for ShipError {
    fn from(error: sqlx::Error) -> Self {
        ShipError::Transient(format!("database: {error}"))
    }
}

fn diverged(message: impl Into<String>) -> ShipError {
    ShipError::Fault(Fault::Diverged(message.into()))
}

impl Shipper {
    pub fn spawn(self, stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run(stop))
    }

    async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut position: Option<Position> = None;
        let mut backoff = MIN_BACKOFF;
        loop {
            if *stop.borrow() {
                return;
            }
            let leading = self.signer.leader.load(Ordering::Relaxed);
            if self.status.leader.swap(leading, Ordering::Relaxed) != leading {
                tracing::info!(leading, "archive shipper leadership changed");
            }
            let wait = if !leading {
                position = None;
                POLL
            } else {
                match self.status.fault() {
                    Some(Fault::Diverged(_)) => LOCK_RECHECK,
                    _ => {
                        let result = match position.as_mut() {
                            None => match self.resume().await {
                                Ok(found) => {
                                    position = Some(found);
                                    Ok(true)
                                }
                                Err(e) => Err(e),
                            },
                            Some(at) => self.step(at).await,
                        };
                        match result {
                            Ok(more) => {
                                backoff = MIN_BACKOFF;
                                self.status.set_last_error(None);
                                self.status.set_fault(None);
                                if more {
                                    Duration::ZERO
                                } else {
                                    POLL
                                }
                            }
                            Err(ShipError::Transient(error)) => {
                                tracing::warn!(error = %error, retry_in_ms = backoff.as_millis() as u64, "archive: shipping delayed");
                                self.status.metrics.upload_errors.inc();
                                self.status.set_last_error(Some(error));
                                let wait = backoff;
                                backoff = (backoff * 2).min(MAX_BACKOFF);
                                wait
                            }
                            Err(ShipError::Resync(reason)) => {
                                tracing::info!(reason = %reason, "archive: starting over from the bucket");
                                position = None;
                                Duration::ZERO
                            }
                            Err(ShipError::Fault(fault)) => {
                                tracing::error!(fault = %fault.message(), "archive: shipping stopped; WORM archiving is not healthy");
                                self.status.set_fault(Some(fault));
                                position = None;
                                LOCK_RECHECK
                            }
                        }
                    }
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Take up shipping from what the bucket holds (see the module doc).
    async fn resume(&self) -> Result<Position, ShipError> {
        self.require_object_lock().await?;
        self.publish_key().await?;
        let bucket = self.bucket_segments().await?;
        let shipped = bucket.shipped();
        let recorded = self.recorded_as_shipped(shipped).await?;
        let cursor = self.hold_against_bucket(&bucket, &recorded).await?;
        self.status.shipped_seq.store(shipped, Ordering::Relaxed);
        tracing::info!(
            bucket = self.store.bucket(),
            segments = bucket.segments.len(),
            shipped_seq = shipped,
            "archive: resuming after what the bucket holds"
        );
        Ok(Position {
            cursor,
            last_key: bucket.segments.last().map(|(_, _, key)| key.clone()),
        })
    }

    /// Nothing is shipped to a bucket without Object Lock.
    async fn require_object_lock(&self) -> Result<(), ShipError> {
        if self.store.object_lock_enabled().await? {
            self.status.object_lock.store(1, Ordering::Relaxed);
            return Ok(());
        }
        self.status.object_lock.store(-1, Ordering::Relaxed);
        Err(ShipError::Fault(Fault::NoObjectLock(format!(
            "bucket {} does not have Object Lock enabled; nothing is shipped",
            self.store.bucket()
        ))))
    }

    /// The verifier key under `keys/`, beside the checkpoints it signs.
    async fn publish_key(&self) -> Result<(), ShipError> {
        let key_object = self.layout.key_key(&self.key_name);
        let published = self
            .store
            .put_once(
                &key_object,
                format!("{}\n", self.vkey).as_bytes(),
                NOTE_CONTENT_TYPE,
            )
            .await?;
        self.require_lock(&key_object, &published)
    }

    /// What the bucket holds: segments contiguous from seq 1, and checkpoint notes.
    async fn bucket_segments(&self) -> Result<BucketSegments, ShipError> {
        let segments_prefix = self.layout.segments_prefix();
        let mut segments = Vec::new();
        for key in self.store.list_keys(&segments_prefix, None).await? {
            let Some((first, last)) = self.layout.parse_segment_key(&key) else {
                return Err(diverged(format!(
                    "unexpected object {key} among the archive's segments"
                )));
            };
            let expected = segments.last().map_or(1, |&(_, l, _)| l + 1);
            if first != expected {
                return Err(diverged(format!(
                    "the bucket's segments are not contiguous: {key} starts at {first}, expected {expected} \
                     (a segment missing or overlapping)"
                )));
            }
            segments.push((first, last, key));
        }
        let notes: HashSet<u64> = self
            .store
            .list_keys(&self.layout.checkpoints_prefix(), None)
            .await?
            .iter()
            .filter_map(|k| self.layout.parse_checkpoint_key(k))
            .collect();
        Ok(BucketSegments { segments, notes })
    }

    /// What the database recorded as shipped to this bucket; the bucket must
    /// hold all of it, and the database every event the bucket holds.
    async fn recorded_as_shipped(&self, shipped: u64) -> Result<Recorded, ShipError> {
        let recorded: Recorded = sqlx::query_as::<_, (String, i64, String)>(
            "SELECT key, last_seq, sha256 FROM archive_segments WHERE chain = $1 AND bucket = $2",
        )
        .bind(&self.chain)
        .bind(self.store.bucket())
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(|(key, last, sha)| (key, (last, sha)))
        .collect();
        if let Some((key, (last, _))) = recorded
            .iter()
            .filter(|(_, (last, _))| *last as u64 > shipped)
            .max_by_key(|(_, (last, _))| *last)
        {
            return Err(diverged(format!(
                "the database recorded {key} (up to seq {last}) as shipped, but the bucket's segments end at seq {shipped} (deleted?)"
            )));
        }
        let head: Option<i64> = sqlx::query_scalar("SELECT max(seq) FROM events WHERE chain = $1")
            .bind(&self.chain)
            .fetch_one(&self.pool)
            .await?;
        if shipped > head.unwrap_or(0) as u64 {
            return Err(diverged(format!(
                "the bucket holds events up to seq {shipped} but the database ends at seq {} (truncated or restored?)",
                head.unwrap_or(0)
            )));
        }
        Ok(recorded)
    }

    /// Re-read the database over the shipped range and hold it against the
    /// bucket, segment by segment; the chain as followed to the last one.
    async fn hold_against_bucket(
        &self,
        bucket: &BucketSegments,
        recorded: &Recorded,
    ) -> Result<ChainCursor, ShipError> {
        let db_notes: BTreeMap<u64, String> =
            checkpoints_between(&self.pool, &self.chain, 0, Some(bucket.shipped()))
                .await?
                .into_iter()
                .collect();
        let mut cursor = ChainCursor::new(&self.chain);
        let count = bucket.segments.len();
        for (index, (_, last, key)) in bucket.segments.iter().enumerate() {
            let segment = cursor.read_segment(&self.pool, *last).await?;
            let note = db_notes.get(last).ok_or_else(|| {
                diverged(format!(
                    "{key} ends at seq {last}, but the database has no checkpoint of that size"
                ))
            })?;
            cursor.check_note(note)?;
            let recorded_sha = recorded.get(key).map(|(_, sha)| sha.as_str());
            let newest = index + 1 == count;
            self.hold_segment(key, &segment, note, recorded_sha, newest, &bucket.notes)
                .await?;
        }
        Ok(cursor)
    }

    /// One shipped segment: the database's bytes still hash as recorded;
    /// the newest, and any not yet recorded, compared with the bucket's
    /// checksum, its checkpoint uploaded if it is the newest's and missing,
    /// and recorded as `recovered` if a crash left it unrecorded.
    async fn hold_segment(
        &self,
        key: &str,
        segment: &SegmentBytes,
        note: &str,
        recorded_sha: Option<&str>,
        newest: bool,
        notes: &HashSet<u64>,
    ) -> Result<(), ShipError> {
        let last = segment.last;
        if let Some(sha) = recorded_sha {
            if sha != segment.sha256_hex() {
                return Err(diverged(format!(
                    "{key}: the database's events no longer hash to the SHA-256 recorded when it was shipped"
                )));
            }
        }
        let note_key = self.layout.checkpoint_key(last);
        let note_missing = || diverged(format!("{note_key} is missing from the bucket (deleted?)"));
        if recorded_sha.is_none() || newest {
            // Never writes: the key is listed, so put_once only compares.
            let found = self
                .store
                .put_once(key, &segment.body, SEGMENT_CONTENT_TYPE)
                .await?;
            self.require_lock(key, &found)?;
            if !notes.contains(&last) {
                if !newest {
                    return Err(note_missing());
                }
                let uploaded = self
                    .store
                    .put_once(&note_key, note.as_bytes(), NOTE_CONTENT_TYPE)
                    .await?;
                self.require_lock(&note_key, &uploaded)?;
            }
            if recorded_sha.is_none() {
                self.record(key, segment, &note_key, &found, true).await?;
            }
        } else if !notes.contains(&last) {
            return Err(note_missing());
        }
        Ok(())
    }

    /// Ship the next segment if one is due. `Ok(true)`: shipped one, look again at once.
    async fn step(&self, at: &mut Position) -> Result<bool, ShipError> {
        let shipped = at.cursor.size();
        let mut next = next_checkpoint(&self.pool, &self.chain, shipped).await?;
        if next.is_none() && self.segment_due(shipped).await? {
            match tokio::time::timeout(CHECKPOINT_WAIT, self.checkpoint_requests.checkpoint_now())
                .await
            {
                Ok(Ok(_)) => next = next_checkpoint(&self.pool, &self.chain, shipped).await?,
                Ok(Err(error)) => tracing::debug!(error = %error, "archive: no checkpoint yet"),
                Err(_) => tracing::warn!("archive: the checkpoint signer did not answer"),
            }
        }
        let Some((last, note)) = next else {
            return Ok(false);
        };

        // Did anyone else ship after our last segment?
        let after = self
            .store
            .list_keys(&self.layout.segments_prefix(), at.last_key.as_deref())
            .await?;
        if let Some(key) = after.first() {
            return Err(ShipError::Resync(format!(
                "{key} appeared in the bucket after this shipper's last segment"
            )));
        }

        let mut cursor = at.cursor.clone();
        let segment = cursor.read_segment(&self.pool, last).await?;
        cursor.check_note(&note)?;
        let key = self.layout.segment_key(segment.first, segment.last);
        let outcome = self
            .store
            .put_once(&key, &segment.body, SEGMENT_CONTENT_TYPE)
            .await?;
        self.require_lock(&key, &outcome)?;
        let note_key = self.layout.checkpoint_key(last);
        let note_outcome = self
            .store
            .put_once(&note_key, note.as_bytes(), NOTE_CONTENT_TYPE)
            .await?;
        self.require_lock(&note_key, &note_outcome)?;
        let recovered = matches!(outcome, PutOutcome::AlreadyThere { .. });
        self.record(&key, &segment, &note_key, &outcome, recovered)
            .await?;
        tracing::info!(
            key = %key,
            first = segment.first,
            last = segment.last,
            bytes = segment.body.len(),
            recovered,
            "archive: segment shipped"
        );
        at.cursor = cursor;
        at.last_key = Some(key);
        self.status.shipped_seq.store(last, Ordering::Relaxed);
        Ok(true)
    }

    /// No checkpoint to ship up to yet: should we ask for one? Only when a
    /// real (non-bookkeeping) event waits, and the waiting events reach the
    /// size limit or the oldest real one the age limit.
    async fn segment_due(&self, shipped: u64) -> Result<bool, ShipError> {
        let oldest: Option<(i64, f64)> = sqlx::query_as(
            "SELECT seq, extract(epoch FROM now() - ts)::float8 FROM events \
             WHERE chain = $1 AND seq > $2 AND type <> ALL($3) ORDER BY seq LIMIT 1",
        )
        .bind(&self.chain)
        .bind(shipped as i64)
        .bind(&catalogue::bookkeeping_types()[..])
        .fetch_optional(&self.pool)
        .await?;
        let Some((_, age)) = oldest else {
            return Ok(false);
        };
        if age >= self.settings.segment_max_age.as_secs_f64() {
            return Ok(true);
        }
        let head: Option<i64> = sqlx::query_scalar("SELECT max(seq) FROM events WHERE chain = $1")
            .bind(&self.chain)
            .fetch_one(&self.pool)
            .await?;
        Ok(head.unwrap_or(0) as u64 - shipped >= self.settings.segment_max_events)
    }

    /// An object we rely on must be under Object Lock with a retention date.
    fn require_lock(&self, key: &str, outcome: &PutOutcome) -> Result<(), ShipError> {
        let locked = outcome.lock_mode().is_some_and(|m| !m.is_empty())
            && outcome
                .retain_until()
                .is_some_and(|at| at > chrono::Utc::now());
        if locked {
            Ok(())
        } else {
            Err(diverged(format!(
                "{key} is in the bucket without an Object Lock retention (mode {:?}, retain-until {:?})",
                outcome.lock_mode(),
                outcome.retain_until()
            )))
        }
    }

    async fn record(
        &self,
        key: &str,
        segment: &SegmentBytes,
        note_key: &str,
        outcome: &PutOutcome,
        recovered: bool,
    ) -> Result<(), ShipError> {
        let payload = ArchiveShipped {
            bucket: self.store.bucket().to_owned(),
            key: key.to_owned(),
            first: segment.first,
            last: segment.last,
            sha256: segment.sha256_hex(),
            bytes: segment.body.len() as u64,
            checkpoint_size: segment.last,
            checkpoint_key: note_key.to_owned(),
            lock_mode: outcome.lock_mode().map(str::to_owned),
            retain_until: outcome
                .retain_until()
                .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            recovered,
        };
        match self
            .appender
            .append(payload.draft(Actor::system("archiver")))
            .await
        {
            Ok(_) => {
                self.status.metrics.segments_shipped.inc();
                Ok(())
            }
            Err(AppendError::Rejected(reason)) => Err(diverged(format!(
                "archive.shipped for {key} was refused: {reason}"
            ))),
            Err(error) => Err(ShipError::Transient(format!(
                "record archive.shipped for {key}: {error}"
            ))),
        }
    }
}
