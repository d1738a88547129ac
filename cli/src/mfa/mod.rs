//! MFA in the CLI (README "MFA in the CLI", docs/mfa.md).
//!
//! - [`levels`]: the permissions of each wrapped convox command, and so its
//!   MFA level (`none`, `step_up`, `always`) from the gateway's own table.
//! - [`choice`]: which enrolled method to use (`--mfa-method`, the gateway's
//!   preferred method, `mfa_preference`, the first enrolled; CLI-compatible only).
//! - [`prompt`]: the terminal, or the absence of one (then: an error naming
//!   `--mfa-code`, never a hang).
//! - [`flow`]: step-up before an action, verification of a sign-in waiting
//!   for MFA, WebAuthn through the gateway's browser page.
//! - [`enroll`]: TOTP enrolment from the terminal (secret, otpauth URL, QR).
//!
//! API tokens are never asked for MFA: with `--api-token` or
//! `RACK_GATEWAY_API_TOKEN` none of this runs.

pub mod choice;
pub mod enroll;
pub mod flow;
pub mod levels;
pub mod prompt;

pub use flow::{Mfa, Verified};
