//! The decision core of the rack proxy: a pure function from a request, the
//! caller's role and the policy settings to the route, the permission, the
//! decision and the record. No I/O, no clock, no database — what is allowed
//! and what is recorded can be read, and tested, here alone.
//!
//! Used in this order for each request (the gateway's `proxy` module does the
//! I/O around it):
//!
//! - [`path`]: one strict reading of the request path; the string we match is
//!   the string we forward. Anything that could be read two ways is a 400.
//! - [`routes`]: the whole rack API as one table ([`routes::ROUTES`]): route,
//!   permission, body and reply handling, deliberate refusals; unknown routes
//!   are 404 and never forwarded. Also the request's form, read as the rack
//!   reads it (body, then query), which every later step sees.
//! - [`rbac`]: the fixed roles and the role → permission table.
//! - [`mfa`]: the MFA level (none, step-up, always) of every permission; a
//!   write without one is refused.
//!
//! **What is allowed** — [`policy::decide`]: RBAC first (a permission error
//! always wins), then the gateway's policies ([`policy::PolicySettings`]):
//! rack-level operations, destructive actions, run and exec rules.
//!
//! **What is recorded** — [`redact`]: which parameters of a request enter the
//! audit event or a log line (an allow-list; everything else `[REDACTED]`,
//! maps as their keys), and scrubbing of known secrets from any text.

pub mod mfa;
pub mod path;
pub mod policy;
pub mod rbac;
pub mod redact;
pub mod routes;

#[cfg(test)]
mod proptests;
