//! The audit chain: the one format every other crate writes and every auditor reads.
//!
//! Pure, no I/O:
//! - [`envelope`]: the v1 event envelope, drafts, canonical bytes (RFC 8785) and the chain hash.
//!
//! The rest of the map (Merkle proofs, signed checkpoints, verification, the
//! Postgres store and its group-commit appender) lands module by module.

pub mod envelope;
pub mod merkle;
pub mod note;

pub use envelope::{Actor, ActorKind, Draft, EnvelopeError, Event, Source, GENESIS_PREV};
