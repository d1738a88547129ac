//! Signing in and out (`auth.*`), sessions (`session.*`, folded into the
//! projections), and the rate limits on authentication (`rate_limit.exceeded`).
//!
//! No payload carries an OAuth state, nonce or code, an ID token, or a
//! session secret (only its SHA-256); a login is named by its `login_id`.

use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

/// `auth.login.started`: before the browser is sent to the sign-in provider.
///
/// The four device fields are what a CLI says about itself: on CLI logins
/// they are always present (`null` where not given), on web logins absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginStarted {
    pub login_id: Uuid,
    /// `web` or `cli`.
    pub channel: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub device_id: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub device_name: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub device_os: Option<Option<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub client_version: Option<Option<String>>,
}

/// A field that is there (possibly `null`) reads as `Some`; `default` makes an absent one `None`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// `auth.login.succeeded`: appended atomically with its `session.created`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginSucceeded {
    pub login_id: Uuid,
    pub channel: String,
    pub email: String,
    pub user_id: Uuid,
    pub session_id: Uuid,
    /// Whether a second factor was verified for this login.
    pub mfa_verified: bool,
}

/// `auth.login.confirmed`: the person pressed Confirm on the CLI login's
/// confirmation page, after being shown what they authorise; only then may
/// `/complete` open the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginConfirmed {
    pub login_id: Uuid,
    /// `cli`.
    pub channel: String,
    pub email: String,
    pub user_id: Uuid,
    /// The short code the CLI printed and the page showed (not a secret).
    pub user_code: String,
    /// What the CLI said about itself, as the page showed it.
    pub device_name: Option<String>,
    pub device_os: Option<String>,
    /// The address the login was started from, as the page showed it.
    pub started_from: Option<String>,
    /// RFC 3339: when the login was started, as the page showed it.
    pub started_at: String,
}

/// `auth.login.failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginFailed {
    /// `null` when the failure cannot be tied to a login (an unknown state).
    pub login_id: Option<Uuid>,
    pub channel: String,
    /// Stable: `domain_not_allowed`, `unknown_user`, `invalid_id_token`, ...
    pub reason: String,
    /// More precise than the reason where there is more to say (never a secret).
    pub detail: Option<String>,
    /// The email the provider vouched for, when it got that far.
    pub email: Option<String>,
}

/// `auth.logout`: the caller ended their own session (with its `session.revoked`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logout {
    pub session_id: Uuid,
    pub channel: String,
}

/// `session.created`: the session token's SHA-256 only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCreated {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub email: String,
    /// `web` or `cli`.
    pub channel: String,
    pub token_sha256: String,
    pub device_id: Option<String>,
    pub device_name: Option<String>,
    pub device_os: Option<String>,
    pub client_version: Option<String>,
    /// RFC 3339.
    pub expires_at: String,
}

/// `session.revoked`: the actor is who revoked it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRevoked {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub email: String,
    /// Why: `logout`, `admin`, `user_disabled`, `idle_timeout`, `expired`.
    pub reason: String,
}

/// `rate_limit.exceeded`: requests refused by one of the two limits on
/// authentication, counted rather than recorded one by one. `scope` says which.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope")]
pub enum RateLimitExceeded {
    /// One address's requests to the rack proxy refused in one window after
    /// too many failed authentications.
    #[serde(rename = "rack_proxy_authentication")]
    ProxyAuthFailures(ProxyAuthFailures),
    /// An address over the request rate of the public sign-in routes (at most once a minute per address).
    #[serde(rename = "auth")]
    SignInRate(SignInRate),
}

/// `rate_limit.exceeded` with scope `rack_proxy_authentication`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyAuthFailures {
    pub address: String,
    /// RFC 3339, whole seconds.
    pub window_start: Option<String>,
    pub window_seconds: u64,
    /// Failed authentications allowed per window.
    pub limit: u32,
    pub failures: u32,
    /// Requests refused (429) in the window.
    pub refused: u64,
}

/// `rate_limit.exceeded` with scope `auth`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInRate {
    /// The sign-in route asked for.
    pub path: String,
    pub limit_per_second: u32,
    pub burst: u32,
}

/// `auth.anonymous_events.aggregated`: the unauthenticated events of one
/// window (`auth.login.started`, `auth.login.failed`, sign-in
/// `rate_limit.exceeded`) that were counted instead of recorded one by one,
/// because their address, or all addresses together, had reached the
/// window's budget. So a flood from anywhere adds one event per window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnonymousEventsAggregated {
    /// RFC 3339, whole seconds.
    pub window_start: String,
    pub window_seconds: u64,
    /// Events recorded one by one per address (an IPv6 address: its /64) and window.
    pub per_address_limit: u32,
    /// Events recorded one by one from all addresses together per window.
    pub global_limit: u32,
    /// Events counted instead of recorded, by event type.
    pub counted: std::collections::BTreeMap<String, u64>,
    /// How many addresses had events counted.
    pub addresses: u64,
    /// The addresses with the most counted events (at most ten), most first.
    pub top_addresses: Vec<AddressCount>,
}

/// One address of [`AnonymousEventsAggregated::top_addresses`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressCount {
    pub address: String,
    pub count: u64,
}

impl RateLimitExceeded {
    /// `scope`, then the fields of either scope.
    pub(super) fn fields_of_every_scope() -> Vec<&'static str> {
        let mut fields = vec!["scope"];
        for field in super::fields::of::<ProxyAuthFailures>()
            .into_iter()
            .chain(super::fields::of::<SignInRate>())
        {
            if !fields.contains(&field) {
                fields.push(field);
            }
        }
        fields
    }
}
