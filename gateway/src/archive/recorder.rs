//! The row in `archive_segments` of each `archive.shipped` event, written in
//! the appending transaction (so the row exists exactly when the event does).

use async_trait::async_trait;
use events::catalogue::{ArchiveShipped, EventPayload};
use events::store::{HookError, HookRejection, TxHook};
use events::Event;
use sqlx::PgConnection;

/// Stores each `archive.shipped` in `archive_segments`.
pub struct ArchiveRecorder;

#[async_trait]
impl TxHook for ArchiveRecorder {
    fn affects(&self, event_type: &str) -> bool {
        event_type == ArchiveShipped::TYPE
    }

    async fn apply(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HookError> {
        let shipped = ArchiveShipped::from_data(&event.data)
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
