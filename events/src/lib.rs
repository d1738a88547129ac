//! The audit chain: the one format every other crate writes and every auditor reads.
//!
//! Pure, no I/O:
//! - [`envelope`]: the v1 event envelope, drafts, canonical bytes (RFC 8785) and the chain hash.
//!
//! Postgres:
//! - [`store`]: migrations, reads, and the group-commit [`store::Appender`] — the only writer of `events`.

pub mod envelope;
pub mod store;

pub use envelope::{Actor, ActorKind, Draft, EnvelopeError, Event, Source, GENESIS_PREV};
