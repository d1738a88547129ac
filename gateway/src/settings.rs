//! Settings: read once from the environment (and an optional `.env` file), by
//! domain. Names are a contract (interfaces.md "Settings"); secrets are
//! [`SecretString`] so they cannot reach a `Debug` log, and the settings
//! fingerprint recorded in `gateway.started` covers everything but them.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use decision::policy::{PolicySettings, DEFAULT_ADMIN_ONLY_COMMANDS, DEFAULT_RUN_BLOCKED_SERVICES};
use secrecy::SecretString;

#[derive(Debug, thiserror::Error)]
#[error("setting {name}: {message}")]
pub struct SettingsError {
    pub name: String,
    pub message: String,
}

fn bad(name: &str, message: impl Into<String>) -> SettingsError {
    SettingsError {
        name: name.to_owned(),
        message: message.into(),
    }
}

/// The raw variables settings are parsed from: the process environment over a `.env` file.
#[derive(Debug, Clone, Default)]
pub struct Env(HashMap<String, String>);

impl Env {
    /// Process environment, with `.env` (or `RGW_ENV_FILE`) values underneath it.
    pub fn load() -> Env {
        let mut vars = HashMap::new();
        let file = std::env::var("RGW_ENV_FILE").unwrap_or_else(|_| ".env".into());
        if let Ok(iter) = dotenvy::from_path_iter(&file) {
            for (key, value) in iter.flatten() {
                vars.insert(key, value);
            }
        }
        vars.extend(std::env::vars());
        Env(vars)
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Env {
        Env(pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect())
    }

    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.0.insert(key.to_owned(), value.into());
    }

    /// A variable, trimmed; empty counts as unset.
    pub fn get(&self, name: &str) -> Option<String> {
        self.0
            .get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub fn string(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_owned())
    }

    pub fn secret(&self, name: &str) -> Option<SecretString> {
        self.get(name).map(SecretString::from)
    }

    pub fn parse<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, SettingsError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(text) => text
                .parse()
                .map_err(|e| bad(name, format!("{text:?} is not valid: {e}"))),
        }
    }

    pub fn bool(&self, name: &str, default: bool) -> Result<bool, SettingsError> {
        match self.get(name).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => Ok(true),
            Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off") => Ok(false),
            Some(v) => Err(bad(name, format!("{v:?} is not a boolean"))),
        }
    }

    /// A comma-separated list, trimmed, empty items dropped.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn list_or(&self, name: &str, default: &[&str]) -> Vec<String> {
        if self.0.contains_key(name) {
            self.list(name)
        } else {
            default.iter().map(|s| (*s).to_owned()).collect()
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub server: ServerSettings,
    pub audit: AuditSettings,
    pub rack: RackSettings,
    pub auth: AuthSettings,
    pub archive: ArchiveSettings,
    pub proxy: ProxySettings,
    pub policy: PolicySettings,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub port: u16,
    /// Bind address; loopback in tests, all interfaces by default.
    pub bind: String,
    pub public_url: String,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    pub app_secret_key: Option<SecretString>,
    pub dev_mode: bool,
    pub trusted_proxy_cidrs: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct AuditSettings {
    pub database_url: SecretString,
    pub append_timeout: Duration,
    pub checkpoint_signing_key_file: Option<PathBuf>,
    pub checkpoint_every_events: u64,
    pub checkpoint_every_seconds: u64,
}

/// Object Lock retention mode of archived objects (`AUDIT_LOCK_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    Compliance,
    Governance,
}

impl LockMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Compliance => "COMPLIANCE",
            LockMode::Governance => "GOVERNANCE",
        }
    }
}

impl std::str::FromStr for LockMode {
    type Err = String;
    fn from_str(text: &str) -> Result<LockMode, String> {
        match text.to_ascii_uppercase().as_str() {
            "COMPLIANCE" => Ok(LockMode::Compliance),
            "GOVERNANCE" => Ok(LockMode::Governance),
            _ => Err("must be COMPLIANCE or GOVERNANCE".into()),
        }
    }
}

/// How uploads carry a checksum the server verifies (`AUDIT_S3_CHECKSUM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumMode {
    /// `x-amz-checksum-sha256` and `Content-MD5` (AWS S3 verifies both).
    Sha256,
    /// `Content-MD5` only, for S3-compatible stores without the newer checksum headers.
    Md5,
}

/// Shipping the chain to S3 with Object Lock (events.md §5). Off unless
/// `AUDIT_S3_BUCKET` is set. Credentials are not settings: the AWS SDK reads
/// them the way the AWS tools do (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/
/// `AWS_SESSION_TOKEN`, then `AWS_PROFILE` and the shared files, web
/// identity, the container and instance metadata endpoints).
#[derive(Debug, Clone)]
pub struct ArchiveSettings {
    pub bucket: Option<String>,
    /// Key prefix without slashes at either end (`AUDIT_S3_PREFIX`, default `rack-gateway`).
    pub prefix: String,
    pub endpoint_url: Option<String>,
    /// `AUDIT_S3_REGION`, else `AWS_REGION`/`AWS_DEFAULT_REGION`, else the profile's, else us-east-1.
    pub region: Option<String>,
    /// Path-style addressing (`AUDIT_S3_FORCE_PATH_STYLE`; default: on when an endpoint URL is set).
    pub force_path_style: bool,
    pub checksum: ChecksumMode,
    /// Send `If-None-Match: *` on every upload so S3 itself refuses to
    /// replace a key (`AUDIT_S3_CONDITIONAL_WRITES`, default on).
    pub conditional_writes: bool,
    pub retention_days: u32,
    pub lock_mode: LockMode,
    /// A segment closes once this many events wait (`AUDIT_SEGMENT_MAX_EVENTS`, default 1000).
    pub segment_max_events: u64,
    /// ... or once the oldest waiting event is this old (`AUDIT_SEGMENT_MAX_AGE_MS`, default 5000).
    pub segment_max_age: Duration,
    /// Static credentials from the settings file or environment, when given there.
    pub access_key_id: Option<SecretString>,
    pub secret_access_key: Option<SecretString>,
    pub session_token: Option<SecretString>,
}

impl ArchiveSettings {
    fn from_env(env: &Env) -> Result<ArchiveSettings, SettingsError> {
        let endpoint_url = env.get("AUDIT_S3_ENDPOINT_URL");
        let retention_days: u32 = env.parse("AUDIT_RETENTION_DAYS", 2555)?;
        if retention_days == 0 {
            return Err(bad("AUDIT_RETENTION_DAYS", "must be at least 1"));
        }
        let checksum = match env
            .string("AUDIT_S3_CHECKSUM", "sha256")
            .to_ascii_lowercase()
            .as_str()
        {
            "sha256" => ChecksumMode::Sha256,
            "md5" => ChecksumMode::Md5,
            other => {
                return Err(bad(
                    "AUDIT_S3_CHECKSUM",
                    format!("{other:?} is not valid: sha256 or md5"),
                ))
            }
        };
        let segment_max_events: u64 = env.parse("AUDIT_SEGMENT_MAX_EVENTS", 1000)?;
        let segment_max_age_ms: u64 = env.parse("AUDIT_SEGMENT_MAX_AGE_MS", 5000)?;
        if segment_max_events == 0 || segment_max_age_ms == 0 {
            return Err(bad(
                "AUDIT_SEGMENT_MAX_EVENTS",
                "segment limits must be positive",
            ));
        }
        let access_key_id = env.secret("AWS_ACCESS_KEY_ID");
        let secret_access_key = env.secret("AWS_SECRET_ACCESS_KEY");
        if access_key_id.is_some() != secret_access_key.is_some() {
            return Err(bad(
                "AWS_ACCESS_KEY_ID",
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together",
            ));
        }
        let bucket = env.get("AUDIT_S3_BUCKET");
        if let Some(name) = &bucket {
            if name.contains('/') || name.len() < 3 || name.len() > 63 {
                return Err(bad(
                    "AUDIT_S3_BUCKET",
                    "a bucket name (3-63 characters, no slash; the key prefix is AUDIT_S3_PREFIX)",
                ));
            }
        }
        Ok(ArchiveSettings {
            bucket,
            prefix: env
                .string("AUDIT_S3_PREFIX", "rack-gateway")
                .trim_matches('/')
                .to_owned(),
            force_path_style: env.bool("AUDIT_S3_FORCE_PATH_STYLE", endpoint_url.is_some())?,
            endpoint_url,
            region: env
                .get("AUDIT_S3_REGION")
                .or_else(|| env.get("AWS_REGION"))
                .or_else(|| env.get("AWS_DEFAULT_REGION")),
            checksum,
            conditional_writes: env.bool("AUDIT_S3_CONDITIONAL_WRITES", true)?,
            retention_days,
            lock_mode: env.parse("AUDIT_LOCK_MODE", LockMode::Compliance)?,
            segment_max_events,
            segment_max_age: Duration::from_millis(segment_max_age_ms),
            access_key_id,
            secret_access_key,
            session_token: env.secret("AWS_SESSION_TOKEN"),
        })
    }

    pub fn enabled(&self) -> bool {
        self.bucket.is_some()
    }
}

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
    pub role: decision::rbac::Role,
}

/// The rack proxy's own limits (`/api/v1/rack-proxy`).
#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// Failed authentications one client address may make per window before
    /// every request from it gets 429 until the window ends (`PROXY_AUTH_FAILURE_LIMIT`, 10).
    pub auth_failure_limit: u32,
    /// The rate-limit window (`PROXY_AUTH_FAILURE_WINDOW_SECONDS`, 60); one
    /// aggregated `rate_limit.exceeded` event per address and window.
    pub auth_failure_window: Duration,
    /// Largest form body the proxy reads to decide on it (`PROXY_MAX_FORM_BYTES`, 1 MiB); larger → 413.
    pub max_form_bytes: usize,
    /// Connecting to the rack gives up after this long (`RACK_CONNECT_TIMEOUT_MS`, 10000) → 502.
    pub rack_connect_timeout: Duration,
    /// Write the per-request JSON line on stdout (`REQUEST_LOG`: `stdout`, the default, or `off`).
    pub request_log: bool,
}

#[derive(Debug, Clone)]
pub struct RackSettings {
    pub name: String,
    pub host: Option<String>,
    pub token: Option<SecretString>,
    pub username: String,
    pub tls_ca_file: Option<PathBuf>,
    pub tls_fingerprint: Option<String>,
}

/// The policy settings ([`PolicySettings`], the `decision` crate's) from the environment.
fn policy_from_env(env: &Env) -> Result<PolicySettings, SettingsError> {
    let allow_destructive_actions = match env.get("ALLOW_DESTRUCTIVE_ACTIONS") {
        Some(_) => env.bool("ALLOW_DESTRUCTIVE_ACTIONS", false)?,
        None => env.bool("RGW_SETTING_ALLOW_DESTRUCTIVE_ACTIONS", false)?,
    };
    Ok(PolicySettings {
        allow_destructive_actions,
        rack_update_for_admin: env.bool("ALLOW_RACK_UPDATE", false)?,
        run_blocked_services: env.list_or("RUN_BLOCKED_SERVICES", DEFAULT_RUN_BLOCKED_SERVICES),
        admin_only_commands: env.list_or("ADMIN_ONLY_COMMANDS", DEFAULT_ADMIN_ONLY_COMMANDS),
    })
}

impl Settings {
    pub fn from_env(env: &Env) -> Result<Settings, SettingsError> {
        let dev_mode = env.bool("DEV_MODE", false)?;
        let port: u16 = env.parse("PORT", 8447)?;
        let server = ServerSettings {
            port,
            bind: env.string("BIND_ADDRESS", "0.0.0.0"),
            public_url: env
                .string("PUBLIC_URL", &format!("http://localhost:{port}"))
                .trim_end_matches('/')
                .to_owned(),
            tls_cert_file: env.get("TLS_CERT_FILE").map(PathBuf::from),
            tls_key_file: env.get("TLS_KEY_FILE").map(PathBuf::from),
            app_secret_key: env.secret("APP_SECRET_KEY"),
            dev_mode,
            trusted_proxy_cidrs: env.list("TRUSTED_PROXY_CIDRS"),
        };
        if server.tls_cert_file.is_some() != server.tls_key_file.is_some() {
            return Err(bad(
                "TLS_CERT_FILE",
                "TLS_CERT_FILE and TLS_KEY_FILE must be set together",
            ));
        }
        let database_url = env
            .get("DATABASE_URL")
            .or_else(|| env.get("RGW_DATABASE_URL"))
            .ok_or_else(|| bad("DATABASE_URL", "required (a postgres:// URL)"))?;
        let audit = AuditSettings {
            database_url: SecretString::from(database_url),
            append_timeout: Duration::from_millis(env.parse("AUDIT_APPEND_TIMEOUT_MS", 2000u64)?),
            checkpoint_signing_key_file: env.get("CHECKPOINT_SIGNING_KEY_FILE").map(PathBuf::from),
            checkpoint_every_events: env.parse("CHECKPOINT_EVERY_EVENTS", 1000u64)?,
            checkpoint_every_seconds: env.parse("CHECKPOINT_EVERY_SECONDS", 60u64)?,
        };
        if audit.append_timeout.is_zero() {
            return Err(bad("AUDIT_APPEND_TIMEOUT_MS", "must be positive"));
        }
        if audit.checkpoint_every_events == 0 || audit.checkpoint_every_seconds == 0 {
            return Err(bad(
                "CHECKPOINT_EVERY_EVENTS",
                "checkpoint intervals must be positive",
            ));
        }
        let rack = RackSettings {
            name: env.string("RACK_NAME", &env.string("RACK", "default")),
            host: env
                .get("RACK_HOST")
                .map(|h| h.trim_end_matches('/').to_owned()),
            token: env.secret("RACK_TOKEN"),
            username: env.string("RACK_USERNAME", "convox"),
            tls_ca_file: env.get("RACK_TLS_CA_FILE").map(PathBuf::from),
            tls_fingerprint: env.get("RACK_TLS_FINGERPRINT"),
        };
        let idle_minutes: u64 = match env.get("SESSION_TIMEOUT_MINUTES") {
            Some(_) => env.parse("SESSION_TIMEOUT_MINUTES", 5)?,
            None => env.parse("RGW_SETTING_SESSION_TIMEOUT_MINUTES", 5)?,
        };
        if idle_minutes == 0 {
            return Err(bad("SESSION_TIMEOUT_MINUTES", "must be positive"));
        }
        let web_lifetime_hours: u64 = env.parse("WEB_SESSION_LIFETIME_HOURS", 12)?;
        if web_lifetime_hours == 0 {
            return Err(bad("WEB_SESSION_LIFETIME_HOURS", "must be positive"));
        }
        let login_state_seconds: u64 = env.parse("LOGIN_STATE_TTL_SECONDS", 600)?;
        if login_state_seconds == 0 {
            return Err(bad("LOGIN_STATE_TTL_SECONDS", "must be positive"));
        }
        let rate_limit_per_second: u32 = env.parse("AUTH_RATE_LIMIT_PER_SECOND", 10)?;
        let rate_limit_burst: u32 = env.parse("AUTH_RATE_LIMIT_BURST", 20)?;
        if rate_limit_per_second == 0 || rate_limit_burst == 0 {
            return Err(bad(
                "AUTH_RATE_LIMIT_PER_SECOND",
                "AUTH_RATE_LIMIT_PER_SECOND and AUTH_RATE_LIMIT_BURST must be positive",
            ));
        }
        let cookie_secure = env.bool(
            "COOKIE_SECURE",
            !server
                .public_url
                .to_ascii_lowercase()
                .starts_with("http://"),
        )?;
        let auth = AuthSettings {
            web_session_idle_timeout: Duration::from_secs(idle_minutes * 60),
            cli_session_lifetime: Duration::from_secs(90 * 24 * 3600),
            web_session_lifetime: Duration::from_secs(web_lifetime_hours * 3600),
            oauth: oauth_settings(env, &server)?,
            seed_users: seed_users(env)?,
            login_state_ttl: Duration::from_secs(login_state_seconds),
            rate_limit_per_second,
            rate_limit_burst,
            cookie_secure,
        };
        let archive = ArchiveSettings::from_env(env)?;
        let proxy = ProxySettings {
            auth_failure_limit: env.parse("PROXY_AUTH_FAILURE_LIMIT", 10u32)?,
            auth_failure_window: Duration::from_secs(
                env.parse("PROXY_AUTH_FAILURE_WINDOW_SECONDS", 60u64)?,
            ),
            max_form_bytes: env.parse("PROXY_MAX_FORM_BYTES", 1usize << 20)?,
            rack_connect_timeout: Duration::from_millis(
                env.parse("RACK_CONNECT_TIMEOUT_MS", 10_000u64)?,
            ),
            request_log: match env
                .string("REQUEST_LOG", "stdout")
                .to_ascii_lowercase()
                .as_str()
            {
                "stdout" => true,
                "off" => false,
                other => {
                    return Err(bad(
                        "REQUEST_LOG",
                        format!("{other:?} is not one of: stdout, off"),
                    ))
                }
            },
        };
        if proxy.auth_failure_window.is_zero() {
            return Err(bad("PROXY_AUTH_FAILURE_WINDOW_SECONDS", "must be positive"));
        }
        if proxy.rack_connect_timeout.is_zero() {
            return Err(bad("RACK_CONNECT_TIMEOUT_MS", "must be positive"));
        }
        let policy = policy_from_env(env)?;
        Ok(Settings {
            server,
            audit,
            rack,
            auth,
            archive,
            proxy,
            policy,
        })
    }

    /// Where the provider sends the browser back to, per login channel (`web` or `cli`).
    pub fn oauth_redirect_uri(&self, channel: &str) -> String {
        format!("{}/api/v1/auth/{channel}/callback", self.server.public_url)
    }

    /// What `gateway.started` records: every setting that shapes behaviour,
    /// never a secret (only whether each secret is set).
    pub fn public_view(&self) -> BTreeMap<&'static str, serde_json::Value> {
        use serde_json::json;
        let mut view = BTreeMap::new();
        view.insert("PORT", json!(self.server.port));
        view.insert("PUBLIC_URL", json!(self.server.public_url));
        view.insert("TLS", json!(self.server.tls_cert_file.is_some()));
        view.insert("DEV_MODE", json!(self.server.dev_mode));
        view.insert(
            "APP_SECRET_KEY_SET",
            json!(self.server.app_secret_key.is_some()),
        );
        view.insert(
            "TRUSTED_PROXY_CIDRS",
            json!(self.server.trusted_proxy_cidrs),
        );
        view.insert(
            "AUDIT_APPEND_TIMEOUT_MS",
            json!(self.audit.append_timeout.as_millis() as u64),
        );
        view.insert(
            "CHECKPOINT_EVERY_EVENTS",
            json!(self.audit.checkpoint_every_events),
        );
        view.insert(
            "CHECKPOINT_EVERY_SECONDS",
            json!(self.audit.checkpoint_every_seconds),
        );
        view.insert(
            "SESSION_TIMEOUT_MINUTES",
            json!(self.auth.web_session_idle_timeout.as_secs() / 60),
        );
        view.insert(
            "WEB_SESSION_LIFETIME_HOURS",
            json!(self.auth.web_session_lifetime.as_secs() / 3600),
        );
        view.insert(
            "LOGIN_STATE_TTL_SECONDS",
            json!(self.auth.login_state_ttl.as_secs()),
        );
        view.insert(
            "AUTH_RATE_LIMIT_PER_SECOND",
            json!(self.auth.rate_limit_per_second),
        );
        view.insert("AUTH_RATE_LIMIT_BURST", json!(self.auth.rate_limit_burst));
        view.insert("COOKIE_SECURE", json!(self.auth.cookie_secure));
        let oauth = self.auth.oauth.as_ref();
        view.insert("OAUTH_ISSUER_URL", json!(oauth.map(|o| &o.issuer_url)));
        view.insert("GOOGLE_CLIENT_ID", json!(oauth.map(|o| &o.client_id)));
        view.insert("GOOGLE_CLIENT_SECRET_SET", json!(oauth.is_some()));
        view.insert(
            "GOOGLE_ALLOWED_DOMAIN",
            json!(oauth.map(|o| &o.allowed_domains)),
        );
        for (name, role) in SEED_LISTS {
            let emails: Vec<&str> = self
                .auth
                .seed_users
                .iter()
                .filter(|u| u.role == role)
                .map(|u| u.email.as_str())
                .collect();
            view.insert(name, json!(emails));
        }
        view.insert("RACK_NAME", json!(self.rack.name));
        view.insert("RACK_HOST", json!(self.rack.host));
        view.insert("RACK_TOKEN_SET", json!(self.rack.token.is_some()));
        view.insert("RACK_USERNAME", json!(self.rack.username));
        view.insert("RACK_TLS_CA_FILE", json!(self.rack.tls_ca_file));
        view.insert("RACK_TLS_FINGERPRINT", json!(self.rack.tls_fingerprint));
        let archive = &self.archive;
        view.insert("AUDIT_S3_BUCKET", json!(archive.bucket));
        view.insert("AUDIT_S3_PREFIX", json!(archive.prefix));
        view.insert("AUDIT_S3_ENDPOINT_URL", json!(archive.endpoint_url));
        view.insert("AUDIT_S3_REGION", json!(archive.region));
        view.insert("AUDIT_S3_FORCE_PATH_STYLE", json!(archive.force_path_style));
        view.insert(
            "AUDIT_S3_CHECKSUM",
            json!(match archive.checksum {
                ChecksumMode::Sha256 => "sha256",
                ChecksumMode::Md5 => "md5",
            }),
        );
        view.insert(
            "AUDIT_S3_CONDITIONAL_WRITES",
            json!(archive.conditional_writes),
        );
        view.insert("AUDIT_RETENTION_DAYS", json!(archive.retention_days));
        view.insert("AUDIT_LOCK_MODE", json!(archive.lock_mode.as_str()));
        view.insert(
            "AUDIT_SEGMENT_MAX_EVENTS",
            json!(archive.segment_max_events),
        );
        view.insert(
            "AUDIT_SEGMENT_MAX_AGE_MS",
            json!(archive.segment_max_age.as_millis() as u64),
        );
        view.insert(
            "AWS_ACCESS_KEY_ID_SET",
            json!(archive.access_key_id.is_some()),
        );
        view.insert(
            "PROXY_AUTH_FAILURE_LIMIT",
            json!(self.proxy.auth_failure_limit),
        );
        view.insert(
            "PROXY_AUTH_FAILURE_WINDOW_SECONDS",
            json!(self.proxy.auth_failure_window.as_secs()),
        );
        view.insert("PROXY_MAX_FORM_BYTES", json!(self.proxy.max_form_bytes));
        view.insert(
            "RACK_CONNECT_TIMEOUT_MS",
            json!(self.proxy.rack_connect_timeout.as_millis() as u64),
        );
        view.insert(
            "REQUEST_LOG",
            json!(if self.proxy.request_log {
                "stdout"
            } else {
                "off"
            }),
        );
        view.insert(
            "ALLOW_DESTRUCTIVE_ACTIONS",
            json!(self.policy.allow_destructive_actions),
        );
        view.insert(
            "ALLOW_RACK_UPDATE",
            json!(self.policy.rack_update_for_admin),
        );
        view.insert(
            "RUN_BLOCKED_SERVICES",
            json!(self.policy.run_blocked_services),
        );
        view.insert(
            "ADMIN_ONLY_COMMANDS",
            json!(self.policy.admin_only_commands),
        );
        view
    }

    /// SHA-256 over the canonical JSON of [`Settings::public_view`].
    pub fn fingerprint(&self) -> String {
        let bytes = serde_json_canonicalizer::to_vec(&self.public_view()).unwrap_or_default();
        events::envelope::hash_hex(&bytes)
    }
}

/// The provisioning lists, in the order that decides an email listed twice.
const SEED_LISTS: [(&str, decision::rbac::Role); 4] = [
    ("ADMIN_USERS", decision::rbac::Role::Admin),
    ("DEPLOYER_USERS", decision::rbac::Role::Deployer),
    ("OPERATIONS_USERS", decision::rbac::Role::Ops),
    ("VIEWER_USERS", decision::rbac::Role::Viewer),
];

fn seed_users(env: &Env) -> Result<Vec<SeedUser>, SettingsError> {
    let mut users: Vec<SeedUser> = Vec::new();
    for (name, role) in SEED_LISTS {
        for email in env.list(name) {
            let email =
                crate::accounts::valid_email(&email).map_err(|e| bad(name, e.to_string()))?;
            if !users.iter().any(|u| u.email == email) {
                users.push(SeedUser { email, role });
            }
        }
    }
    Ok(users)
}

fn oauth_settings(
    env: &Env,
    server: &ServerSettings,
) -> Result<Option<OAuthSettings>, SettingsError> {
    let Some(client_id) = env.get("GOOGLE_CLIENT_ID") else {
        return Ok(None);
    };
    let client_secret = env.secret("GOOGLE_CLIENT_SECRET").ok_or_else(|| {
        bad(
            "GOOGLE_CLIENT_SECRET",
            "required when GOOGLE_CLIENT_ID is set",
        )
    })?;
    let allowed_domains: Vec<String> = env
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
    let issuer_url = env
        .get("OAUTH_ISSUER_URL")
        .or_else(|| env.get("GOOGLE_OAUTH_BASE_URL"))
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

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn base() -> Env {
        Env::from_pairs([("DATABASE_URL", "postgres://u:pw@localhost/db")])
    }

    #[test]
    fn defaults_follow_the_contract() {
        let s = Settings::from_env(&base()).unwrap();
        assert_eq!(s.server.port, 8447);
        assert_eq!(s.server.public_url, "http://localhost:8447");
        assert_eq!(s.audit.append_timeout, Duration::from_millis(2000));
        assert_eq!(s.audit.checkpoint_every_events, 1000);
        assert_eq!(s.audit.checkpoint_every_seconds, 60);
        assert_eq!(s.rack.name, "default");
        assert_eq!(s.rack.username, "convox");
        assert_eq!(s.proxy.auth_failure_limit, 10);
        assert_eq!(s.proxy.auth_failure_window, Duration::from_secs(60));
        assert_eq!(s.proxy.max_form_bytes, 1 << 20);
        assert!(s.proxy.request_log);
    }

    #[test]
    fn proxy_settings_are_checked() {
        let mut env = base();
        env.set("REQUEST_LOG", "syslog");
        assert_eq!(Settings::from_env(&env).unwrap_err().name, "REQUEST_LOG");
        let mut env = base();
        env.set("PROXY_AUTH_FAILURE_WINDOW_SECONDS", "0");
        assert_eq!(
            Settings::from_env(&env).unwrap_err().name,
            "PROXY_AUTH_FAILURE_WINDOW_SECONDS"
        );
        let mut env = base();
        env.set("REQUEST_LOG", "off");
        env.set("PROXY_AUTH_FAILURE_LIMIT", "3");
        let s = Settings::from_env(&env).unwrap();
        assert!(!s.proxy.request_log);
        assert_eq!(s.proxy.auth_failure_limit, 3);
        assert_eq!(s.policy, PolicySettings::default());
        assert!(!s.policy.allow_destructive_actions);
        assert!(!s.policy.rack_update_for_admin);
        assert_eq!(s.policy.run_blocked_services, ["web", "worker"]);
        assert_eq!(
            s.policy.admin_only_commands,
            ["rails console", "rake db:migrate", "rake db:seed"]
        );
    }

    #[test]
    fn policy_settings_are_read_and_shown() {
        let mut env = base();
        env.set("ALLOW_DESTRUCTIVE_ACTIONS", "true");
        env.set("ALLOW_RACK_UPDATE", "yes");
        env.set("RUN_BLOCKED_SERVICES", " web , worker,scheduler ,");
        env.set("ADMIN_ONLY_COMMANDS", "rails console, psql");
        let s = Settings::from_env(&env).unwrap();
        assert!(s.policy.allow_destructive_actions);
        assert!(s.policy.rack_update_for_admin);
        assert_eq!(
            s.policy.run_blocked_services,
            ["web", "worker", "scheduler"]
        );
        assert_eq!(s.policy.admin_only_commands, ["rails console", "psql"]);
        let view = s.public_view();
        assert_eq!(view["ALLOW_DESTRUCTIVE_ACTIONS"], serde_json::json!(true));
        assert_eq!(view["ALLOW_RACK_UPDATE"], serde_json::json!(true));
        assert_eq!(
            view["RUN_BLOCKED_SERVICES"],
            serde_json::json!(["web", "worker", "scheduler"])
        );
        assert_eq!(
            view["ADMIN_ONLY_COMMANDS"],
            serde_json::json!(["rails console", "psql"])
        );

        // Set but empty: the list is switched off, not defaulted.
        let mut env = base();
        env.set("RUN_BLOCKED_SERVICES", "");
        env.set("ADMIN_ONLY_COMMANDS", "");
        let s = Settings::from_env(&env).unwrap();
        assert!(s.policy.run_blocked_services.is_empty());
        assert!(s.policy.admin_only_commands.is_empty());

        // The original's name works too; the plain name wins when both are set.
        let mut env = base();
        env.set("RGW_SETTING_ALLOW_DESTRUCTIVE_ACTIONS", "true");
        assert!(
            Settings::from_env(&env)
                .unwrap()
                .policy
                .allow_destructive_actions
        );
        env.set("ALLOW_DESTRUCTIVE_ACTIONS", "false");
        assert!(
            !Settings::from_env(&env)
                .unwrap()
                .policy
                .allow_destructive_actions
        );

        let mut env = base();
        env.set("ALLOW_RACK_UPDATE", "maybe");
        assert_eq!(
            Settings::from_env(&env).unwrap_err().name,
            "ALLOW_RACK_UPDATE"
        );
        let mut env = base();
        env.set("RGW_SETTING_ALLOW_DESTRUCTIVE_ACTIONS", "nah");
        assert_eq!(
            Settings::from_env(&env).unwrap_err().name,
            "RGW_SETTING_ALLOW_DESTRUCTIVE_ACTIONS"
        );
    }

    #[test]
    fn bad_values_name_the_setting() {
        let mut env = base();
        env.set("PORT", "eighty");
        let e = Settings::from_env(&env).unwrap_err();
        assert_eq!(e.name, "PORT");
        let e = Settings::from_env(&Env::default()).unwrap_err();
        assert_eq!(e.name, "DATABASE_URL");
        let mut env = base();
        env.set("TLS_CERT_FILE", "/x.pem");
        assert!(Settings::from_env(&env).is_err());
    }

    #[test]
    fn archive_settings_follow_the_contract() {
        let s = Settings::from_env(&base()).unwrap();
        assert!(!s.archive.enabled());
        assert_eq!(s.archive.prefix, "rack-gateway");
        assert_eq!(s.archive.retention_days, 2555);
        assert_eq!(s.archive.lock_mode, LockMode::Compliance);
        assert_eq!(s.archive.checksum, ChecksumMode::Sha256);
        assert!(s.archive.conditional_writes);
        assert!(!s.archive.force_path_style);

        let mut env = base();
        env.set("AUDIT_S3_BUCKET", "audit-bucket");
        env.set("AUDIT_S3_PREFIX", "/org/rgw/");
        env.set("AUDIT_S3_ENDPOINT_URL", "http://127.0.0.1:9000");
        env.set("AUDIT_LOCK_MODE", "governance");
        env.set("AUDIT_RETENTION_DAYS", "30");
        let s = Settings::from_env(&env).unwrap();
        assert!(s.archive.enabled());
        assert_eq!(s.archive.prefix, "org/rgw");
        assert!(
            s.archive.force_path_style,
            "path style by default with an endpoint"
        );
        assert_eq!(s.archive.lock_mode, LockMode::Governance);
        assert_eq!(s.archive.retention_days, 30);

        for (name, value) in [
            ("AUDIT_LOCK_MODE", "LEGAL"),
            ("AUDIT_RETENTION_DAYS", "0"),
            ("AUDIT_S3_CHECKSUM", "crc32"),
            ("AUDIT_S3_BUCKET", "bucket/with/prefix"),
            ("AWS_ACCESS_KEY_ID", "only-the-id"),
        ] {
            let mut env = base();
            env.set(name, value);
            let e = Settings::from_env(&env).unwrap_err();
            assert_eq!(e.name, name, "{name}={value}");
        }
    }

    #[test]
    fn fingerprint_and_view_carry_no_secret() {
        let mut env = base();
        env.set("RACK_TOKEN", "rack-secret-value");
        env.set("APP_SECRET_KEY", "app-secret-value");
        env.set("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEYID");
        env.set("AWS_SECRET_ACCESS_KEY", "aws-secret-value");
        let s = Settings::from_env(&env).unwrap();
        let view = serde_json::to_string(&s.public_view()).unwrap();
        assert!(!view.contains("rack-secret-value"));
        assert!(!view.contains("app-secret-value"));
        assert!(!view.contains(":pw@"));
        assert!(!view.contains("aws-secret-value"));
        assert!(!view.contains("AKIAEXAMPLEKEYID"));
        assert!(!format!("{s:?}").contains("aws-secret-value"));
        assert!(!format!("{s:?}").contains("AKIAEXAMPLEKEYID"));
        assert!(!format!("{s:?}").contains("rack-secret-value"));
        assert_eq!(
            s.rack.token.as_ref().unwrap().expose_secret(),
            "rack-secret-value"
        );
        let mut other = env.clone();
        other.set("RACK_TOKEN", "a-different-secret");
        assert_eq!(
            Settings::from_env(&other).unwrap().fingerprint(),
            s.fingerprint(),
            "secrets do not change the fingerprint"
        );
        other.set("CHECKPOINT_EVERY_EVENTS", "5");
        assert_ne!(
            Settings::from_env(&other).unwrap().fingerprint(),
            s.fingerprint()
        );
    }

    #[test]
    fn oauth_is_optional_but_complete_when_set() {
        let s = Settings::from_env(&base()).unwrap();
        assert!(s.auth.oauth.is_none());
        assert!(
            !s.auth.cookie_secure,
            "plain-http PUBLIC_URL: no Secure cookies"
        );
        assert_eq!(s.auth.login_state_ttl, Duration::from_secs(600));
        assert_eq!(
            (s.auth.rate_limit_per_second, s.auth.rate_limit_burst),
            (10, 20)
        );

        let mut env = base();
        env.set("GOOGLE_CLIENT_ID", "client");
        assert_eq!(
            Settings::from_env(&env).unwrap_err().name,
            "GOOGLE_CLIENT_SECRET"
        );
        env.set("GOOGLE_CLIENT_SECRET", "oauth-secret-value");
        assert_eq!(
            Settings::from_env(&env).unwrap_err().name,
            "GOOGLE_ALLOWED_DOMAIN"
        );
        env.set("GOOGLE_ALLOWED_DOMAIN", " Example.com, @other.org ");
        assert_eq!(
            Settings::from_env(&env).unwrap_err().name,
            "APP_SECRET_KEY",
            "browser sign-in needs a CSRF key outside dev mode"
        );
        env.set("APP_SECRET_KEY", "k");
        env.set("GOOGLE_OAUTH_BASE_URL", "http://127.0.0.1:3345/");
        env.set("PUBLIC_URL", "https://gw.example.com/");
        let s = Settings::from_env(&env).unwrap();
        let oauth = s.auth.oauth.as_ref().unwrap();
        assert_eq!(oauth.issuer_url, "http://127.0.0.1:3345");
        assert_eq!(oauth.allowed_domains, ["example.com", "other.org"]);
        assert!(s.auth.cookie_secure);
        assert_eq!(
            s.oauth_redirect_uri("cli"),
            "https://gw.example.com/api/v1/auth/cli/callback"
        );
        let view = serde_json::to_string(&s.public_view()).unwrap();
        assert!(!view.contains("oauth-secret-value"));
        env.set("OAUTH_ISSUER_URL", "https://issuer.example");
        assert_eq!(
            Settings::from_env(&env)
                .unwrap()
                .auth
                .oauth
                .unwrap()
                .issuer_url,
            "https://issuer.example",
            "OAUTH_ISSUER_URL wins over the alias"
        );
        env.set("OAUTH_ISSUER_URL", "not a url");
        assert_eq!(
            Settings::from_env(&env).unwrap_err().name,
            "OAUTH_ISSUER_URL"
        );
    }

    #[test]
    fn seed_users_take_the_first_list_that_names_them() {
        let mut env = base();
        env.set("ADMIN_USERS", "Root@Example.com");
        env.set("VIEWER_USERS", "root@example.com, view@example.com");
        env.set("OPERATIONS_USERS", "ops@example.com");
        let s = Settings::from_env(&env).unwrap();
        let seeds: Vec<(&str, decision::rbac::Role)> = s
            .auth
            .seed_users
            .iter()
            .map(|u| (u.email.as_str(), u.role))
            .collect();
        use decision::rbac::Role;
        assert_eq!(
            seeds,
            [
                ("root@example.com", Role::Admin),
                ("ops@example.com", Role::Ops),
                ("view@example.com", Role::Viewer),
            ]
        );
        env.set("DEPLOYER_USERS", "not-an-email");
        assert_eq!(Settings::from_env(&env).unwrap_err().name, "DEPLOYER_USERS");
    }

    /// Every variable set to something other than its default (and the
    /// aliases left unset): the environment the pinned view is taken from.
    fn everything() -> Env {
        Env::from_pairs([
            ("DATABASE_URL", "postgres://u:pw@localhost/db"),
            ("DEV_MODE", "true"),
            ("PORT", "9443"),
            ("BIND_ADDRESS", "127.0.0.1"),
            ("PUBLIC_URL", "https://gw.example.com/"),
            ("TLS_CERT_FILE", "/etc/rgw/cert.pem"),
            ("TLS_KEY_FILE", "/etc/rgw/key.pem"),
            ("APP_SECRET_KEY", "app-secret-value"),
            ("TRUSTED_PROXY_CIDRS", "10.0.0.0/8, 192.168.0.0/16"),
            ("AUDIT_APPEND_TIMEOUT_MS", "1500"),
            ("CHECKPOINT_SIGNING_KEY_FILE", "/etc/rgw/checkpoint.key"),
            ("CHECKPOINT_EVERY_EVENTS", "500"),
            ("CHECKPOINT_EVERY_SECONDS", "30"),
            ("RACK_NAME", "production"),
            ("RACK_HOST", "https://rack.internal/"),
            ("RACK_TOKEN", "rack-secret-value"),
            ("RACK_USERNAME", "admin"),
            ("RACK_TLS_CA_FILE", "/etc/rgw/rack-ca.pem"),
            ("RACK_TLS_FINGERPRINT", "ab12cd34"),
            ("SESSION_TIMEOUT_MINUTES", "15"),
            ("WEB_SESSION_LIFETIME_HOURS", "8"),
            ("LOGIN_STATE_TTL_SECONDS", "300"),
            ("AUTH_RATE_LIMIT_PER_SECOND", "5"),
            ("AUTH_RATE_LIMIT_BURST", "9"),
            ("COOKIE_SECURE", "false"),
            ("GOOGLE_CLIENT_ID", "client-id"),
            ("GOOGLE_CLIENT_SECRET", "oauth-secret-value"),
            ("GOOGLE_ALLOWED_DOMAIN", "Example.com, @other.org"),
            ("OAUTH_ISSUER_URL", "https://issuer.example/"),
            ("ADMIN_USERS", "root@example.com"),
            ("DEPLOYER_USERS", "deploy@example.com"),
            ("OPERATIONS_USERS", "ops@example.com, root@example.com"),
            ("VIEWER_USERS", "view@example.com"),
            ("AUDIT_S3_BUCKET", "audit-bucket"),
            ("AUDIT_S3_PREFIX", "/org/rgw/"),
            ("AUDIT_S3_ENDPOINT_URL", "http://127.0.0.1:9000"),
            ("AUDIT_S3_REGION", "eu-west-1"),
            ("AUDIT_S3_FORCE_PATH_STYLE", "false"),
            ("AUDIT_S3_CHECKSUM", "MD5"),
            ("AUDIT_S3_CONDITIONAL_WRITES", "off"),
            ("AUDIT_RETENTION_DAYS", "30"),
            ("AUDIT_LOCK_MODE", "governance"),
            ("AUDIT_SEGMENT_MAX_EVENTS", "200"),
            ("AUDIT_SEGMENT_MAX_AGE_MS", "750"),
            ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEYID"),
            ("AWS_SECRET_ACCESS_KEY", "aws-secret-value"),
            ("AWS_SESSION_TOKEN", "aws-session-value"),
            ("PROXY_AUTH_FAILURE_LIMIT", "4"),
            ("PROXY_AUTH_FAILURE_WINDOW_SECONDS", "120"),
            ("PROXY_MAX_FORM_BYTES", "65536"),
            ("RACK_CONNECT_TIMEOUT_MS", "2500"),
            ("REQUEST_LOG", "OFF"),
            ("ALLOW_DESTRUCTIVE_ACTIONS", "yes"),
            ("ALLOW_RACK_UPDATE", "1"),
            ("RUN_BLOCKED_SERVICES", "web, scheduler"),
            ("ADMIN_ONLY_COMMANDS", "rails console, psql"),
        ])
    }

    fn pinned(json: &str) -> serde_json::Value {
        serde_json::from_str(json).expect("pinned view parses")
    }

    /// The view (and so the `gateway.started` fingerprint) for fixed
    /// environments, spelled out: moving or adding settings must not change
    /// what an existing environment records.
    #[test]
    fn the_public_view_is_pinned() {
        let s = Settings::from_env(&everything()).unwrap();
        let view = serde_json::to_value(s.public_view()).unwrap();
        let expected = pinned(
            r#"{
  "ADMIN_ONLY_COMMANDS": [
    "rails console",
    "psql"
  ],
  "ADMIN_USERS": [
    "root@example.com"
  ],
  "ALLOW_DESTRUCTIVE_ACTIONS": true,
  "ALLOW_RACK_UPDATE": true,
  "APP_SECRET_KEY_SET": true,
  "AUDIT_APPEND_TIMEOUT_MS": 1500,
  "AUDIT_LOCK_MODE": "GOVERNANCE",
  "AUDIT_RETENTION_DAYS": 30,
  "AUDIT_S3_BUCKET": "audit-bucket",
  "AUDIT_S3_CHECKSUM": "md5",
  "AUDIT_S3_CONDITIONAL_WRITES": false,
  "AUDIT_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
  "AUDIT_S3_FORCE_PATH_STYLE": false,
  "AUDIT_S3_PREFIX": "org/rgw",
  "AUDIT_S3_REGION": "eu-west-1",
  "AUDIT_SEGMENT_MAX_AGE_MS": 750,
  "AUDIT_SEGMENT_MAX_EVENTS": 200,
  "AUTH_RATE_LIMIT_BURST": 9,
  "AUTH_RATE_LIMIT_PER_SECOND": 5,
  "AWS_ACCESS_KEY_ID_SET": true,
  "CHECKPOINT_EVERY_EVENTS": 500,
  "CHECKPOINT_EVERY_SECONDS": 30,
  "COOKIE_SECURE": false,
  "DEPLOYER_USERS": [
    "deploy@example.com"
  ],
  "DEV_MODE": true,
  "GOOGLE_ALLOWED_DOMAIN": [
    "example.com",
    "other.org"
  ],
  "GOOGLE_CLIENT_ID": "client-id",
  "GOOGLE_CLIENT_SECRET_SET": true,
  "LOGIN_STATE_TTL_SECONDS": 300,
  "OAUTH_ISSUER_URL": "https://issuer.example",
  "OPERATIONS_USERS": [
    "ops@example.com"
  ],
  "PORT": 9443,
  "PROXY_AUTH_FAILURE_LIMIT": 4,
  "PROXY_AUTH_FAILURE_WINDOW_SECONDS": 120,
  "PROXY_MAX_FORM_BYTES": 65536,
  "PUBLIC_URL": "https://gw.example.com",
  "RACK_CONNECT_TIMEOUT_MS": 2500,
  "RACK_HOST": "https://rack.internal",
  "RACK_NAME": "production",
  "RACK_TLS_CA_FILE": "/etc/rgw/rack-ca.pem",
  "RACK_TLS_FINGERPRINT": "ab12cd34",
  "RACK_TOKEN_SET": true,
  "RACK_USERNAME": "admin",
  "REQUEST_LOG": "off",
  "RUN_BLOCKED_SERVICES": [
    "web",
    "scheduler"
  ],
  "SESSION_TIMEOUT_MINUTES": 15,
  "TLS": true,
  "TRUSTED_PROXY_CIDRS": [
    "10.0.0.0/8",
    "192.168.0.0/16"
  ],
  "VIEWER_USERS": [
    "view@example.com"
  ],
  "WEB_SESSION_LIFETIME_HOURS": 8
}"#,
        );
        assert_eq!(view, expected);
        assert_eq!(
            s.fingerprint(),
            "cab9cbf6df9dd18078a446283ab5b0ed5d344703dbda8ef2b68f6d7f2eac474e"
        );

        let defaults = Settings::from_env(&base()).unwrap();
        let expected = pinned(
            r#"{
  "ADMIN_ONLY_COMMANDS": [
    "rails console",
    "rake db:migrate",
    "rake db:seed"
  ],
  "ADMIN_USERS": [],
  "ALLOW_DESTRUCTIVE_ACTIONS": false,
  "ALLOW_RACK_UPDATE": false,
  "APP_SECRET_KEY_SET": false,
  "AUDIT_APPEND_TIMEOUT_MS": 2000,
  "AUDIT_LOCK_MODE": "COMPLIANCE",
  "AUDIT_RETENTION_DAYS": 2555,
  "AUDIT_S3_BUCKET": null,
  "AUDIT_S3_CHECKSUM": "sha256",
  "AUDIT_S3_CONDITIONAL_WRITES": true,
  "AUDIT_S3_ENDPOINT_URL": null,
  "AUDIT_S3_FORCE_PATH_STYLE": false,
  "AUDIT_S3_PREFIX": "rack-gateway",
  "AUDIT_S3_REGION": null,
  "AUDIT_SEGMENT_MAX_AGE_MS": 5000,
  "AUDIT_SEGMENT_MAX_EVENTS": 1000,
  "AUTH_RATE_LIMIT_BURST": 20,
  "AUTH_RATE_LIMIT_PER_SECOND": 10,
  "AWS_ACCESS_KEY_ID_SET": false,
  "CHECKPOINT_EVERY_EVENTS": 1000,
  "CHECKPOINT_EVERY_SECONDS": 60,
  "COOKIE_SECURE": false,
  "DEPLOYER_USERS": [],
  "DEV_MODE": false,
  "GOOGLE_ALLOWED_DOMAIN": null,
  "GOOGLE_CLIENT_ID": null,
  "GOOGLE_CLIENT_SECRET_SET": false,
  "LOGIN_STATE_TTL_SECONDS": 600,
  "OAUTH_ISSUER_URL": null,
  "OPERATIONS_USERS": [],
  "PORT": 8447,
  "PROXY_AUTH_FAILURE_LIMIT": 10,
  "PROXY_AUTH_FAILURE_WINDOW_SECONDS": 60,
  "PROXY_MAX_FORM_BYTES": 1048576,
  "PUBLIC_URL": "http://localhost:8447",
  "RACK_CONNECT_TIMEOUT_MS": 10000,
  "RACK_HOST": null,
  "RACK_NAME": "default",
  "RACK_TLS_CA_FILE": null,
  "RACK_TLS_FINGERPRINT": null,
  "RACK_TOKEN_SET": false,
  "RACK_USERNAME": "convox",
  "REQUEST_LOG": "stdout",
  "RUN_BLOCKED_SERVICES": [
    "web",
    "worker"
  ],
  "SESSION_TIMEOUT_MINUTES": 5,
  "TLS": false,
  "TRUSTED_PROXY_CIDRS": [],
  "VIEWER_USERS": [],
  "WEB_SESSION_LIFETIME_HOURS": 12
}"#,
        );
        assert_eq!(
            serde_json::to_value(defaults.public_view()).unwrap(),
            expected
        );

        // Every alias, alone: recorded under the name it stands for.
        let aliases = Env::from_pairs([
            ("RGW_DATABASE_URL", "postgres://u:pw@localhost/db"),
            ("RACK", "staging"),
            ("RGW_SETTING_SESSION_TIMEOUT_MINUTES", "7"),
            ("RGW_SETTING_ALLOW_DESTRUCTIVE_ACTIONS", "true"),
            ("AWS_DEFAULT_REGION", "us-west-2"),
            ("DEV_MODE", "true"),
            ("GOOGLE_CLIENT_ID", "client-id"),
            ("GOOGLE_CLIENT_SECRET", "oauth-secret-value"),
            ("GOOGLE_ALLOWED_DOMAIN", "example.com"),
            ("GOOGLE_OAUTH_BASE_URL", "http://127.0.0.1:3345/"),
        ]);
        let view = Settings::from_env(&aliases).unwrap().public_view();
        assert_eq!(view["RACK_NAME"], "staging");
        assert_eq!(view["SESSION_TIMEOUT_MINUTES"], 7);
        assert_eq!(view["ALLOW_DESTRUCTIVE_ACTIONS"], true);
        assert_eq!(view["AUDIT_S3_REGION"], "us-west-2");
        assert_eq!(view["OAUTH_ISSUER_URL"], "http://127.0.0.1:3345");
        let mut both = aliases.clone();
        both.set("AWS_REGION", "ap-south-1");
        let view = Settings::from_env(&both).unwrap().public_view();
        assert_eq!(view["AUDIT_S3_REGION"], "ap-south-1");
    }
}
