//! Tools around the gateway for dev, tests and benchmarks (the auditors'
//! verifier is the `verify-chain` crate).
//!
//! - [`mock_rack`]: an in-memory Convox v3 rack API for dev and tests (binary `mock-rack`).
//! - [`mock_oauth`]: a small, real OpenID Connect provider that stands in for Google
//!   Workspace sign-in (binary `mock-oauth`).
//! - [`mock_yubico`]: a Yubico OTP validation server (protocol 2.0) that knows its keys'
//!   secrets, refuses replays and signs its answers, and mints OTPs for tests (binary `mock-yubico`).

pub mod mock_oauth;
pub mod mock_rack;
pub mod mock_yubico;
