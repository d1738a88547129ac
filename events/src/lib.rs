//! The audit chain: the one format every other crate writes and every auditor reads.
//!
//! Pure, no I/O (the contract is `docs/events.md`):
//! - [`catalogue`]: every event type with its typed payload, and which change state.
//! - [`envelope`]: the v1 event envelope, drafts, canonical bytes (RFC 8785) and the chain hash (§2–3).
//! - [`merkle`]: RFC 6962/9162 Merkle tree over the events: leaf and node hashing, the
//!   O(log n) streaming root ([`CompactRange`]), inclusion and consistency proofs, in memory
//!   and over a leaf stream in constant memory (§4).
//! - [`note`]: C2SP signed notes with Ed25519 keys, compatible with Go's `sumdb/note` (§4).
//! - [`checkpoint`]: the signed tree head `rack-gateway/<chain>`, size, root, `head` (§4).
//! - [`archive`]: the archive layout (`<prefix>/<chain>/segments|checkpoints|keys/…`) and the
//!   `start.json` of partial exports (§5), written by the gateway and read by `verify-chain`.
//! - [`verify`]: [`ChainVerifier`], the one-pass checks 1, 2, 3 and 5 of §7 that
//!   `verify-chain` and the gateway share, and the [`Failure`]/[`Summary`] they report.
//! - `testing` (feature `testing`): deterministic sample chains, keys and checkpoints for tests.
//!
//! Postgres:
//! - [`store`]: migrations, reads, and the group-commit [`store::Appender`] — the only writer of `events`.

pub mod archive;
pub mod catalogue;
pub mod checkpoint;
pub mod envelope;
pub mod merkle;
pub mod note;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod verify;

pub use checkpoint::{open_checkpoint, Checkpoint, CheckpointError, SignedCheckpoint};
pub use envelope::{Actor, ActorKind, Draft, EnvelopeError, Event, Source, GENESIS_PREV};
pub use merkle::{CompactRange, Hash, ProofError};
pub use note::{NoteError, OpenedNote, Signer, Verifier};
pub use verify::{ChainVerifier, Failure, Summary};
