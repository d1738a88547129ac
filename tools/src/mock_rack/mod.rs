//! `mock-rack`: an in-memory stand-in for a Convox v3 rack API, close enough that the real
//! `convox` CLI runs its everyday commands against it (README "The rack proxy").
//!
//! What it mimics because the CLI (or a gateway in front of it) can tell:
//! - HTTP Basic auth on matched routes only; the username is ignored, a wrong password gives 401
//!   `invalid authentication` with `WWW-Authenticate: Basic realm="convox"`. An empty password
//!   turns checks off, as on the real rack. Unknown paths (`GET /machines`, `GET /racks`) are a
//!   plain 404 without any auth check.
//! - Websocket routes match only `GET` + `Upgrade: websocket` (a plain GET is a 404). Like the
//!   real rack they upgrade *before* authenticating, so a bad password shows up as a 101, then a
//!   text frame `ERROR: invalid authentication\n` and an empty binary frame. An `Origin` whose
//!   host differs from `Host` is refused with 403, as gorilla's upgrader does.
//! - Every response carries `Request-Id` (12 random characters); JSON is pretty-printed with a
//!   2-space indent and a trailing newline; no-result actions answer `ok\n`; errors are plain
//!   text, or `{"error":…}` when `Accept` lists `application/json`.
//!
//! Every request, including 401s, 404s and websockets, is recorded on arrival
//! ([`RecordedRequest`]), in memory and, with [`MockRackConfig::record`], as JSON lines.
//!
//! Use in tests: [`MockRack::bind`] (port 0 is fine), then either [`MockRack::run`] with a
//! shutdown future or [`MockRack::spawn`], which returns a [`RunningMockRack`] that derefs to a
//! [`MockRackHandle`] for inspecting state while it serves and stops when dropped.

mod apps;
mod builds;
mod processes;
pub mod state;
mod streams;
mod system;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context as _;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use state::{
    AppRecord, ExecRecord, RackState, UploadInfo, DEFAULT_MANIFEST, DEFAULT_VERSION, SEED_APP,
    SEED_BUILD, SEED_RELEASE,
};
pub use streams::EXIT_MARKER;

/// The password the binary uses when none is given.
pub const DEFAULT_PASSWORD: &str = "password";

/// How a mock rack behaves. `Default` gives password [`DEFAULT_PASSWORD`], no record file,
/// plain HTTP, version [`DEFAULT_VERSION`].
#[derive(Debug, Clone)]
pub struct MockRackConfig {
    /// The rack password (Basic auth, any username). Empty turns auth off, as on the real rack.
    pub password: String,
    /// Append one JSON line per request to this file.
    pub record: Option<PathBuf>,
    /// Serve HTTPS with a self-signed certificate made at start.
    pub tls: bool,
    /// What `GET /system` reports as `version`.
    pub version: String,
    /// A build nobody streams logs for reports `complete` this long after it started.
    pub build_duration: Duration,
    /// Followed log streams (`Follow` absent or true) stay open, as a rack's do, until the
    /// client leaves, with a new line this often.
    pub follow_interval: Duration,
}

impl Default for MockRackConfig {
    fn default() -> Self {
        MockRackConfig {
            password: DEFAULT_PASSWORD.to_string(),
            record: None,
            tls: false,
            version: DEFAULT_VERSION.to_string(),
            build_duration: Duration::from_secs(2),
            follow_interval: Duration::from_secs(1),
        }
    }
}

/// What the request's credentials amounted to (recorded even where the route does not check).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthOutcome {
    /// The password matched.
    Ok,
    /// Credentials present, password wrong (or the header unreadable).
    Invalid,
    /// No `Authorization` header.
    Missing,
    /// The rack has no password, so nothing is checked.
    Disabled,
}

/// One request as it reached the rack; the `--record` file holds these as JSON lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// Arrival time, RFC 3339.
    pub ts: String,
    pub method: String,
    /// The path as received, without the query string.
    pub path: String,
    /// The raw query string, if there was one (the CLI always sends a `?`, so often `""`).
    pub query: Option<String>,
    /// The `X-Request-Id` request header.
    pub request_id: Option<String>,
    /// The `Convox-Actor` request header.
    pub actor: Option<String>,
    /// The `X-Convox-Actor` request header (the CLI sets it from `CONVOX_ACTOR`).
    pub x_convox_actor: Option<String>,
    /// Whether the Basic password matched.
    pub auth: AuthOutcome,
    /// Whether this was a websocket upgrade request.
    pub websocket: bool,
}

pub(crate) struct Shared {
    pub(crate) config: MockRackConfig,
    state: Mutex<RackState>,
    recorded: Mutex<Vec<RecordedRequest>>,
    record_file: Option<Mutex<File>>,
}

/// A poisoned lock only means another handler panicked mid-update; the mock keeps serving.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(crate) fn with_state<R>(&self, f: impl FnOnce(&mut RackState) -> R) -> R {
        f(&mut lock(&self.state))
    }

    /// Runs `f` on one app, or answers 404 `app not found: <name>` like the rack.
    pub(crate) fn with_app<R>(
        &self,
        app: &str,
        f: impl FnOnce(&mut AppRecord) -> Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        let mut state = lock(&self.state);
        match state.apps.get_mut(app) {
            Some(record) => f(record),
            None => Err(ApiError::not_found(format!("app not found: {app}"))),
        }
    }

    fn record(&self, rec: RecordedRequest) {
        if let Some(file) = &self.record_file {
            match serde_json::to_string(&rec) {
                Ok(mut line) => {
                    line.push('\n');
                    // One write per line under the lock, so concurrent requests never interleave.
                    if let Err(e) = lock(file).write_all(line.as_bytes()) {
                        tracing::warn!(error = %e, "could not append to the record file");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not serialise a record"),
            }
        }
        lock(&self.recorded).push(rec);
    }
}

/// A cheap, clonable view of a mock rack for inspecting it while it serves.
#[derive(Clone)]
pub struct MockRackHandle {
    shared: Arc<Shared>,
    url: String,
    tls: Option<TlsInfo>,
}

#[derive(Clone)]
struct TlsInfo {
    fingerprint_sha256: String,
    cert_pem: String,
}

impl MockRackHandle {
    /// `http(s)://127.0.0.1:<port>`, no trailing slash.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Lowercase hex SHA-256 of the certificate's DER, when serving TLS.
    pub fn tls_fingerprint_sha256(&self) -> Option<String> {
        self.tls.as_ref().map(|t| t.fingerprint_sha256.clone())
    }

    /// The self-signed certificate in PEM, when serving TLS (trust it as a CA file).
    pub fn tls_cert_pem(&self) -> Option<String> {
        self.tls.as_ref().map(|t| t.cert_pem.clone())
    }

    /// Every request received so far, in arrival order.
    pub fn recorded(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.recorded).clone()
    }

    /// Every object upload so far, in arrival order.
    pub fn uploads(&self) -> Vec<UploadInfo> {
        self.shared.with_state(|s| s.uploads.clone())
    }

    /// Every finished exec session so far (exec, attached run, instance shell).
    pub fn execs(&self) -> Vec<ExecRecord> {
        self.shared.with_state(|s| s.execs.clone())
    }

    /// A snapshot of the whole rack.
    pub fn state(&self) -> RackState {
        self.shared.with_state(|s| s.clone())
    }

    /// A snapshot of one app, if it exists.
    pub fn app(&self, name: &str) -> Option<AppRecord> {
        self.shared.with_state(|s| s.apps.get(name).cloned())
    }

    /// Changes the rack state directly (test set-up, e.g. an app stuck `updating`).
    pub fn update_state<R>(&self, f: impl FnOnce(&mut RackState) -> R) -> R {
        self.shared.with_state(f)
    }
}

/// A bound, not yet serving, mock rack.
pub struct MockRack {
    handle: MockRackHandle,
    listener: TcpListener,
    tls_config: Option<axum_server::tls_rustls::RustlsConfig>,
}

impl MockRack {
    /// Binds `addr` (port 0 picks a free port) and prepares state, record file and TLS.
    pub async fn bind(addr: SocketAddr, config: MockRackConfig) -> anyhow::Result<MockRack> {
        let listener = TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;

        let record_file = match &config.record {
            Some(path) => Some(Mutex::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("opening record file {}", path.display()))?,
            )),
            None => None,
        };

        let (tls, tls_config) = if config.tls {
            let (info, cfg) = make_tls()?;
            (Some(info), Some(cfg))
        } else {
            (None, None)
        };

        let host = match local.ip() {
            ip if ip.is_unspecified() => "127.0.0.1".to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{host}:{}", local.port());

        let shared = Arc::new(Shared {
            state: Mutex::new(RackState::seed(&config.version)),
            config,
            recorded: Mutex::new(Vec::new()),
            record_file,
        });

        Ok(MockRack {
            handle: MockRackHandle { shared, url, tls },
            listener,
            tls_config,
        })
    }

    /// A clonable handle for inspection while the rack serves.
    pub fn handle(&self) -> MockRackHandle {
        self.handle.clone()
    }

    pub fn url(&self) -> String {
        self.handle.url()
    }

    pub fn tls_fingerprint_sha256(&self) -> Option<String> {
        self.handle.tls_fingerprint_sha256()
    }

    pub fn tls_cert_pem(&self) -> Option<String> {
        self.handle.tls_cert_pem()
    }

    pub fn recorded(&self) -> Vec<RecordedRequest> {
        self.handle.recorded()
    }

    pub fn uploads(&self) -> Vec<UploadInfo> {
        self.handle.uploads()
    }

    pub fn state(&self) -> RackState {
        self.handle.state()
    }

    /// Serves until `shutdown` completes, then drains connections for up to two seconds.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let server_handle = axum_server::Handle::<SocketAddr>::new();
        let on_shutdown = server_handle.clone();
        tokio::spawn(async move {
            shutdown.await;
            on_shutdown.graceful_shutdown(Some(Duration::from_secs(2)));
        });

        let app = router(self.handle.shared.clone()).into_make_service();
        match self.tls_config {
            Some(tls) => {
                axum_server::from_tcp_rustls(self.listener, tls)?
                    .handle(server_handle)
                    .serve(app)
                    .await?
            }
            None => {
                axum_server::from_tcp(self.listener)?
                    .handle(server_handle)
                    .serve(app)
                    .await?
            }
        }
        Ok(())
    }

    /// Serves on a background task (needs a Tokio runtime). The returned value stops the rack
    /// when dropped or when [`RunningMockRack::shutdown`] is awaited.
    pub fn spawn(self) -> RunningMockRack {
        let handle = self.handle();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(self.run(async move {
            let _ = stopped.await;
        }));
        RunningMockRack {
            handle,
            stop: Some(stop),
            task: Some(task),
        }
    }
}

/// A mock rack serving on a background task; derefs to its [`MockRackHandle`].
pub struct RunningMockRack {
    handle: MockRackHandle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl RunningMockRack {
    pub fn handle(&self) -> MockRackHandle {
        self.handle.clone()
    }

    /// Stops accepting, drains for up to two seconds, and reports a serve error if any.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => match tokio::time::timeout(Duration::from_secs(5), task).await {
                Ok(joined) => joined?,
                Err(_) => anyhow::bail!("mock rack did not stop within 5s"),
            },
            None => Ok(()),
        }
    }
}

impl Deref for RunningMockRack {
    type Target = MockRackHandle;
    fn deref(&self) -> &MockRackHandle {
        &self.handle
    }
}

impl Drop for RunningMockRack {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, like the rack's startup cert.
fn make_tls() -> anyhow::Result<(TlsInfo, axum_server::tls_rustls::RustlsConfig)> {
    // Several rustls providers may be linked into one binary; name ours explicitly and make it
    // the process default too (an already-installed default is fine).
    let _ = rustls::crypto::ring::default_provider().install_default();

    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .context("generating the self-signed certificate")?;
    let cert_der = certified.cert.der().clone();
    let fingerprint_sha256 = hex::encode(Sha256::digest(cert_der.as_ref()));
    let cert_pem = certified.cert.pem();
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(
        rustls::pki_types::PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()),
    );

    let mut server_config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS protocol versions")?
    .with_no_client_auth()
    .with_single_cert(vec![cert_der], key_der)
    .context("TLS certificate")?;
    server_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];

    Ok((
        TlsInfo {
            fingerprint_sha256,
            cert_pem,
        },
        axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(server_config)),
    ))
}

/// The route table (a subset of convox `pkg/api/routes.go`). Plain routes and websocket routes
/// get different auth layers because the rack treats them differently.
fn router(shared: Arc<Shared>) -> Router {
    let http = Router::new()
        .route("/auth", get(system::auth_check))
        .route(
            "/system",
            get(system::system_get).put(system::system_update),
        )
        .route("/system/processes", get(system::system_processes))
        .route("/system/releases", get(system::system_releases))
        .route("/instances", get(system::instance_list))
        .route("/apps", get(apps::app_list).post(apps::app_create))
        .route(
            "/apps/{app}",
            get(apps::app_get)
                .put(apps::app_update)
                .delete(apps::app_delete),
        )
        .route("/apps/{app}/budget", get(apps::budget_get))
        .route("/apps/{app}/configs/{name}", get(apps::config_get))
        .route(
            "/apps/{app}/releases",
            get(apps::release_list).post(apps::release_create),
        )
        .route("/apps/{app}/releases/{id}", get(apps::release_get))
        .route(
            "/apps/{app}/releases/{id}/promote",
            post(apps::release_promote),
        )
        .route("/apps/{app}/services", get(apps::service_list))
        .route("/apps/{app}/services/{service}", put(apps::service_update))
        .route(
            "/apps/{app}/services/{service}/restart",
            post(apps::service_restart),
        )
        .route(
            "/apps/{app}/services/{service}/processes",
            post(processes::process_run),
        )
        .route("/apps/{app}/processes", get(processes::process_list))
        .route(
            "/apps/{app}/processes/{pid}",
            get(processes::process_get).delete(processes::process_stop),
        )
        .route(
            "/apps/{app}/objects/{*key}",
            post(builds::object_store)
                .head(builds::object_exists)
                .delete(builds::object_delete),
        )
        .route(
            "/apps/{app}/builds",
            get(builds::build_list).post(builds::build_create),
        )
        .route("/apps/{app}/builds/{id}", get(builds::build_get))
        .route_layer(middleware::from_fn_with_state(shared.clone(), auth_http));

    let websockets = Router::new()
        .route("/apps/{app}/logs", get(streams::app_logs))
        .route(
            "/apps/{app}/services/{service}/logs",
            get(streams::service_logs),
        )
        .route(
            "/apps/{app}/processes/{pid}/logs",
            get(streams::process_logs),
        )
        .route(
            "/apps/{app}/processes/{pid}/exec",
            get(streams::process_exec),
        )
        .route("/apps/{app}/builds/{id}/logs", get(streams::build_logs))
        .route("/system/logs", get(streams::system_logs))
        .route("/instances/{id}/shell", get(streams::instance_shell))
        .route_layer(middleware::from_fn_with_state(shared.clone(), auth_ws));

    http.merge(websockets)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(shared.clone(), frame))
        .with_state(shared)
}

/// gorilla/mux's answer for an unmatched path (also for a websocket path without `Upgrade`).
pub(crate) async fn not_found() -> Response {
    not_found_response()
}

pub(crate) fn not_found_response() -> Response {
    text_response(StatusCode::NOT_FOUND, "404 page not found\n")
}

pub(crate) fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn check_auth(password: &str, headers: &HeaderMap) -> AuthOutcome {
    if password.is_empty() {
        return AuthOutcome::Disabled;
    }
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return AuthOutcome::Missing;
    };
    let given = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then_some(rest.trim())
        })
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .and_then(|raw| {
            // Go's BasicAuth splits at the first colon; the username is ignored.
            let colon = raw.iter().position(|&b| b == b':')?;
            Some(raw[colon + 1..].to_vec())
        });
    match given {
        Some(pass) if constant_time_eq(&pass, password.as_bytes()) => AuthOutcome::Ok,
        _ => AuthOutcome::Invalid,
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Outermost layer: record the request, then stamp `Request-Id` and the rack's security headers
/// on whatever answers, and turn errors into JSON for clients that ask for it.
async fn frame(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let wants_json = header_str(headers, "accept").is_some_and(|accept| {
        accept.split(',').any(|part| {
            part.split(';')
                .next()
                .is_some_and(|mt| mt.trim() == "application/json")
        })
    });
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    shared.record(RecordedRequest {
        ts: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        method: method.to_string(),
        path: path.clone(),
        query: req.uri().query().map(str::to_string),
        request_id: header_str(headers, "x-request-id"),
        actor: header_str(headers, "convox-actor"),
        x_convox_actor: header_str(headers, "x-convox-actor"),
        auth: check_auth(&shared.config.password, headers),
        websocket: is_websocket_upgrade(headers),
    });

    let mut res = next.run(req).await;

    if wants_json {
        if let Some(ErrorMessage(message)) = res.extensions().get::<ErrorMessage>().cloned() {
            let status = res.status();
            let mut body = serde_json::json!({ "error": message }).to_string();
            body.push('\n');
            let mut json_res = Response::new(Body::from(body));
            *json_res.status_mut() = status;
            for (name, value) in res.headers() {
                if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                    json_res.headers_mut().append(name.clone(), value.clone());
                }
            }
            json_res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            res = json_res;
        }
    }

    let request_id = state::new_request_id();
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("request-id", v);
    }
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    tracing::info!(%method, %path, status = res.status().as_u16(), request_id, "request");
    res
}

/// Plain routes: a wrong or missing password is a 401 before the handler runs.
async fn auth_http(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    match check_auth(&shared.config.password, req.headers()) {
        AuthOutcome::Ok | AuthOutcome::Disabled => next.run(req).await,
        AuthOutcome::Invalid | AuthOutcome::Missing => unauthorized(),
    }
}

/// Marks a websocket request whose password was wrong; the handler upgrades and then reports
/// the error in-band, as the rack does.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AuthFailed;

async fn auth_ws(State(shared): State<Arc<Shared>>, mut req: Request, next: Next) -> Response {
    match check_auth(&shared.config.password, req.headers()) {
        AuthOutcome::Ok | AuthOutcome::Disabled => {}
        AuthOutcome::Invalid | AuthOutcome::Missing => {
            req.extensions_mut().insert(AuthFailed);
        }
    }
    next.run(req).await
}

fn unauthorized() -> Response {
    let mut res = ApiError::new(StatusCode::UNAUTHORIZED, "invalid authentication").into_response();
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"convox\""),
    );
    res
}

pub(crate) fn text_response(status: StatusCode, body: impl Into<String>) -> Response {
    let mut res = Response::new(Body::from(body.into()));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// The error message, kept on the response so [`frame`] can re-render it as JSON.
#[derive(Debug, Clone)]
struct ErrorMessage(String);

/// An API error: plain text `message\n` with the status, like Go's `http.Error`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = text_response(self.status, format!("{}\n", self.message));
        res.extensions_mut().insert(ErrorMessage(self.message));
        res
    }
}

/// A JSON reply the way stdapi renders one: 2-space indent and a trailing newline.
pub(crate) fn json_response<T: Serialize>(value: &T) -> Response {
    match serde_json::to_string_pretty(value) {
        Ok(mut body) => {
            body.push('\n');
            let mut res = Response::new(Body::from(body));
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            res
        }
        Err(e) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// The rack's answer to an action without a result.
pub(crate) fn ok_response() -> Response {
    text_response(StatusCode::OK, "ok\n")
}

/// Request options the way stdapi's `UnmarshalOptions` reads them: `param` options from the
/// form (url-encoded body, then the query string, as Go's `r.Form` merges them), `header`
/// options from the header of that exact name, never one for the other. (The CLI sends a
/// `Version: dev` header on every request, which must not read as a `version` param.)
pub(crate) struct Params {
    form: HashMap<String, String>,
    headers: HeaderMap,
}

impl Params {
    pub(crate) fn new(headers: &HeaderMap, query: Option<&str>, body: &Bytes) -> Params {
        let is_multipart =
            header_str(headers, "content-type").is_some_and(|ct| ct.starts_with("multipart/"));
        let mut form: HashMap<String, String> = HashMap::new();
        let body_pairs = (!is_multipart).then(|| url::form_urlencoded::parse(body));
        let query_pairs = query.map(|q| url::form_urlencoded::parse(q.as_bytes()));
        // Body values come first, and the first value of a name wins, as in Go.
        for (k, v) in body_pairs
            .into_iter()
            .flatten()
            .chain(query_pairs.into_iter().flatten())
        {
            form.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
        Params {
            form,
            headers: headers.clone(),
        }
    }

    /// A `param` option.
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        self.form.get(name).cloned()
    }

    /// A `header` option.
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        header_str(&self.headers, name)
    }

    pub(crate) fn get_bool(&self, name: &str) -> Option<bool> {
        self.get(name).map(|v| v == "true")
    }

    pub(crate) fn get_i64(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.get(name)
            .map(|v| {
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| ApiError::bad_request(format!("invalid {name}: {v}")))
            })
            .transpose()
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.form.contains_key(name)
    }
}

/// Decodes a url-encoded map value (`a=1&b=2`), the encoding stdsdk uses for map options.
pub(crate) fn decode_map(value: &str) -> std::collections::BTreeMap<String, String> {
    url::form_urlencoded::parse(value.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user_pass: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_pass)
        );
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&v).unwrap());
        h
    }

    #[test]
    fn auth_ignores_username_and_splits_at_first_colon() {
        assert_eq!(
            check_auth("s3cr3t", &basic("convox:s3cr3t")),
            AuthOutcome::Ok
        );
        assert_eq!(
            check_auth("s3cr3t", &basic("anyone:s3cr3t")),
            AuthOutcome::Ok
        );
        assert_eq!(check_auth("a:b", &basic("u:a:b")), AuthOutcome::Ok);
        assert_eq!(
            check_auth("s3cr3t", &basic("convox:nope")),
            AuthOutcome::Invalid
        );
        assert_eq!(
            check_auth("s3cr3t", &basic("nocolon")),
            AuthOutcome::Invalid
        );
        assert_eq!(
            check_auth("s3cr3t", &HeaderMap::new()),
            AuthOutcome::Missing
        );
        assert_eq!(check_auth("", &HeaderMap::new()), AuthOutcome::Disabled);
    }

    #[test]
    fn params_keep_form_and_headers_apart() {
        let mut h = HeaderMap::new();
        h.insert("command", HeaderValue::from_static("from-header"));
        h.insert("version", HeaderValue::from_static("dev"));
        let p = Params::new(
            &h,
            Some("limit=5&env=ignored"),
            &Bytes::from_static(b"command=from+form&env=A%3D1%0AB%3D2"),
        );
        assert_eq!(p.get("command").as_deref(), Some("from form"));
        assert_eq!(p.header("command").as_deref(), Some("from-header"));
        assert_eq!(p.get("env").as_deref(), Some("A=1\nB=2"));
        assert_eq!(p.get("limit").as_deref(), Some("5"));
        assert_eq!(p.get("version"), None);
        assert_eq!(p.get("missing"), None);
    }

    #[test]
    fn map_values_are_url_encoded() {
        let m = decode_map("node_type=t3.large&b=x%26y");
        assert_eq!(m.get("node_type").map(String::as_str), Some("t3.large"));
        assert_eq!(m.get("b").map(String::as_str), Some("x&y"));
    }
}
