//! The gateway's side of the audit chain.
//!
//! - [`checkpoints`]: the signer that makes Merkle checkpoints (`docs/events.md` §4), and the hook recording them.
//! - this module: actor helpers for operator commands.

pub mod checkpoints;

use events::Actor;

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
