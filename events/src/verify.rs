//! The streaming chain verifier (events.md §7): the checks `verify-chain` and
//! the gateway share, over one pass of the events in seq order.
//!
//! Usage: [`ChainVerifier::new`] with the trusted keys, optionally
//! [`resume_after`](ChainVerifier::resume_after) a trusted prefix, then
//! [`add_checkpoint`](ChainVerifier::add_checkpoint) for every checkpoint
//! note, then [`push_stored`](ChainVerifier::push_stored) (database rows) or
//! [`push_line`](ChainVerifier::push_line) (archive lines) for every event in
//! order, then [`finish`](ChainVerifier::finish).
//!
//! Checks (numbers as in events.md §7; check 4, database versus archive, is
//! done by the caller comparing two sources):
//! 1. each event parses strictly, is canonical, and its hash is SHA-256 of
//!    its canonical bytes; its chain is the expected one; a database row's
//!    `seq` column equals the envelope's;
//! 2. seq starts at 1 (or after the trusted prefix) with no gap, duplicate or
//!    reordering, and every `prev` is the previous event's hash;
//! 3. every checkpoint is signed by a trusted key, has origin
//!    `rack-gateway/<chain>`, and when the stream reaches its size N the Merkle
//!    root recomputed over events 1..N and the hash of event N equal its root
//!    and head; a checkpoint beyond the end of the stream means truncation;
//! 5. checkpoints are mutually consistent: two of the same size must agree.
//!    Checkpoints of different sizes need no consistency proof here: every
//!    root is recomputed from the one stream being verified, so if each
//!    matches, each earlier tree is a prefix of each later one by construction.
//!
//! Memory is constant in the number of events: the compact range (one hash
//! per set bit of the size), the last hash, counters, and the checkpoints.
//! The first failure is kept: every later call, and `finish`, return it, so a
//! caller that ignores an error still cannot get a [`Summary`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::checkpoint::{open_checkpoint, Checkpoint, CheckpointError};
use crate::envelope::{hash_hex, Event, GENESIS_PREV};
use crate::merkle::{leaf_hash, CompactRange, Hash};
use crate::note::{NoteError, Verifier};

/// Check numbers of events.md §7.
pub const CHECK_EVENT: u8 = 1;
pub const CHECK_LINKS: u8 = 2;
pub const CHECK_CHECKPOINT: u8 = 3;
pub const CHECK_SOURCES: u8 = 4;
pub const CHECK_CONSISTENCY: u8 = 5;

/// One failure, as verify-chain prints it and its `--json` reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    /// Check number of events.md §7.
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

/// The known state after a prefix the caller already trusts.
#[derive(Debug, Clone)]
struct TrustedPrefix {
    size: u64,
    head_hash: String,
    root: Hash,
}

/// Everything said about one tree size.
#[derive(Debug, Clone)]
struct KnownCheckpoint {
    checkpoint: Checkpoint,
    /// Where it was first seen.
    label: String,
    /// Notes that carried exactly this checkpoint.
    notes: u64,
    signed_by: BTreeSet<String>,
    /// Matched the stream (or the trusted prefix).
    verified: bool,
}

/// The streaming verifier; see the module documentation.
#[derive(Debug)]
pub struct ChainVerifier {
    /// The chain being verified: the expected one, or else the first seen.
    chain: Option<String>,
    trusted: Vec<Verifier>,
    checkpoints: BTreeMap<u64, KnownCheckpoint>,
    prefix: Option<TrustedPrefix>,
    tree: CompactRange,
    last_hash: String,
    events: u64,
    first_ts: Option<String>,
    last_ts: Option<String>,
    failure: Option<Failure>,
}

impl ChainVerifier {
    /// `expected_chain`: refuse events and checkpoints of any other chain
    /// (without it, the first one seen sets the chain). `trusted`: the keys
    /// checkpoints must be signed by.
    pub fn new(expected_chain: Option<String>, trusted: Vec<Verifier>) -> Self {
        ChainVerifier {
            chain: expected_chain,
            trusted,
            checkpoints: BTreeMap::new(),
            prefix: None,
            tree: CompactRange::new(),
            last_hash: GENESIS_PREV.to_owned(),
            events: 0,
            first_ts: None,
            last_ts: None,
            failure: None,
        }
    }

    /// Resume after a trusted prefix (partial exports): the frontier at `size`, the hash of event `size`.
    /// finish() fails (check 3) unless some added checkpoint at exactly `size` has root == frontier root and head == head_hash.
    pub fn resume_after(
        mut self,
        size: u64,
        head_hash: String,
        frontier: Vec<Hash>,
    ) -> Result<Self, Failure> {
        self.check_not_failed()?;
        let prefix_failure = |expected: String, found: String, message: String| Failure {
            check: CHECK_CHECKPOINT,
            seq: Some(size),
            object: None,
            expected,
            found,
            message,
        };
        if self.events > 0 || self.prefix.is_some() {
            let failure = prefix_failure(
                "resume_after before any event".into(),
                format!("{} events already verified", self.events),
                "a trusted prefix can only be set before the stream starts".into(),
            );
            return Err(self.record(failure));
        }
        if size == 0 {
            // Resuming after nothing is starting from the beginning.
            if head_hash != GENESIS_PREV || !frontier.is_empty() {
                let failure = prefix_failure(
                    format!("head {GENESIS_PREV} and an empty frontier"),
                    format!("head {head_hash} and {} frontier hashes", frontier.len()),
                    "an empty prefix has the genesis head and no frontier".into(),
                );
                return Err(self.record(failure));
            }
            return Ok(self);
        }
        if !is_lower_hex_64(&head_hash) {
            let failure = prefix_failure(
                "64 lowercase hex characters".into(),
                head_hash,
                "the prefix head is not an event hash".into(),
            );
            return Err(self.record(failure));
        }
        let tree = match CompactRange::from_frontier(size, frontier) {
            Ok(tree) => tree,
            Err(e) => {
                let failure = prefix_failure(
                    "a frontier with one hash per set bit of the size".into(),
                    e.to_string(),
                    "the prefix frontier does not fit its size".into(),
                );
                return Err(self.record(failure));
            }
        };
        let prefix = TrustedPrefix {
            size,
            head_hash: head_hash.clone(),
            root: tree.root(),
        };
        self.tree = tree;
        self.last_hash = head_hash;
        // Checkpoints added before this call: the one at the prefix is
        // checked now; earlier ones cannot be checked (their events are not
        // streamed) and are not counted as verified.
        if let Some(known) = self.checkpoints.get(&size) {
            let (checkpoint, label) = (known.checkpoint.clone(), known.label.clone());
            if let Err(failure) =
                check_tree_head(&checkpoint, &label, &prefix.root, &prefix.head_hash)
            {
                return Err(self.record(failure));
            }
            if let Some(known) = self.checkpoints.get_mut(&size) {
                known.verified = true;
            }
        }
        self.prefix = Some(prefix);
        Ok(self)
    }

    /// Add every checkpoint BEFORE pushing events. `label` names where it came from (e.g. "database", an object key)
    /// and is reported as `object` on failure. Verifies the signature with the trusted keys and the origin (check 3);
    /// two checkpoints of the same size with different roots or heads are check 5.
    pub fn add_checkpoint(&mut self, label: &str, note: &str) -> Result<(), Failure> {
        self.check_not_failed()?;
        let result = self.add_checkpoint_inner(label, note);
        self.record_result(result)
    }

    /// [`add_checkpoint`](Self::add_checkpoint) for raw bytes: non-UTF-8 is a malformed note (check 3).
    pub fn add_checkpoint_bytes(&mut self, label: &str, note: &[u8]) -> Result<(), Failure> {
        match std::str::from_utf8(note) {
            Ok(text) => self.add_checkpoint(label, text),
            Err(e) => {
                self.check_not_failed()?;
                let failure = note_failure(
                    label,
                    CheckpointError::Note(NoteError::Malformed(format!(
                        "not UTF-8 (at byte {})",
                        e.valid_up_to()
                    ))),
                );
                Err(self.record(failure))
            }
        }
    }

    fn add_checkpoint_inner(&mut self, label: &str, note: &str) -> Result<(), Failure> {
        let signed = open_checkpoint(note, &self.trusted).map_err(|e| note_failure(label, e))?;
        let checkpoint = signed.checkpoint;
        self.check_origin(&checkpoint, label)?;
        let size = checkpoint.size;

        if let Some(known) = self.checkpoints.get_mut(&size) {
            if known.checkpoint.root != checkpoint.root || known.checkpoint.head != checkpoint.head
            {
                let (expected, found) = if known.checkpoint.root != checkpoint.root {
                    (
                        format!("root {}", known.checkpoint.root_base64()),
                        format!("root {}", checkpoint.root_base64()),
                    )
                } else {
                    (
                        format!("head {}", known.checkpoint.head),
                        format!("head {}", checkpoint.head),
                    )
                };
                return Err(Failure {
                    check: CHECK_CONSISTENCY,
                    seq: Some(size),
                    object: Some(label.to_owned()),
                    expected,
                    found,
                    message: format!(
                        "two signed checkpoints of size {size} disagree: this one and {}",
                        known.label
                    ),
                });
            }
            known.notes += 1;
            known.signed_by.extend(signed.signed_by);
            return Ok(());
        }

        let verified = match &self.prefix {
            Some(prefix) if size < prefix.size => false, // before the verified range
            Some(prefix) if size == prefix.size => {
                check_tree_head(&checkpoint, label, &prefix.root, &prefix.head_hash)?;
                true
            }
            _ if size < self.tree.size() => {
                return Err(Failure {
                    check: CHECK_CHECKPOINT,
                    seq: Some(size),
                    object: Some(label.to_owned()),
                    expected: format!("checkpoints added before event {}", size + 1),
                    found: format!("added after event {}", self.tree.size()),
                    message: "this checkpoint can no longer be checked: add every checkpoint before pushing events".into(),
                });
            }
            _ if size == self.tree.size() => {
                check_tree_head(&checkpoint, label, &self.tree.root(), &self.last_hash)?;
                true
            }
            _ => false, // checked when the stream reaches `size`
        };
        self.checkpoints.insert(
            size,
            KnownCheckpoint {
                checkpoint,
                label: label.to_owned(),
                notes: 1,
                signed_by: signed.signed_by.into_iter().collect(),
                verified,
            },
        );
        Ok(())
    }

    fn check_origin(&mut self, checkpoint: &Checkpoint, label: &str) -> Result<(), Failure> {
        let failure = |expected: String| Failure {
            check: CHECK_CHECKPOINT,
            seq: Some(checkpoint.size),
            object: Some(label.to_owned()),
            expected,
            found: checkpoint.origin.clone(),
            message: "checkpoint origin is not this chain's".into(),
        };
        let Some(chain) = checkpoint.chain() else {
            return Err(failure("rack-gateway/<chain>".into()));
        };
        match &self.chain {
            Some(known) if known != chain => Err(failure(Checkpoint::origin_for_chain(known))),
            Some(_) => Ok(()),
            None => {
                self.chain = Some(chain.to_owned());
                Ok(())
            }
        }
    }

    /// A database row: the `seq` column, the stored canonical bytes and the stored hash column.
    pub fn push_stored(
        &mut self,
        seq_column: i64,
        canonical: &[u8],
        stored_hash: &str,
    ) -> Result<(), Failure> {
        self.check_not_failed()?;
        let result = self.push_stored_inner(seq_column, canonical, stored_hash);
        self.record_result(result)
    }

    fn push_stored_inner(
        &mut self,
        seq_column: i64,
        canonical: &[u8],
        stored_hash: &str,
    ) -> Result<(), Failure> {
        let position = self.next_seq();
        let Some(row_seq) = u64::try_from(seq_column).ok().filter(|&s| s >= 1) else {
            return Err(event_failure(
                position,
                None,
                "a positive seq".into(),
                seq_column.to_string(),
                "the row's seq column is not a positive integer".into(),
            ));
        };
        let event = Event::from_canonical(canonical, stored_hash).map_err(|e| {
            event_failure(
                row_seq,
                None,
                "a canonical (RFC 8785) v1 envelope".into(),
                e.to_string(),
                "the row's canonical bytes are not a valid envelope".into(),
            )
        })?;
        let computed = hash_hex(canonical);
        if computed != stored_hash {
            return Err(event_failure(
                row_seq,
                None,
                computed,
                stored_hash.to_owned(),
                "the stored hash is not SHA-256 of the stored canonical bytes".into(),
            ));
        }
        if event.seq != row_seq {
            return Err(event_failure(
                row_seq,
                None,
                format!("seq {row_seq}"),
                format!("seq {}", event.seq),
                "the row's seq column disagrees with the envelope".into(),
            ));
        }
        self.accept(&event, canonical, None)
    }

    /// An archive/export line (full envelope with hash); `label` = object key / file name for error reports.
    /// One trailing `\n` is allowed; anything else that is not the canonical line fails check 1.
    pub fn push_line(&mut self, label: &str, line: &[u8]) -> Result<(), Failure> {
        self.check_not_failed()?;
        let result = self.push_line_inner(label, line);
        self.record_result(result)
    }

    fn push_line_inner(&mut self, label: &str, line: &[u8]) -> Result<(), Failure> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let event = Event::from_line(line).map_err(|e| Failure {
            check: CHECK_EVENT,
            seq: None,
            object: Some(label.to_owned()),
            expected: "a canonical (RFC 8785) v1 envelope with hash".into(),
            found: e.to_string(),
            message: format!(
                "the line after seq {} is not a valid envelope",
                self.tree.size()
            ),
        })?;
        let canonical = event.canonical_bytes();
        let computed = hash_hex(&canonical);
        if computed != event.hash {
            return Err(event_failure(
                event.seq,
                Some(label),
                computed,
                event.hash.clone(),
                "the event's hash is not SHA-256 of its canonical bytes".into(),
            ));
        }
        self.accept(&event, &canonical, Some(label))
    }

    /// Checks 1 (chain), 2 and 3 for an event whose own bytes and hash are verified.
    fn accept(
        &mut self,
        event: &Event,
        canonical: &[u8],
        object: Option<&str>,
    ) -> Result<(), Failure> {
        match &self.chain {
            Some(chain) if *chain != event.chain => {
                return Err(event_failure(
                    event.seq,
                    object,
                    format!("chain {chain}"),
                    format!("chain {}", event.chain),
                    "the event belongs to another chain".into(),
                ));
            }
            Some(_) => {}
            None => self.chain = Some(event.chain.clone()),
        }
        let expected_seq = self.next_seq();
        if event.seq != expected_seq {
            let message = if event.seq < expected_seq {
                format!(
                    "seq {} again or out of order: events must be gapless and in order",
                    event.seq
                )
            } else {
                format!("gap: no event {expected_seq} before seq {}", event.seq)
            };
            return Err(Failure {
                check: CHECK_LINKS,
                seq: Some(expected_seq),
                object: object.map(str::to_owned),
                expected: format!("seq {expected_seq}"),
                found: format!("seq {}", event.seq),
                message,
            });
        }
        if event.prev != self.last_hash {
            return Err(Failure {
                check: CHECK_LINKS,
                seq: Some(event.seq),
                object: object.map(str::to_owned),
                expected: self.last_hash.clone(),
                found: event.prev.clone(),
                message: format!(
                    "prev does not link to the hash of {}",
                    match event.seq {
                        1 => "nothing (the genesis prev is 64 zeros)".to_string(),
                        n => format!("event {}", n - 1),
                    }
                ),
            });
        }

        self.tree.push(leaf_hash(canonical));
        self.last_hash.clone_from(&event.hash);
        self.events += 1;
        if self.first_ts.is_none() {
            self.first_ts = Some(event.ts.clone());
        }
        self.last_ts = Some(event.ts.clone());

        let size = self.tree.size();
        if let Some(known) = self.checkpoints.get(&size) {
            check_tree_head(
                &known.checkpoint,
                &known.label,
                &self.tree.root(),
                &self.last_hash,
            )?;
            if let Some(known) = self.checkpoints.get_mut(&size) {
                known.verified = true;
            }
        }
        Ok(())
    }

    /// Events verified so far in this run.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The tree (and so the chain) as verified so far, including a trusted prefix.
    pub fn tree(&self) -> &CompactRange {
        &self.tree
    }

    /// Hash of the last verified event (the genesis `prev` before any).
    pub fn head_hash(&self) -> &str {
        &self.last_hash
    }

    /// End of the stream: truncation and prefix checks, then the summary.
    pub fn finish(self) -> Result<Summary, Failure> {
        self.check_not_failed()?;
        let size = self.tree.size();
        if let Some(prefix) = &self.prefix {
            if !self.checkpoints.contains_key(&prefix.size) {
                return Err(Failure {
                    check: CHECK_CHECKPOINT,
                    seq: Some(prefix.size),
                    object: None,
                    expected: format!("a signed checkpoint of size {}", prefix.size),
                    found: "none".into(),
                    message: "no trusted checkpoint vouches for the prefix this run resumed after"
                        .into(),
                });
            }
        }
        if let Some((&beyond, known)) = self.checkpoints.range(size + 1..).next_back() {
            return Err(Failure {
                check: CHECK_CHECKPOINT,
                seq: Some(size + 1),
                object: Some(known.label.clone()),
                expected: format!("at least {beyond} events"),
                found: format!("{size} events"),
                message: format!(
                    "truncated: a signed checkpoint covers {beyond} events but the log ends at seq {size}"
                ),
            });
        }
        let first_verifiable = self.prefix.as_ref().map_or(0, |p| p.size);
        if let Some((&unchecked, known)) = self
            .checkpoints
            .range(first_verifiable..=size)
            .find(|(_, known)| !known.verified)
        {
            // Unreachable by construction (each size is checked as the stream passes it); never pass silently.
            return Err(Failure {
                check: CHECK_CHECKPOINT,
                seq: Some(unchecked),
                object: Some(known.label.clone()),
                expected: "checked against the stream".into(),
                found: "not checked".into(),
                message: "internal error: a checkpoint within the stream was not checked".into(),
            });
        }

        let verified: Vec<&KnownCheckpoint> =
            self.checkpoints.values().filter(|k| k.verified).collect();
        let signed_by: BTreeSet<String> = verified
            .iter()
            .flat_map(|k| k.signed_by.iter().cloned())
            .collect();
        Ok(Summary {
            chain: self.chain,
            events: self.events,
            head_seq: size,
            head_hash: self.last_hash,
            checkpoint_size: verified.iter().map(|k| k.checkpoint.size).max(),
            checkpoints: verified.iter().map(|k| k.notes).sum(),
            first_ts: self.first_ts,
            last_ts: self.last_ts,
            signed_by: signed_by.into_iter().collect(),
        })
    }

    fn next_seq(&self) -> u64 {
        self.tree.size() + 1
    }

    fn check_not_failed(&self) -> Result<(), Failure> {
        match &self.failure {
            Some(failure) => Err(failure.clone()),
            None => Ok(()),
        }
    }

    /// Keep the first failure: the verifier refuses to go on after it.
    fn record(&mut self, failure: Failure) -> Failure {
        self.failure = Some(failure.clone());
        failure
    }

    fn record_result(&mut self, result: Result<(), Failure>) -> Result<(), Failure> {
        result.map_err(|failure| self.record(failure))
    }
}

/// Check 3 proper: the tree at the checkpoint's size is the checkpoint's.
fn check_tree_head(
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
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(root)
}

fn event_failure(
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
fn note_failure(label: &str, error: CheckpointError) -> Failure {
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

fn is_lower_hex_64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests;
