//! The gateway's integration tests: one binary (one link of the whole
//! gateway), a module per feature, and one set of helpers that every test
//! starts from ([`helpers::TestApp`]).

mod helpers;

mod archive;
mod archive_export;
mod archive_resilience;
mod browser;
mod cli_login_confirmation;
mod cli_mfa;
mod faults;
mod faults_connections;
mod faults_flood;
mod mfa;
mod mfa_webauthn_browser;
mod operator;
mod pg_restart;
mod proxy_access;
mod proxy_audit;
mod proxy_cli;
mod proxy_hardening;
mod proxy_redaction;
mod proxy_tls;
mod proxy_upload;
mod replicas;
mod server;
mod sessions;
mod sign_in;
mod users_and_tokens;
