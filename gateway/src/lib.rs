//! rack-gateway-server: the access gateway in front of a Convox rack.
//!
//! - [`settings`]: every setting, by domain, read from the environment
//! - [`startup`]: build and run the server; start and stop in order
//! - [`routes`]: the HTTP surface and middleware stack, in one place
//! - [`state`]: what handlers can reach
//! - [`health`]: `/health`, `/ready`, `/metrics`
//! - [`audit`]: checkpoint signing and the hooks of the appending transaction
//! - [`accounts`]: users and API tokens (operator commands and admin API)
//! - [`auth`]: credentials, sign-in (OpenID Connect, web and CLI), sessions, CSRF
//! - [`api`]: the gateway's JSON API (info, users, API tokens, sessions)
//! - [`web`]: the server-rendered pages (`/app`, sign-in, errors)
//! - [`rbac`]: roles and permissions
//! - [`commands`]: the `rack-gateway-server` subcommands

pub mod accounts;
pub mod api;
pub mod audit;
pub mod auth;
pub mod commands;
pub mod health;
pub mod rbac;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod state;
pub mod web;
