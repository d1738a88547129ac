//! Checkpoint and trusted-prefix intake for [`ChainVerifier`]: opening
//! notes with the trusted keys, origins (check 3), agreement between notes of
//! one size (check 5), and checking a checkpoint at once when the tree of its
//! size is already known (the prefix, or the current size).

use super::report::{check_tree_head, note_failure};
use super::{ChainVerifier, Failure, KnownCheckpoint, TrustedPrefix};
use super::{CHECK_CHECKPOINT, CHECK_CONSISTENCY};
use crate::checkpoint::{open_checkpoint, Checkpoint, CheckpointError};
use crate::envelope::{is_lower_hex_64, GENESIS_PREV};
use crate::merkle::{CompactRange, Hash};
use crate::note::NoteError;

impl ChainVerifier {
    /// Resume after a trusted prefix (partial exports): the frontier at
    /// `size` and the hash of event `size`; the next event must be `size + 1`.
    /// [`finish`](Self::finish) fails (check 3) unless some added checkpoint
    /// at exactly `size` has root == frontier root and head == `head_hash`,
    /// so the prefix is vouched for by a signature, not by the caller.
    /// Checkpoints below `size` cannot be checked and are not counted.
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

    /// Add every checkpoint BEFORE pushing events (one at exactly the current
    /// size is still checked; one below it is refused). `label` names where
    /// it came from (e.g. "database", an object key) and is reported as
    /// `object` on failure. Verifies the signature with the trusted keys and
    /// the origin (check 3); two checkpoints of the same size with different
    /// roots or heads are check 5.
    pub fn add_checkpoint(&mut self, label: &str, note: &str) -> Result<(), Failure> {
        self.check_not_failed()?;
        let result = self.add_checkpoint_inner(label, note);
        self.record_result(result)
    }

    /// [`add_checkpoint`](Self::add_checkpoint) for raw bytes (a `.note`
    /// file or object): non-UTF-8 is a malformed note (check 3).
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
}
