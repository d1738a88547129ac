//! The rack proxy (`ANY /api/v1/rack-proxy/*path`): every Convox API call a
//! user makes goes through here, is decided, recorded, then forwarded with the
//! real rack token.
//!
//! The pure decision core — no I/O, no database — is in four modules, used in
//! this order for each request:
//!
//! - [`path`]: one strict reading of the request path; the string we match is
//!   the string we forward.
//! - [`routes`]: the whole rack API as one table ([`routes::ROUTES`]): route,
//!   permission, body and reply handling, deliberate refusals; unknown routes
//!   are 404 and never forwarded.
//! - [`policy`]: RBAC first (a permission error always wins), then the
//!   gateway's policies: rack-level operations, destructive actions, run and
//!   exec rules.
//! - [`redact`]: what of a request may be recorded or logged, and scrubbing of
//!   known secrets from any text.

pub mod path;
pub mod policy;
pub mod redact;
pub mod routes;

// The engine: phases of a request, forwarding, websockets, audit records.
pub mod context;
pub mod engine;
pub mod error;
pub mod forward;
pub mod handler;
pub mod pending;
pub mod ratelimit;
pub mod record;
pub mod upstream;
pub mod websocket;
