//! Role-based access control: who may do what.
//!
//! - [`roles`]: the fixed roles and which of them a person (not a token) may hold.

pub mod roles;

pub use roles::Role;
