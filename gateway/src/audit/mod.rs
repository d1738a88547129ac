//! The gateway's side of the audit chain.
//!
//! - [`checkpoints`]: the signer that makes Merkle checkpoints (events.md §4), and the hook recording them.
//! - this module: the hooks every appender in the gateway runs, and actor helpers.

pub mod checkpoints;

use std::sync::Arc;

use events::store::{HookChain, TxHook};
use events::Actor;

/// What the appending transaction does besides inserting events: the
/// projections, the `checkpoints` row of each `checkpoint.created`, and the
/// `archive_segments` row of each `archive.shipped`.
pub fn hooks() -> Arc<dyn TxHook> {
    Arc::new(HookChain(vec![
        Arc::new(projections::Projector),
        Arc::new(checkpoints::CheckpointRecorder),
        Arc::new(crate::archive::recorder::ArchiveRecorder),
    ]))
}

/// The OS user running an operator command (actor kind `system`).
pub fn operator_actor() -> Actor {
    Actor::system(os_user())
}

pub fn os_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.trim().is_empty())
        // SAFETY: getuid has no preconditions and cannot fail.
        .unwrap_or_else(|| format!("uid:{}", unsafe { libc::getuid() }))
}
