//! Authentication: credentials and who presents them.
//!
//! - [`secrets`]: token generation (prefixed, 256 random bits), SHA-256 storage form, constant-time comparison.
//! - [`principal`]: a presented secret (Bearer or Basic) resolved to a [`Principal`], or why not.

pub mod principal;
pub mod secrets;

pub use principal::{AuthFailure, CredentialKind, Principal};
