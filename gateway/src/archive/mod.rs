//! The archive (`docs/events.md` §5): the chain in WORM storage, and auditor exports.
//!
//! Object keys and `start.json` are [`events::archive`]'s, shared with `verify-chain`.
//!
//! - [`segments`]: segments built from the database, checked against the
//!   signed checkpoint they end at.
//! - [`s3`]: the S3 client (the `s3-client` crate's, shared with verify-chain) and uploads
//!   that never replace a key.
//! - [`shipper`]: ships every event to S3 with Object Lock within seconds;
//!   one replica at a time, resumable from what the bucket holds.
//! - [`export`]: the same layout as a directory or `.tar.gz` bundle with a
//!   README for auditors (`rack-gateway-server export`, `GET /api/v1/audit/export`).
//! - [`recorder`]: the row in `archive_segments` of each `archive.shipped` event.
//!
//! How segments and checkpoints fit: **every segment ends at a signed
//! checkpoint, and every checkpoint ends a segment**. The next segment after
//! the last shipped seq L is always `L+1 ..= C`, C the smallest checkpoint
//! size above L. The signer makes checkpoints every `CHECKPOINT_EVERY_EVENTS`
//! events (or seconds); when events wait longer than the segment limits
//! (`AUDIT_SEGMENT_MAX_EVENTS`, `AUDIT_SEGMENT_MAX_AGE_MS`) and no checkpoint
//! exists yet, the shipper asks the signer for one. Because checkpoints are
//! append-only and signed in increasing size, segment boundaries depend only
//! on the database: two shippers (a leadership hand-over) compute the same
//! keys with the same bytes, so they can never overlap.

pub mod export;
pub mod recorder;
pub mod s3;
pub mod segments;
pub mod shipper;
pub mod web;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use events::catalogue;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sqlx::PgPool;

pub use events::archive::Layout;

/// The archive as request handlers see it: its status, and what exports carry.
pub struct Archive {
    pub status: Arc<ArchiveStatus>,
    /// `AUDIT_S3_PREFIX`: exports use the same layout as the bucket.
    pub prefix: String,
    /// The checkpoint signer's key name and verifier key.
    pub key_name: String,
    pub vkey: String,
}

impl Archive {
    /// (name, vkey) of the keys published with the archive and in exports.
    pub fn verifier_keys(&self) -> Vec<(String, String)> {
        vec![(self.key_name.clone(), self.vkey.clone())]
    }
}

/// A fault that stops shipping until it is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The bucket does not have Object Lock enabled: nothing is shipped and
    /// WORM archiving is not healthy. Re-checked every 30 s.
    NoObjectLock(String),
    /// The bucket and the database disagree (a segment or checkpoint differs,
    /// a gap, an object without a lock, the database behind the bucket).
    /// Shipping stops until an operator has looked; never "fixed".
    Diverged(String),
}

impl Fault {
    pub fn message(&self) -> &str {
        match self {
            Fault::NoObjectLock(m) | Fault::Diverged(m) => m,
        }
    }
}

/// What this process knows about archiving; read by `/ready` and `/metrics`.
pub struct ArchiveStatus {
    /// `AUDIT_S3_BUCKET` is set.
    pub enabled: bool,
    pub bucket: Option<String>,
    /// This replica ships (it is the checkpoint signer).
    pub leader: AtomicBool,
    /// 1 = the bucket has Object Lock enabled, -1 = it has not, 0 = not known yet.
    pub object_lock: AtomicI64,
    /// Last seq this shipper knows to be in the bucket.
    pub shipped_seq: AtomicU64,
    fault: Mutex<Option<Fault>>,
    last_error: Mutex<Option<String>>,
    pub metrics: ArchiveMetrics,
}

impl ArchiveStatus {
    pub fn new(bucket: Option<String>) -> ArchiveStatus {
        ArchiveStatus {
            enabled: bucket.is_some(),
            bucket,
            leader: AtomicBool::new(false),
            object_lock: AtomicI64::new(0),
            shipped_seq: AtomicU64::new(0),
            fault: Mutex::new(None),
            last_error: Mutex::new(None),
            metrics: ArchiveMetrics::default(),
        }
    }

    pub fn fault(&self) -> Option<Fault> {
        self.fault.lock().ok().and_then(|f| f.clone())
    }

    pub fn set_fault(&self, fault: Option<Fault>) {
        if let Ok(mut slot) = self.fault.lock() {
            *slot = fault;
        }
    }

    /// The last transient error (S3 unreachable, ...), cleared by the next success.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    pub fn set_last_error(&self, error: Option<String>) {
        if let Ok(mut slot) = self.last_error.lock() {
            *slot = error;
        }
    }

    /// Why WORM archiving is not healthy, for `/ready` (None: healthy or disabled).
    pub fn problem(&self) -> Option<String> {
        self.fault().map(|f| format!("archive: {}", f.message()))
    }
}

/// The archive's Prometheus series.
#[derive(Default)]
pub struct ArchiveMetrics {
    pub lag_seconds: Gauge<f64, AtomicU64>,
    pub shipped_seq: Gauge,
    pub healthy: Gauge,
    pub object_lock: Gauge,
    pub fault: Gauge,
    pub leader: Gauge,
    pub segments_shipped: Counter,
    pub upload_errors: Counter,
}

impl ArchiveMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "rgw_archive_lag_seconds",
            "Age of the oldest event not yet in the archive bucket (archive bookkeeping events excepted); 0 when none waits",
            self.lag_seconds.clone(),
        );
        registry.register(
            "rgw_archive_shipped_seq",
            "Last seq recorded as shipped to the archive bucket",
            self.shipped_seq.clone(),
        );
        registry.register(
            "rgw_archive_healthy",
            "1 when WORM archiving is configured, Object Lock is confirmed on the bucket and no fault stops shipping",
            self.healthy.clone(),
        );
        registry.register(
            "rgw_archive_object_lock",
            "1 when the bucket has Object Lock enabled, -1 when it has not, 0 when not known yet",
            self.object_lock.clone(),
        );
        registry.register(
            "rgw_archive_fault",
            "1 when shipping stopped on a fault (no Object Lock, or bucket and database disagree); see /ready",
            self.fault.clone(),
        );
        registry.register(
            "rgw_archive_shipper_leader",
            "1 when this replica ships the archive",
            self.leader.clone(),
        );
        registry.register(
            "rgw_archive_segments_shipped",
            "Segments this process uploaded or found already uploaded",
            self.segments_shipped.clone(),
        );
        registry.register(
            "rgw_archive_upload_errors",
            "Failed archive attempts (S3 unreachable or refusing); shipping retries",
            self.upload_errors.clone(),
        );
    }
}

/// Refresh the gauges computed from the database (called at scrape time).
pub async fn refresh_metrics(status: &ArchiveStatus, pool: &PgPool, chain: &str) {
    let metrics = &status.metrics;
    metrics
        .leader
        .set(i64::from(status.leader.load(Ordering::Relaxed)));
    metrics
        .object_lock
        .set(status.object_lock.load(Ordering::Relaxed));
    let fault = status.fault().is_some();
    metrics.fault.set(i64::from(fault));
    let Some(bucket) = &status.bucket else {
        metrics.healthy.set(0);
        return;
    };
    metrics.healthy.set(i64::from(
        !fault && status.object_lock.load(Ordering::Relaxed) == 1,
    ));
    match lag(pool, chain, bucket).await {
        Ok((shipped, lag)) => {
            metrics.shipped_seq.set(shipped as i64);
            metrics.lag_seconds.set(lag);
        }
        Err(e) => tracing::warn!(error = %e, "metrics: cannot compute the archive lag"),
    }
}

/// (last seq recorded as shipped, age in seconds of the oldest event after it).
/// From the database, so every replica reports the same.
pub async fn lag(pool: &PgPool, chain: &str, bucket: &str) -> Result<(u64, f64), sqlx::Error> {
    let shipped: Option<i64> = sqlx::query_scalar(
        "SELECT max(last_seq) FROM archive_segments WHERE chain = $1 AND bucket = $2",
    )
    .bind(chain)
    .bind(bucket)
    .fetch_one(pool)
    .await?;
    let shipped = shipped.unwrap_or(0);
    let age: Option<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM now() - ts)::float8 FROM events \
         WHERE chain = $1 AND seq > $2 AND type <> ALL($3) ORDER BY seq LIMIT 1",
    )
    .bind(chain)
    .bind(shipped)
    // Bookkeeping events never close a segment by themselves (or every
    // segment would beget another), and the lag ignores them: a quiet chain's
    // last `archive.shipped` waits for the next real event.
    .bind(&catalogue::bookkeeping_types()[..])
    .fetch_optional(pool)
    .await?;
    Ok((shipped as u64, age.unwrap_or(0.0).max(0.0)))
}
