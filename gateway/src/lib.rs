//! rack-gateway-server: the access gateway in front of a Convox rack.
//!
//! - [`settings`]: every setting, by domain, read from the environment
//! - [`startup`]: build and run the server; start and stop in order
//! - [`router`]: the HTTP surface and middleware stack, in one place
//! - [`state`]: what handlers can reach
//! - [`health`]: `/health`, `/ready`, `/metrics`
//! - [`archive`]: shipping the chain to S3 with Object Lock; auditor export bundles
//! - [`audit`]: checkpoint signing, and the hook that records each checkpoint
//! - [`accounts`]: users and API tokens (operator commands and admin API)
//! - [`auth`]: credentials, sign-in (OpenID Connect, web and CLI), sessions, CSRF
//! - [`api`]: the gateway's JSON API (info, users, API tokens, sessions)
//! - [`web`]: the server-rendered pages (`/app`, sign-in, errors)
//! - [`proxy`]: the rack proxy (`/api/v1/rack-proxy`): the I/O around the `decision` crate
//!   (path, route table, roles, policy, redaction): authenticating, forwarding, audit
//! - [`net`]: client addresses, rack TLS trust, serving HTTPS
//! - [`commands`]: the `rack-gateway-server` subcommands

pub mod accounts;
pub mod api;
pub mod archive;
pub mod audit;
pub mod auth;
pub mod commands;
pub mod health;
pub mod mfa;
pub mod net;
pub mod proxy;
pub mod router;
pub mod settings;
pub mod startup;
pub mod state;
pub mod web;
