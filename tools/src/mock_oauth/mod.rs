//! `mock-oauth`: a small, real OpenID Connect provider standing in for Google in dev and tests.
//!
//! It speaks the authorization-code flow with PKCE (S256 only), signs RS256 ID tokens with a
//! key generated at start-up, publishes that key as a JWKS, and serves userinfo. Sign-in is a
//! page listing the fixed [`TestUser`]s; headless tests skip it with `login_hint=<email>`.
//!
//! Endpoints, relative to the issuer:
//!
//! | path | what |
//! | --- | --- |
//! | `GET /.well-known/openid-configuration` | discovery document |
//! | `GET /jwks` | the RSA public key |
//! | `GET`/`POST /authorize` | validates the request; the picker page, or straight to the redirect with `login_hint` |
//! | `POST /token` | code + PKCE verifier + client secret (post body or Basic) → tokens |
//! | `GET`/`POST /userinfo` | Bearer access token → claims |
//!
//! Defaults ([`MockOAuthConfig::default`]): client id [`DEV_CLIENT_ID`], secret
//! [`DEV_CLIENT_SECRET`], any loopback `http://localhost…`/`http://127.0.0.1…` redirect URI, issuer
//! `http://127.0.0.1:<bound port>`, codes valid 60 s, tokens 1 h, test controls off.
//!
//! Test controls (only with [`MockOAuthConfig::test_controls`]): `mock_tamper=<`[`Tamper`]`>` on
//! the authorize URL makes the ID token issued for that code defective in one way.
//!
//! In-process use:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use tools::mock_oauth::{MockOAuth, MockOAuthConfig};
//! let provider = MockOAuth::bind("127.0.0.1:0".parse()?, MockOAuthConfig::default()).await?;
//! let handle = provider.spawn(); // stops on `handle.shutdown().await` or when dropped
//! let issuer = handle.issuer();
//! # let _ = issuer;
//! handle.shutdown().await?;
//! # Ok(()) }
//! ```

mod authorize;
mod keys;
mod token;
mod users;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use keys::{KeyError, SigningKey};
pub use users::{find_user, TestUser, TEST_USERS};

/// Default client id: a dev-friendly constant the gateway's dev config also uses.
pub const DEV_CLIENT_ID: &str = "rack-gateway-dev";
/// Default client secret. Not a secret at all: it only guards a dev provider with fake users.
pub const DEV_CLIENT_SECRET: &str = "rack-gateway-dev-secret";
/// Default port of the `mock-oauth` binary.
pub const DEFAULT_PORT: u16 = 3345;
/// How long an authorization code stays redeemable unless configured otherwise.
pub const DEFAULT_CODE_TTL: Duration = Duration::from_secs(60);
/// Lifetime of access and ID tokens unless configured otherwise (Google's is one hour too).
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// Scopes the provider knows; anything else is `invalid_scope`, as Google does.
pub const SUPPORTED_SCOPES: &[&str] = &["openid", "email", "profile"];

/// How the provider is set up. `Default` gives the documented dev values.
#[derive(Debug, Clone)]
pub struct MockOAuthConfig {
    /// Issuer URL placed in discovery and tokens. `None`: `http://127.0.0.1:<bound port>`.
    /// A path in it (`http://host/oidc`) puts every endpoint under that path.
    pub issuer: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    /// Exact redirect URIs allowed. Empty: any `http` URI on `localhost`, `127.0.0.1` or `[::1]`.
    pub redirect_uris: Vec<String>,
    /// Accept `mock_tamper` on the authorize endpoint.
    pub test_controls: bool,
    /// How long an authorization code can be redeemed.
    pub code_ttl: Duration,
    /// Lifetime of access tokens and ID tokens (`expires_in`, `exp`).
    pub token_ttl: Duration,
}

impl Default for MockOAuthConfig {
    fn default() -> Self {
        MockOAuthConfig {
            issuer: None,
            client_id: DEV_CLIENT_ID.to_owned(),
            client_secret: DEV_CLIENT_SECRET.to_owned(),
            redirect_uris: Vec::new(),
            test_controls: false,
            code_ttl: DEFAULT_CODE_TTL,
            token_ttl: DEFAULT_TOKEN_TTL,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MockOAuthError {
    #[error("bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid issuer {issuer:?}: {reason}")]
    InvalidIssuer { issuer: String, reason: String },
    #[error("invalid redirect URI {uri:?}: {reason}")]
    InvalidRedirectUri { uri: String, reason: String },
    #[error("signing key: {0}")]
    Key(#[from] KeyError),
    #[error("key generation task failed: {0}")]
    KeyTask(#[from] tokio::task::JoinError),
    #[error("serve: {0}")]
    Serve(std::io::Error),
    #[error("template: {0}")]
    Template(#[from] minijinja::Error),
}

/// A `mock_tamper` test control: the one defect the issued ID token will have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// Signature bytes altered: fails signature verification.
    Signature,
    /// `exp` an hour in the past (well beyond any clock-skew leeway).
    Expired,
    /// `aud` names another client.
    WrongAud,
    /// `iss` is a different issuer.
    WrongIss,
    /// `nonce` is not the one the client sent (present even if it sent none).
    WrongNonce,
    /// No `email_verified` claim at all.
    NoEmailVerified,
}

impl Tamper {
    pub const ALL: [Tamper; 6] = [
        Tamper::Signature,
        Tamper::Expired,
        Tamper::WrongAud,
        Tamper::WrongIss,
        Tamper::WrongNonce,
        Tamper::NoEmailVerified,
    ];

    /// The query-parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            Tamper::Signature => "signature",
            Tamper::Expired => "expired",
            Tamper::WrongAud => "wrong_aud",
            Tamper::WrongIss => "wrong_iss",
            Tamper::WrongNonce => "wrong_nonce",
            Tamper::NoEmailVerified => "no_email_verified",
        }
    }

    pub fn parse(value: &str) -> Option<Tamper> {
        Tamper::ALL.into_iter().find(|t| t.as_str() == value)
    }
}

/// A bound, not yet serving provider. Connections queue until [`MockOAuth::run`] or [`MockOAuth::spawn`].
pub struct MockOAuth {
    listener: TcpListener,
    local_addr: SocketAddr,
    url: String,
    shared: Arc<Shared>,
}

impl MockOAuth {
    /// Bind `addr` (port 0 picks a free port) and generate the signing key.
    pub async fn bind(
        addr: SocketAddr,
        config: MockOAuthConfig,
    ) -> Result<MockOAuth, MockOAuthError> {
        for uri in &config.redirect_uris {
            validate_registered_redirect(uri)?;
        }
        // Key generation is CPU work of a few hundred milliseconds; keep it off the reactor.
        let key = tokio::task::spawn_blocking(SigningKey::generate).await??;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| MockOAuthError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| MockOAuthError::Bind { addr, source })?;
        // A wildcard bind is reached through loopback from this machine.
        let host = match local_addr.ip() {
            ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
            ip if ip.is_unspecified() => "[::1]".to_owned(),
            std::net::IpAddr::V4(ip) => ip.to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        };
        let local_base = format!("http://{host}:{}", local_addr.port());

        let issuer = match &config.issuer {
            Some(issuer) => validate_issuer(issuer)?,
            None => local_base.clone(),
        };
        // Endpoints hang below the issuer's path, so discovery sits where OIDC says it must.
        let prefix = url::Url::parse(&issuer)
            .map(|u| u.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        let url = format!("{local_base}{prefix}");

        let shared = Arc::new(Shared {
            base: issuer.trim_end_matches('/').to_owned(),
            issuer,
            prefix,
            client_id: config.client_id,
            client_secret: config.client_secret,
            redirect_uris: config.redirect_uris,
            test_controls: config.test_controls,
            code_ttl: config.code_ttl,
            token_ttl: config.token_ttl,
            key,
            templates: authorize::templates()?,
            store: Mutex::new(Store::default()),
        });
        Ok(MockOAuth {
            listener,
            local_addr,
            url,
            shared,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Base URL to reach the provider from this machine; equals the issuer unless one was configured.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The issuer, exactly as in discovery and in every ID token's `iss`.
    pub fn issuer(&self) -> String {
        self.shared.issuer.clone()
    }

    /// The `kid` of the signing key.
    pub fn kid(&self) -> String {
        self.shared.key.kid().to_owned()
    }

    /// The fixed test users.
    pub fn users() -> &'static [TestUser] {
        TEST_USERS
    }

    /// Serve until `shutdown` completes, then finish in-flight requests.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), MockOAuthError> {
        let app = router(self.shared);
        axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(MockOAuthError::Serve)
    }

    /// Serve on a background task. The server stops on [`MockOAuthHandle::shutdown`] or when the
    /// handle is dropped, so a failing test never leaves it running.
    pub fn spawn(self) -> MockOAuthHandle {
        let (tx, rx) = oneshot::channel::<()>();
        let url = self.url();
        let issuer = self.issuer();
        let local_addr = self.local_addr;
        let task = tokio::spawn(self.run(async move {
            // A dropped sender ends the wait just like a sent value.
            let _ = rx.await;
        }));
        MockOAuthHandle {
            url,
            issuer,
            local_addr,
            stop: Some(tx),
            task: Some(task),
        }
    }
}

/// A provider serving on a background task; see [`MockOAuth::spawn`].
pub struct MockOAuthHandle {
    url: String,
    issuer: String,
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), MockOAuthError>>>,
}

impl MockOAuthHandle {
    pub fn url(&self) -> String {
        self.url.clone()
    }

    pub fn issuer(&self) -> String {
        self.issuer.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stop accepting, finish in-flight requests, and wait for the server task.
    pub async fn shutdown(mut self) -> Result<(), MockOAuthError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await?,
            None => Ok(()),
        }
    }
}

impl Drop for MockOAuthHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Everything the handlers share.
struct Shared {
    issuer: String,
    /// The issuer without a trailing slash, to which endpoint paths are appended.
    base: String,
    /// The issuer's path, under which the routes are mounted ("" for none).
    prefix: String,
    client_id: String,
    client_secret: String,
    redirect_uris: Vec<String>,
    test_controls: bool,
    code_ttl: Duration,
    token_ttl: Duration,
    key: SigningKey,
    templates: minijinja::Environment<'static>,
    store: Mutex<Store>,
}

impl Shared {
    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock leaves plain maps behind, still consistent enough for a
        // test provider; keep serving instead of failing every later request.
        self.store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Codes and tokens in flight. Expired entries are pruned whenever something is added.
#[derive(Default)]
struct Store {
    codes: HashMap<String, PendingCode>,
    /// Redeemed codes, remembered so a replay can revoke what the first redemption issued
    /// (RFC 6749 section 4.1.2).
    used_codes: HashMap<String, UsedCode>,
    tokens: HashMap<String, AccessGrant>,
}

impl Store {
    fn prune(&mut self, now: Instant) {
        self.codes.retain(|_, c| c.expires_at > now);
        self.used_codes.retain(|_, c| c.forget_at > now);
        self.tokens.retain(|_, t| t.expires_at > now);
    }
}

/// What an authorization code stands for until it is redeemed.
struct PendingCode {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    nonce: Option<String>,
    scope: Vec<String>,
    user: &'static TestUser,
    tamper: Option<Tamper>,
    expires_at: Instant,
}

struct UsedCode {
    access_token: Option<String>,
    forget_at: Instant,
}

/// What a Bearer access token grants at the userinfo endpoint.
struct AccessGrant {
    user: &'static TestUser,
    scope: Vec<String>,
    expires_at: Instant,
}

fn router(shared: Arc<Shared>) -> Router {
    let routes = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route(
            "/authorize",
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route("/token", post(token::token))
        .route("/userinfo", get(token::userinfo).post(token::userinfo));
    let prefix = shared.prefix.clone();
    let routes = routes.with_state(shared);
    if prefix.is_empty() {
        routes
    } else {
        Router::new().nest(&prefix, routes)
    }
}

async fn discovery(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    Json(serde_json::json!({
        "issuer": shared.issuer,
        "authorization_endpoint": shared.endpoint("/authorize"),
        "token_endpoint": shared.endpoint("/token"),
        "userinfo_endpoint": shared.endpoint("/userinfo"),
        "jwks_uri": shared.endpoint("/jwks"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": SUPPORTED_SCOPES,
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "claims_supported": [
            "iss", "sub", "aud", "azp", "exp", "iat", "nonce", "at_hash",
            "email", "email_verified", "name", "given_name", "family_name", "hd",
        ],
    }))
}

async fn jwks(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    (
        // Relying parties cache keys; a short max-age keeps a restarted provider's new key visible.
        [(header::CACHE_CONTROL, "public, max-age=60")],
        Json(shared.key.jwks()),
    )
}

/// An unguessable token: 256 random bits, base64url.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An issuer must be an absolute http(s) URL without query or fragment (OIDC Discovery 3).
fn validate_issuer(issuer: &str) -> Result<String, MockOAuthError> {
    let invalid = |reason: &str| MockOAuthError::InvalidIssuer {
        issuer: issuer.to_owned(),
        reason: reason.to_owned(),
    };
    let parsed = url::Url::parse(issuer).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("scheme must be http or https"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid("must not have a query or fragment"));
    }
    if parsed.host_str().is_none() {
        return Err(invalid("must have a host"));
    }
    Ok(issuer.to_owned())
}

fn validate_registered_redirect(uri: &str) -> Result<(), MockOAuthError> {
    let invalid = |reason: &str| MockOAuthError::InvalidRedirectUri {
        uri: uri.to_owned(),
        reason: reason.to_owned(),
    };
    let parsed = url::Url::parse(uri).map_err(|e| invalid(&e.to_string()))?;
    if parsed.fragment().is_some() {
        return Err(invalid("must not have a fragment"));
    }
    if parsed.cannot_be_a_base() {
        return Err(invalid("must be an absolute URL"));
    }
    Ok(())
}
