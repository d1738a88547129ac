//! The `archive.shipped` event and its row in `archive_segments`, written in
//! the appending transaction (so the row exists exactly when the event does).

use async_trait::async_trait;
use events::store::{HookError, HookRejection, TxHook};
use events::Event;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use super::ARCHIVE_SHIPPED;

/// Payload of `archive.shipped`: one segment in the bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveShipped {
    pub bucket: String,
    /// The segment's object key.
    pub key: String,
    pub first: u64,
    pub last: u64,
    /// Lowercase hex SHA-256 of the segment object.
    pub sha256: String,
    pub bytes: u64,
    /// The checkpoint uploaded after it (always `last`).
    pub checkpoint_size: u64,
    pub checkpoint_key: String,
    /// As the bucket reports or as requested: `COMPLIANCE` or `GOVERNANCE`.
    pub lock_mode: Option<String>,
    /// RFC 3339.
    pub retain_until: Option<String>,
    /// True when the segment was found already in the bucket (uploaded before
    /// a crash or by another replica) rather than uploaded now.
    pub recovered: bool,
}

/// Stores each `archive.shipped` in `archive_segments`.
pub struct ArchiveRecorder;

#[async_trait]
impl TxHook for ArchiveRecorder {
    fn affects(&self, event_type: &str) -> bool {
        event_type == ARCHIVE_SHIPPED
    }

    async fn apply(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HookError> {
        let shipped: ArchiveShipped = serde_json::from_value(event.data.clone())
            .map_err(|e| HookRejection(format!("malformed archive.shipped: {e}")))?;
        if shipped.first == 0 || shipped.last < shipped.first || shipped.last >= event.seq {
            return Err(HookRejection(format!(
                "archive.shipped of {}..{} cannot be recorded at seq {}",
                shipped.first, shipped.last, event.seq
            ))
            .into());
        }
        // A segment seen shipped twice (a hand-over between replicas, or a
        // bucket re-created in dev) keeps its first row; both events stay.
        sqlx::query(
            "INSERT INTO archive_segments (bucket, key, chain, first_seq, last_seq, sha256, bytes, event_seq) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind(&shipped.bucket)
        .bind(&shipped.key)
        .bind(&event.chain)
        .bind(shipped.first as i64)
        .bind(shipped.last as i64)
        .bind(&shipped.sha256)
        .bind(shipped.bytes as i64)
        .bind(event.seq as i64)
        .execute(conn)
        .await?;
        Ok(())
    }
}
