//! Check 1 of one event on its own: strict parse, canonical form, hash, and
//! the Merkle leaf. Nothing here depends on any other event, so callers may
//! prepare a batch on every core ([`prepare_in_parallel`]) while reading the
//! next, and hand the results to [`ChainVerifier::push_prepared`] in order,
//! which does what does depend on order (chain, seq, links, tree heads).
//!
//! [`ChainVerifier::push_prepared`]: super::ChainVerifier::push_prepared

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::envelope::{hash_hex, Event};
use crate::merkle::{leaf_hash, Hash};

use super::report::{event_failure, Failure, CHECK_EVENT};

/// An event whose own bytes and hash are verified.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub seq: u64,
    pub chain: String,
    pub prev: String,
    pub hash: String,
    pub ts: String,
    /// The Merkle leaf hash of its canonical bytes.
    pub leaf: Hash,
    /// The canonical bytes (envelope without `hash`), for callers that compare sources.
    pub canonical: Vec<u8>,
    /// Object key or file name it came from; none for a database row.
    pub object: Option<Arc<str>>,
}

/// An event that failed check 1 on its own; the message needs the position
/// in the stream, which only the verifier knows.
#[derive(Debug, Clone)]
pub enum Unprepared {
    /// A database row whose `seq` column is not a positive integer.
    BadSeqColumn(i64),
    /// A line that is not a canonical envelope with hash.
    BadLine { object: Arc<str>, error: String },
    /// Any other failure, complete.
    Failed(Failure),
}

impl Unprepared {
    /// The failure, `position` being the seq the verifier expected next.
    pub fn into_failure(self, position: u64) -> Failure {
        match self {
            Unprepared::BadSeqColumn(column) => event_failure(
                position,
                None,
                "a positive seq".into(),
                column.to_string(),
                "the row's seq column is not a positive integer".into(),
            ),
            Unprepared::BadLine { object, error } => Failure {
                check: CHECK_EVENT,
                seq: None,
                object: Some(object.to_string()),
                expected: "a canonical (RFC 8785) v1 envelope with hash".into(),
                found: error,
                message: format!(
                    "the line after seq {} is not a valid envelope",
                    position.saturating_sub(1)
                ),
            },
            Unprepared::Failed(failure) => failure,
        }
    }
}

/// Check 1 of a database row: the `seq` column, the stored canonical bytes
/// and the stored hash column.
pub fn prepare_stored(
    seq_column: i64,
    canonical: Vec<u8>,
    stored_hash: &str,
) -> Result<Prepared, Unprepared> {
    let Some(row_seq) = u64::try_from(seq_column).ok().filter(|&s| s >= 1) else {
        return Err(Unprepared::BadSeqColumn(seq_column));
    };
    let failed = |expected: String, found: String, message: &str| {
        Unprepared::Failed(event_failure(
            row_seq,
            None,
            expected,
            found,
            message.into(),
        ))
    };
    let event = Event::from_canonical(&canonical, stored_hash).map_err(|e| {
        failed(
            "a canonical (RFC 8785) v1 envelope".into(),
            e.to_string(),
            "the row's canonical bytes are not a valid envelope",
        )
    })?;
    if !hash_matches(&canonical, stored_hash) {
        return Err(failed(
            hash_hex(&canonical),
            stored_hash.to_owned(),
            "the stored hash is not SHA-256 of the stored canonical bytes",
        ));
    }
    if event.seq != row_seq {
        return Err(failed(
            format!("seq {row_seq}"),
            format!("seq {}", event.seq),
            "the row's seq column disagrees with the envelope",
        ));
    }
    Ok(prepared(event, canonical, None))
}

/// Check 1 of an archive/export line (full envelope with hash); `label` =
/// object key or file name. One trailing `\n` is allowed.
pub fn prepare_line(label: &Arc<str>, line: &[u8]) -> Result<Prepared, Unprepared> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let (event, canonical) = Event::parse_line(line).map_err(|e| Unprepared::BadLine {
        object: Arc::clone(label),
        error: e.to_string(),
    })?;
    if !hash_matches(&canonical, &event.hash) {
        return Err(Unprepared::Failed(event_failure(
            event.seq,
            Some(label),
            hash_hex(&canonical),
            event.hash.clone(),
            "the event's hash is not SHA-256 of its canonical bytes".into(),
        )));
    }
    Ok(prepared(event, canonical, Some(Arc::clone(label))))
}

/// hex(SHA-256(bytes)) == `hex`, without building a string per event.
fn hash_matches(bytes: &[u8], hex: &str) -> bool {
    let mut text = [0u8; 64];
    hex::encode_to_slice(Sha256::digest(bytes), &mut text).is_ok() && text == hex.as_bytes()
}

fn prepared(event: Event, canonical: Vec<u8>, object: Option<Arc<str>>) -> Prepared {
    Prepared {
        seq: event.seq,
        chain: event.chain,
        prev: event.prev,
        hash: event.hash,
        ts: event.ts,
        leaf: leaf_hash(&canonical),
        canonical,
        object,
    }
}

/// `f` over every item, on as many threads as the machine has cores (each
/// taking one contiguous chunk), results in the items' order. Items are moved
/// in, so what `f` keeps of them is not copied.
pub fn prepare_in_parallel<T, R, F>(mut items: Vec<T>, f: F) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(T) -> R + Sync,
{
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || items.len() < 64 {
        return items.into_iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let mut parts = Vec::with_capacity(threads);
    while items.len() > chunk {
        let rest = items.split_off(chunk);
        parts.push(std::mem::replace(&mut items, rest));
    }
    parts.push(items);
    std::thread::scope(|scope| {
        let f = &f;
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| scope.spawn(move || part.into_iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| match handle.join() {
                Ok(results) => results,
                // A panic in `f` is a bug; carry it to the caller's thread.
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}
