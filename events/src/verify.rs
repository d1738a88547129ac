//! The streaming chain verifier (docs/events.md §7): the checks `verify-chain` and
//! the gateway share, over one pass of the events in seq order.
//!
//! Usage: [`ChainVerifier::new`] with the trusted keys, optionally
//! [`resume_after`](ChainVerifier::resume_after) a trusted prefix, then
//! [`add_checkpoint`](ChainVerifier::add_checkpoint) for every checkpoint
//! note, then [`push_stored`](ChainVerifier::push_stored) (database rows) or
//! [`push_line`](ChainVerifier::push_line) (archive lines) for every event in
//! order, then [`finish`](ChainVerifier::finish).
//!
//! Checks (numbers as in docs/events.md §7; check 4, database versus archive, is
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
use std::sync::Arc;

use crate::checkpoint::Checkpoint;
use crate::envelope::GENESIS_PREV;
use crate::merkle::{CompactRange, Hash};
use crate::note::Verifier;

mod checkpoints;
mod prepare;
mod report;

pub use prepare::{prepare_in_parallel, prepare_line, prepare_stored, Prepared, Unprepared};

use report::{check_tree_head, event_failure};
pub use report::{
    Failure, Summary, CHECK_CHECKPOINT, CHECK_CONSISTENCY, CHECK_EVENT, CHECK_LINKS, CHECK_SOURCES,
};

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

    /// A database row: the `seq` column, the stored canonical bytes and the
    /// stored hash column.
    pub fn push_stored(
        &mut self,
        seq_column: i64,
        canonical: &[u8],
        stored_hash: &str,
    ) -> Result<(), Failure> {
        self.push_prepared(prepare_stored(seq_column, canonical.to_vec(), stored_hash))
    }

    /// An archive/export line (full envelope with hash); `label` = object key
    /// or file name, for error reports. One trailing `\n` is allowed; anything
    /// else that is not the canonical line fails check 1.
    pub fn push_line(&mut self, label: &str, line: &[u8]) -> Result<(), Failure> {
        self.push_prepared(prepare_line(&Arc::from(label), line))
    }

    /// The next event as [`prepare_stored`] or [`prepare_line`] found it.
    pub fn push_prepared(&mut self, prepared: Result<Prepared, Unprepared>) -> Result<(), Failure> {
        self.check_not_failed()?;
        let result = match prepared {
            Ok(prepared) => self.accept(&prepared),
            Err(unprepared) => Err(unprepared.into_failure(self.next_seq())),
        };
        self.record_result(result)
    }

    /// Checks 1 (chain), 2 and 3 for an event whose own bytes and hash are verified.
    fn accept(&mut self, event: &Prepared) -> Result<(), Failure> {
        let object = event.object.as_deref();
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

        self.tree.push(event.leaf);
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

#[cfg(test)]
mod tests;
