//! Authentication: credentials, who presents them, and how people sign in.
//!
//! - [`secrets`]: token generation (prefixed, 256 random bits), SHA-256 storage form, constant-time comparison.
//! - [`principal`]: a presented secret (Bearer or Basic) resolved to a [`Principal`], or why not.
//! - [`caller`]: the [`caller::Caller`] extractor for API routes (header or cookie; CSRF on cookie writes).
//! - [`client`]: the client address (trusted proxies) and the event `Source` of a request.
//! - [`oidc`]: the OpenID Connect relying party (discovery, PKCE, code exchange, ID token checks).
//! - [`login`]: who may sign in, why a login fails, and the `auth.login.*` events.
//! - [`login_state`]: logins in progress (`login_states`).
//! - [`callback`]: the provider's redirect back, up to an admitted person.
//! - [`web`]: browser login and logout (`/api/v1/auth/web/*`), the `session_token` cookie.
//! - [`cli_login`]: the CLI login (`/api/v1/auth/cli/*`); [`cli_confirm`]: its confirmation page.
//! - [`sessions`]: sessions as events: create, logout, admin revoke, revoke when stale.
//! - [`csrf`]: CSRF tokens derived from the session token.
//! - [`sign_in_rate_limit`]: the per-client request rate of the public sign-in routes.
//! - [`anonymous_events`]: the per-window budget of unauthenticated events, and their aggregate.
//! - [`provisioning`]: users created at start from the `*_USERS` settings.

pub mod anonymous_events;
pub mod callback;
pub mod caller;
pub mod cli_confirm;
pub mod cli_login;
pub mod client;
pub mod csrf;
pub mod login;
pub mod login_state;
pub mod oidc;
pub mod principal;
pub mod provisioning;
pub mod secrets;
pub mod sessions;
pub mod sign_in_rate_limit;
pub mod web;

use axum::routing::{get, post};
use axum::Router;

pub use principal::{AuthFailure, CredentialKind, Principal};

use crate::settings::Settings;
use crate::state::AppState;

/// What sign-in needs at run time, built once at start.
pub struct Identity {
    /// `None` when OAuth is not configured: sign-in routes then answer 503.
    pub oidc: Option<oidc::Provider>,
    pub csrf: csrf::CsrfKey,
    pub sign_in_limiter: sign_in_rate_limit::SignInRateLimiter,
    pub anonymous_events: std::sync::Arc<anonymous_events::AnonymousEvents>,
    pub trusted_proxies: crate::net::client_addr::TrustedProxies,
}

impl Identity {
    pub fn new(settings: &Settings) -> anyhow::Result<Identity> {
        let oidc = match &settings.auth.oauth {
            Some(oauth) => Some(oidc::Provider::new(oauth)?),
            None => {
                tracing::warn!(
                    "GOOGLE_CLIENT_ID is not set: sign-in is disabled (API tokens still work)"
                );
                None
            }
        };
        Ok(Identity {
            oidc,
            csrf: csrf::CsrfKey::new(settings.server.app_secret_key.as_ref())?,
            sign_in_limiter: sign_in_rate_limit::SignInRateLimiter::new(
                settings.auth.rate_limit_per_second,
                settings.auth.rate_limit_burst,
            ),
            anonymous_events: std::sync::Arc::new(anonymous_events::AnonymousEvents::new(
                settings.auth.anonymous_event_window,
                settings.auth.anonymous_events_per_address,
                settings.auth.anonymous_events_per_window,
            )),
            trusted_proxies: crate::net::client_addr::TrustedProxies::parse(
                &settings.server.trusted_proxy_cidrs,
            )?,
        })
    }
}

/// The sign-in routes. Those reachable without credentials are rate-limited
/// per client (their handlers take [`sign_in_rate_limit::PublicAuth`]).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/web/login", get(web::login))
        .route("/api/v1/auth/web/callback", get(web::callback))
        .route(
            "/api/v1/auth/web/logout",
            get(web::logout).post(web::logout),
        )
        .route("/api/v1/auth/cli/start", post(cli_login::start))
        .route("/api/v1/auth/cli/callback", get(cli_login::callback))
        .route("/api/v1/auth/cli/complete", post(cli_login::complete))
}
