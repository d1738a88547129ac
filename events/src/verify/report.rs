//! What a verification run reports: the [`Failure`] that stops it, the
//! [`Summary`] of a clean run, and the constructors that phrase each failure
//! the way `verify-chain` prints it (check, seq or object, expected, found).

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::merkle::Hash;
use crate::note::NoteError;

/// Check numbers of docs/events.md §7.
pub const CHECK_EVENT: u8 = 1;
pub const CHECK_LINKS: u8 = 2;
pub const CHECK_CHECKPOINT: u8 = 3;
pub const CHECK_SOURCES: u8 = 4;
pub const CHECK_CONSISTENCY: u8 = 5;

/// One failure, as verify-chain prints it and its `--json` reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    /// Check number of docs/events.md §7.
    pub check: u8,
    pub seq: Option<u64>,
    /// Where the failing item came from: an object key, a file, "database".
    pub object: Option<String>,
    pub expected: String,
    pub found: String,
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "check {} failed", self.check)?;
        if let Some(seq) = self.seq {
            write!(f, " at seq {seq}")?;
        }
        if let Some(object) = &self.object {
            write!(f, " in {object}")?;
        }
        write!(
            f,
            ": {}; expected {}, found {}",
            self.message, self.expected, self.found
        )
    }
}

impl std::error::Error for Failure {}

/// What a successful run verified.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub chain: Option<String>,
    /// Events verified in this run (after the trusted prefix, if resumed).
    pub events: u64,
    /// Seq of the last event (the tree size); 0 for an empty chain.
    pub head_seq: u64,
    /// Hash of the last event; 64 zeros (the genesis `prev`) for an empty chain.
    pub head_hash: String,
    /// Size of the largest checkpoint verified against the stream.
    pub checkpoint_size: Option<u64>,
    /// Checkpoint notes verified against the stream (several notes may
    /// vouch for one size, e.g. the database's and the archive's).
    pub checkpoints: u64,
    pub first_ts: Option<String>,
    pub last_ts: Option<String>,
    /// Trusted keys that signed the verified checkpoints, sorted.
    pub signed_by: Vec<String>,
}

/// Check 3 proper: the tree at the checkpoint's size is the checkpoint's.
pub(super) fn check_tree_head(
    checkpoint: &Checkpoint,
    label: &str,
    root: &Hash,
    head_hash: &str,
) -> Result<(), Failure> {
    let size = checkpoint.size;
    if checkpoint.root != *root {
        return Err(Failure {
            check: CHECK_CHECKPOINT,
            seq: Some(size),
            object: Some(label.to_owned()),
            expected: checkpoint.root_base64(),
            found: base64_root(root),
            message: format!(
                "the Merkle root recomputed over events 1..{size} is not the signed checkpoint's"
            ),
        });
    }
    if checkpoint.head != head_hash {
        return Err(Failure {
            check: CHECK_CHECKPOINT,
            seq: Some(size),
            object: Some(label.to_owned()),
            expected: checkpoint.head.clone(),
            found: head_hash.to_owned(),
            message: format!("the hash of event {size} is not the signed checkpoint's head"),
        });
    }
    Ok(())
}

fn base64_root(root: &Hash) -> String {
    BASE64.encode(root)
}

pub(super) fn event_failure(
    seq: u64,
    object: Option<&str>,
    expected: String,
    found: String,
    message: String,
) -> Failure {
    Failure {
        check: CHECK_EVENT,
        seq: Some(seq),
        object: object.map(str::to_owned),
        expected,
        found,
        message,
    }
}

/// A checkpoint note that did not open: which key, which signature, which line.
pub(super) fn note_failure(label: &str, error: CheckpointError) -> Failure {
    let (expected, found, message) = match &error {
        CheckpointError::Note(NoteError::Unverified { signatures }) => (
            "a signature by a trusted key".to_string(),
            if signatures.is_empty() {
                "no signature".to_string()
            } else {
                format!(
                    "signatures only by {}",
                    signatures
                        .iter()
                        .map(|(name, id)| format!("{name}+{id:08x}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            "the checkpoint is not signed by any trusted key".to_string(),
        ),
        CheckpointError::Note(NoteError::InvalidSignature { name, key_id }) => (
            format!("a valid signature by {name}+{key_id:08x}"),
            "a signature that does not verify".to_string(),
            "the checkpoint signature is invalid (the note was altered or forged)".to_string(),
        ),
        CheckpointError::Note(other) => (
            "a well-formed signed note".to_string(),
            other.to_string(),
            "the checkpoint note is malformed".to_string(),
        ),
        CheckpointError::MalformedBody { .. } => (
            "a checkpoint body: origin, size, root, head".to_string(),
            error.to_string(),
            "the signed checkpoint body is malformed".to_string(),
        ),
    };
    Failure {
        check: CHECK_CHECKPOINT,
        seq: None,
        object: Some(label.to_owned()),
        expected,
        found,
        message,
    }
}
