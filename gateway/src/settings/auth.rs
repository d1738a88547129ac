//! Signing in and staying signed in: session lifetimes, the OpenID Connect
//! client, the sign-in rate limit, cookies, and the people provisioned at
//! start.

use std::time::Duration;

use decision::rbac::Role;
use secrecy::SecretString;

use super::{bad, Reader, ServerSettings, SettingsError, View};

#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Web sessions end after this long without use (`SESSION_TIMEOUT_MINUTES`, default 5).
    pub web_session_idle_timeout: Duration,
    /// CLI sessions last this long, absolutely (90 days).
    pub cli_session_lifetime: Duration,
    /// Web sessions end this long after sign-in however busy (`WEB_SESSION_LIFETIME_HOURS`, default 12).
    pub web_session_lifetime: Duration,
    /// OpenID Connect sign-in; `None` when `GOOGLE_CLIENT_ID` is unset (sign-in then answers 503).
    pub oauth: Option<OAuthSettings>,
    /// People provisioned at start from `ADMIN_USERS`, `DEPLOYER_USERS`, `OPERATIONS_USERS`,
    /// `VIEWER_USERS` (first list wins for an email listed twice).
    pub seed_users: Vec<SeedUser>,
    /// How long a login may take from start to `/complete` (`LOGIN_STATE_TTL_SECONDS`, default 600).
    pub login_state_ttl: Duration,
    /// Public sign-in routes: requests per second per client address (`AUTH_RATE_LIMIT_PER_SECOND`, default 10)...
    pub rate_limit_per_second: u32,
    /// ...and the burst allowed above it (`AUTH_RATE_LIMIT_BURST`, default 20).
    pub rate_limit_burst: u32,
    /// `Secure` on cookies: `COOKIE_SECURE`, else true unless `PUBLIC_URL` is plain http.
    pub cookie_secure: bool,
    /// Unauthenticated events (`auth.login.started`, `auth.login.failed`, sign-in
    /// `rate_limit.exceeded`) are budgeted per window (`ANONYMOUS_EVENT_WINDOW_SECONDS`, 60)...
    pub anonymous_event_window: Duration,
    /// ...recorded one by one up to this many per address (`ANONYMOUS_EVENTS_PER_ADDRESS`, 20)...
    pub anonymous_events_per_address: u32,
    /// ...and this many from all addresses (`ANONYMOUS_EVENTS_PER_WINDOW`, 300); the rest are
    /// counted into one `auth.anonymous_events.aggregated` per window.
    pub anonymous_events_per_window: u32,
}

/// The OpenID Connect client (Google Workspace, or the mock provider in dev).
#[derive(Debug, Clone)]
pub struct OAuthSettings {
    /// `OAUTH_ISSUER_URL` (alias `GOOGLE_OAUTH_BASE_URL`), no trailing slash.
    pub issuer_url: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// `GOOGLE_ALLOWED_DOMAIN`: comma-separated, lower-cased; never empty.
    pub allowed_domains: Vec<String>,
}

/// A person the settings say must exist, with the role they get when created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedUser {
    pub email: String,
    pub role: Role,
}

/// The provisioning lists, in the order that decides an email listed twice.
const SEED_LISTS: [(&str, Role); 4] = [
    ("ADMIN_USERS", Role::Admin),
    ("DEPLOYER_USERS", Role::Deployer),
    ("OPERATIONS_USERS", Role::Ops),
    ("VIEWER_USERS", Role::Viewer),
];

pub(super) fn read(r: &Reader, server: &ServerSettings) -> Result<AuthSettings, SettingsError> {
    let idle_minutes: u64 = r.parse(
        r.alias(
            "SESSION_TIMEOUT_MINUTES",
            &["RGW_SETTING_SESSION_TIMEOUT_MINUTES"],
        ),
        5,
    )?;
    if idle_minutes == 0 {
        return Err(bad("SESSION_TIMEOUT_MINUTES", "must be positive"));
    }
    let web_lifetime_hours: u64 = r.parse("WEB_SESSION_LIFETIME_HOURS", 12)?;
    if web_lifetime_hours == 0 {
        return Err(bad("WEB_SESSION_LIFETIME_HOURS", "must be positive"));
    }
    let login_state_seconds: u64 = r.parse("LOGIN_STATE_TTL_SECONDS", 600)?;
    if login_state_seconds == 0 {
        return Err(bad("LOGIN_STATE_TTL_SECONDS", "must be positive"));
    }
    let rate_limit_per_second: u32 = r.parse("AUTH_RATE_LIMIT_PER_SECOND", 10)?;
    let rate_limit_burst: u32 = r.parse("AUTH_RATE_LIMIT_BURST", 20)?;
    if rate_limit_per_second == 0 || rate_limit_burst == 0 {
        return Err(bad(
            "AUTH_RATE_LIMIT_PER_SECOND",
            "AUTH_RATE_LIMIT_PER_SECOND and AUTH_RATE_LIMIT_BURST must be positive",
        ));
    }
    let anonymous_window: u64 = r.parse("ANONYMOUS_EVENT_WINDOW_SECONDS", 60)?;
    if anonymous_window == 0 {
        return Err(bad("ANONYMOUS_EVENT_WINDOW_SECONDS", "must be positive"));
    }
    let cookie_secure = r.bool(
        "COOKIE_SECURE",
        !server
            .public_url
            .to_ascii_lowercase()
            .starts_with("http://"),
    )?;
    Ok(AuthSettings {
        web_session_idle_timeout: Duration::from_secs(idle_minutes * 60),
        cli_session_lifetime: Duration::from_secs(90 * 24 * 3600),
        web_session_lifetime: Duration::from_secs(web_lifetime_hours * 3600),
        oauth: oauth(r, server)?,
        seed_users: seed_users(r)?,
        login_state_ttl: Duration::from_secs(login_state_seconds),
        rate_limit_per_second,
        rate_limit_burst,
        cookie_secure,
        anonymous_event_window: Duration::from_secs(anonymous_window),
        anonymous_events_per_address: r.parse("ANONYMOUS_EVENTS_PER_ADDRESS", 20)?,
        anonymous_events_per_window: r.parse("ANONYMOUS_EVENTS_PER_WINDOW", 300)?,
    })
}

fn seed_users(r: &Reader) -> Result<Vec<SeedUser>, SettingsError> {
    let mut users: Vec<SeedUser> = Vec::new();
    for (name, role) in SEED_LISTS {
        for email in r.list(name) {
            let email =
                crate::accounts::valid_email(&email).map_err(|e| bad(name, e.to_string()))?;
            if !users.iter().any(|u| u.email == email) {
                users.push(SeedUser { email, role });
            }
        }
    }
    Ok(users)
}

fn oauth(r: &Reader, server: &ServerSettings) -> Result<Option<OAuthSettings>, SettingsError> {
    let Some(client_id) = r.get("GOOGLE_CLIENT_ID") else {
        return Ok(None);
    };
    let client_secret = r.secret("GOOGLE_CLIENT_SECRET").ok_or_else(|| {
        bad(
            "GOOGLE_CLIENT_SECRET",
            "required when GOOGLE_CLIENT_ID is set",
        )
    })?;
    let allowed_domains: Vec<String> = r
        .list("GOOGLE_ALLOWED_DOMAIN")
        .into_iter()
        .map(|d| d.trim_start_matches('@').to_ascii_lowercase())
        .collect();
    if allowed_domains.is_empty() {
        return Err(bad(
            "GOOGLE_ALLOWED_DOMAIN",
            "required when GOOGLE_CLIENT_ID is set (comma-separated email domains that may sign in)",
        ));
    }
    let issuer_url = r
        .get(r.alias("OAUTH_ISSUER_URL", &["GOOGLE_OAUTH_BASE_URL"]))
        .unwrap_or_else(|| "https://accounts.google.com".to_owned())
        .trim_end_matches('/')
        .to_owned();
    match url::Url::parse(&issuer_url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
        _ => {
            return Err(bad(
                "OAUTH_ISSUER_URL",
                format!("{issuer_url:?} is not an http(s) URL"),
            ))
        }
    }
    if server.app_secret_key.is_none() && !server.dev_mode {
        return Err(bad(
            "APP_SECRET_KEY",
            "required for browser sign-in (it keys the CSRF tokens); set DEV_MODE=true to use a per-process key",
        ));
    }
    Ok(Some(OAuthSettings {
        issuer_url,
        client_id,
        client_secret,
        allowed_domains,
    }))
}

pub(super) fn describe(s: &AuthSettings, view: &mut View) {
    view.show(
        "SESSION_TIMEOUT_MINUTES",
        s.web_session_idle_timeout.as_secs() / 60,
    );
    view.show(
        "WEB_SESSION_LIFETIME_HOURS",
        s.web_session_lifetime.as_secs() / 3600,
    );
    view.show("LOGIN_STATE_TTL_SECONDS", s.login_state_ttl.as_secs());
    view.show("AUTH_RATE_LIMIT_PER_SECOND", s.rate_limit_per_second);
    view.show("AUTH_RATE_LIMIT_BURST", s.rate_limit_burst);
    view.show(
        "ANONYMOUS_EVENT_WINDOW_SECONDS",
        s.anonymous_event_window.as_secs(),
    );
    view.show(
        "ANONYMOUS_EVENTS_PER_ADDRESS",
        s.anonymous_events_per_address,
    );
    view.show("ANONYMOUS_EVENTS_PER_WINDOW", s.anonymous_events_per_window);
    view.show("COOKIE_SECURE", s.cookie_secure);
    let oauth = s.oauth.as_ref();
    view.show("OAUTH_ISSUER_URL", oauth.map(|o| &o.issuer_url));
    view.show("GOOGLE_CLIENT_ID", oauth.map(|o| &o.client_id));
    view.secret(
        "GOOGLE_CLIENT_SECRET_SET",
        "GOOGLE_CLIENT_SECRET",
        oauth.is_some(),
    );
    view.show("GOOGLE_ALLOWED_DOMAIN", oauth.map(|o| &o.allowed_domains));
    for (name, role) in SEED_LISTS {
        let emails: Vec<&str> = s
            .seed_users
            .iter()
            .filter(|u| u.role == role)
            .map(|u| u.email.as_str())
            .collect();
        view.show(name, emails);
    }
}
