//! TEMPORARY (until the proxypolicy merge): engine modules only.
pub mod context;
pub mod engine;
pub mod error;
pub mod forward;
pub mod pending;
pub mod ratelimit;
pub mod record;
pub mod upstream;
pub mod websocket;
