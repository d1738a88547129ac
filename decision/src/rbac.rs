//! Role-based access control: who may do what.
//!
//! - [`roles`]: the fixed roles and which of them a person (not a token) may hold.
//! - [`permissions`]: the role → permission table, [`authorize`], and the denial message.

pub mod permissions;
pub mod roles;

pub use permissions::{authorize, cap_token_role, role_within, Denial, DenialKind};
pub use roles::Role;
