//! Segments as archived and exported: events first..last of the database,
//! one full envelope with `hash` per line (`Event::to_line()` + `\n`), in seq
//! order. Built by a [`ChainCursor`] that follows the chain from seq 1 and
//! re-checks every event (hash, seq, link) and the signed checkpoint at the
//! segment's end, so nothing is shipped or exported that the database's own
//! signed checkpoints do not vouch for.

use futures::TryStreamExt;
use md5::Md5;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use events::checkpoint::Checkpoint;
use events::merkle::{leaf_hash, CompactRange, Hash};
use events::store::{stream_rows, StoreError};
use events::{Event, GENESIS_PREV};

/// Why a segment could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    /// The database could not be read: try again later.
    #[error("database: {0}")]
    Database(#[from] StoreError),
    /// The database disagrees with itself or with its signed checkpoints: never ship it.
    #[error("{0}")]
    Inconsistent(String),
}

impl From<sqlx::Error> for SegmentError {
    fn from(error: sqlx::Error) -> Self {
        SegmentError::Database(StoreError::Database(error))
    }
}

/// One segment's bytes and digests.
#[derive(Debug, Clone)]
pub struct SegmentBytes {
    pub first: u64,
    pub last: u64,
    pub body: Vec<u8>,
    pub sha256: [u8; 32],
    pub md5: [u8; 16],
}

impl SegmentBytes {
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

/// SHA-256 and MD5 of a body, as uploads and comparisons need them.
pub fn digests(body: &[u8]) -> ([u8; 32], [u8; 16]) {
    (Sha256::digest(body).into(), Md5::digest(body).into())
}

/// The chain as followed so far: its Merkle frontier and last hash.
#[derive(Debug, Clone)]
pub struct ChainCursor {
    chain: String,
    tree: CompactRange,
    last_hash: String,
}

impl ChainCursor {
    pub fn new(chain: &str) -> ChainCursor {
        ChainCursor {
            chain: chain.to_owned(),
            tree: CompactRange::new(),
            last_hash: GENESIS_PREV.to_owned(),
        }
    }

    /// Events followed (the seq of the last one).
    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    pub fn root(&self) -> Hash {
        self.tree.root()
    }

    pub fn frontier(&self) -> &[Hash] {
        self.tree.frontier()
    }

    pub fn head_hash(&self) -> &str {
        &self.last_hash
    }

    /// Check the next stored row and take it; returns its archive line (without newline).
    pub fn push(
        &mut self,
        seq: i64,
        canonical: &[u8],
        hash: &str,
    ) -> Result<Vec<u8>, SegmentError> {
        let expected = self.size() + 1;
        if u64::try_from(seq).ok() != Some(expected) {
            return Err(SegmentError::Inconsistent(format!(
                "database: expected event {expected}, found seq {seq}"
            )));
        }
        let event = Event::from_canonical(canonical, hash).map_err(|e| {
            SegmentError::Inconsistent(format!(
                "database: event {seq} is not a valid envelope: {e}"
            ))
        })?;
        if event.seq != expected || event.chain != self.chain {
            return Err(SegmentError::Inconsistent(format!(
                "database: row {seq} holds event {} of chain {}",
                event.seq, event.chain
            )));
        }
        if events::envelope::hash_hex(canonical) != hash {
            return Err(SegmentError::Inconsistent(format!(
                "database: event {seq}'s hash is not SHA-256 of its bytes"
            )));
        }
        if event.prev != self.last_hash {
            return Err(SegmentError::Inconsistent(format!(
                "database: event {seq}'s prev does not link to event {}",
                seq - 1
            )));
        }
        self.tree.push(leaf_hash(canonical));
        self.last_hash = event.hash.clone();
        Ok(event.to_line())
    }

    /// The tree as followed must be the one `note` signs (at exactly this size).
    pub fn check_note(&self, note: &str) -> Result<(), SegmentError> {
        let checkpoint = note_checkpoint(note)?;
        if checkpoint.size != self.size()
            || checkpoint.root != self.root()
            || checkpoint.head != self.last_hash
            || checkpoint.chain() != Some(self.chain.as_str())
        {
            return Err(SegmentError::Inconsistent(format!(
                "database: events 1..{} do not match their signed checkpoint of size {}",
                self.size(),
                checkpoint.size
            )));
        }
        Ok(())
    }

    /// Follow (and check) events up to `size` without keeping them.
    pub async fn advance_to(&mut self, pool: &PgPool, size: u64) -> Result<(), SegmentError> {
        if size <= self.size() {
            return Ok(());
        }
        let chain = self.chain.clone();
        let mut rows = stream_rows(pool, &chain, self.size() as i64 + 1, Some(size as i64));
        while let Some(row) = rows.try_next().await? {
            self.push(row.seq, &row.canonical, &row.hash)?;
        }
        drop(rows);
        if self.size() != size {
            return Err(SegmentError::Inconsistent(format!(
                "database: the chain ends at seq {}, expected at least {size}",
                self.size()
            )));
        }
        Ok(())
    }

    /// Follow events `size()+1 ..= last` and return them as a segment.
    pub async fn read_segment(
        &mut self,
        pool: &PgPool,
        last: u64,
    ) -> Result<SegmentBytes, SegmentError> {
        let first = self.size() + 1;
        if last < first {
            return Err(SegmentError::Inconsistent(format!(
                "empty segment {first}..{last}"
            )));
        }
        let chain = self.chain.clone();
        let mut body = Vec::new();
        let mut rows = stream_rows(pool, &chain, first as i64, Some(last as i64));
        while let Some(row) = rows.try_next().await? {
            let line = self.push(row.seq, &row.canonical, &row.hash)?;
            body.extend_from_slice(&line);
            body.push(b'\n');
        }
        drop(rows);
        if self.size() != last {
            return Err(SegmentError::Inconsistent(format!(
                "database: the chain ends at seq {}, expected at least {last}",
                self.size()
            )));
        }
        let (sha256, md5) = digests(&body);
        Ok(SegmentBytes {
            first,
            last,
            body,
            sha256,
            md5,
        })
    }
}

/// The checkpoint in a note, without checking its signature (the note comes
/// from our own `checkpoints` table; auditors check signatures).
pub fn note_checkpoint(note: &str) -> Result<Checkpoint, SegmentError> {
    let body = note
        .split_once("\n\n")
        .map(|(body, _)| format!("{body}\n"))
        .ok_or_else(|| {
            SegmentError::Inconsistent("checkpoint note has no signature block".into())
        })?;
    Checkpoint::parse_body(&body)
        .map_err(|e| SegmentError::Inconsistent(format!("checkpoint note: {e}")))
}

/// Checkpoints of the chain in `(after, up_to]`, smallest first: (size, note).
pub async fn checkpoints_between(
    pool: &PgPool,
    chain: &str,
    after: u64,
    up_to: Option<u64>,
) -> Result<Vec<(u64, String)>, sqlx::Error> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT size, note FROM checkpoints WHERE chain = $1 AND size > $2 \
         AND ($3::bigint IS NULL OR size <= $3) ORDER BY size",
    )
    .bind(chain)
    .bind(after as i64)
    .bind(up_to.map(|n| n as i64))
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(s, n)| (s as u64, n)).collect())
}

/// The smallest checkpoint above `after`, if any: where the next segment ends.
pub async fn next_checkpoint(
    pool: &PgPool,
    chain: &str,
    after: u64,
) -> Result<Option<(u64, String)>, sqlx::Error> {
    let row: Option<(i64, String)> = sqlx::query_as(
        "SELECT size, note FROM checkpoints WHERE chain = $1 AND size > $2 ORDER BY size LIMIT 1",
    )
    .bind(chain)
    .bind(after as i64)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(s, n)| (s as u64, n)))
}
