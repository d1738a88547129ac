//! What every gateway integration test starts from: [`TestApp`], the real
//! gateway on 127.0.0.1 port 0 with a fresh database ([`spawn_app`], or
//! [`TestApp::build`] for more), with a method per endpoint the tests call
//! ([`TestApp::as_`], [`TestApp::proxy`], [`TestApp::signed_in`]), and the
//! world around it: the mock rack, the S3 peer, the binary as a subprocess.

mod app;
mod http;
mod process;
mod proxy;
pub mod s3;
mod sign_in;

pub use app::{append_test_events, new_key, spawn_app, TestApp, APP_SECRET_KEY};
/// The roles, in the one order every test lists them:
/// viewer, ops, deployer, cicd, admin, auditor ([`Role::ALL`]).
pub use decision::rbac::Role;
pub use http::{error_reason, location, raw, set_cookie, Answer};
pub use process::{memory_kib, server_command, stderr, stdout, ServerProcess};
pub use proxy::{basic, request_id, requester, Rack, PREFIX, RACK_TOKEN, UPGRADE};
pub use sign_in::{new_cli_secret, person, PEOPLE};
