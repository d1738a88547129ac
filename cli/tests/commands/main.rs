//! Integration tests of the `rack-gateway` binary against a fake gateway that
//! implements the identity contract, with a fake `convox` for the passthrough.

mod support;

mod api_tokens;
mod login;
mod mfa;
mod passthrough;
mod racks;
mod session;
