//! Operator and test tools of rack-gateway.
//!
//! Modules:
//! - [`mock_rack`]: an in-memory Convox v3 rack API for dev and tests (binary `mock-rack`).

pub mod mock_rack;
