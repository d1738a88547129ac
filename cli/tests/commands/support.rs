//! Test support: a small in-process fake gateway that implements the identity
//! API (README "Signing in") and the MFA routes the CLI calls (status, verify,
//! TOTP enrolment, backup codes, the WebAuthn browser page) on 127.0.0.1 port
//! 0, and a sandbox that runs
//! the real `rack-gateway` binary with its own HOME, config directory, browser
//! recorder and fake `convox`.
#![allow(dead_code)]
// Handlers answer early with a ready `Response`; boxing it would only add noise here.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use tokio::sync::oneshot;

pub const CLI: &str = env!("CARGO_BIN_EXE_rack-gateway");
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// A plain HTTP client for the test's own requests (the "browser").
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn random_secret(prefix: &str) -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    /// `X-MFA-TOTP`.
    pub mfa_code: Option<String>,
    pub body: Value,
}

/// What the browser step ends in, for a login state.
#[derive(Debug, Clone)]
enum Outcome {
    Pending,
    Ready { email: String },
    Failed { status: StatusCode, message: String },
}

struct LoginState {
    secret_sha256: String,
    outcome: Outcome,
    polls: u32,
}

#[derive(Debug, Clone)]
pub struct FakeSession {
    pub id: i64,
    pub email: String,
    pub role: String,
    pub expires_at: String,
    pub revoked: bool,
    pub mfa_verified: bool,
    pub mfa_method: Option<String>,
    /// Unix seconds.
    pub step_up_until: Option<i64>,
}

/// A person's MFA: methods as `status` lists them, the codes the fake accepts
/// (each once, as TOTP time steps are), backup codes left.
#[derive(Debug, Clone, Default)]
pub struct FakeMfa {
    pub methods: Vec<Value>,
    pub preferred: Option<String>,
    pub codes: Vec<String>,
    pub backup_codes_remaining: u32,
    pub locked: bool,
}

#[derive(Debug, Clone)]
struct FakeToken {
    record: Value,
    secret: String,
}

/// Knobs a test sets before (or while) the CLI runs.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Finish the browser step by itself as this email after this many pending polls.
    pub auto_browser: Option<(String, u32)>,
    /// Answer `/complete` with 503 this many times first (a gateway restarting).
    pub unavailable_polls: u32,
    /// Forget every login state (as after a restart or expiry): `/complete` gives 400.
    pub forget_states: bool,
    /// Pretend the `/complete` secret does not match.
    pub reject_secret: bool,
    /// MFA applies to every person: a sign-in completes restricted.
    pub mfa_enforced: bool,
}

#[derive(Default)]
struct Inner {
    users: HashMap<String, String>,
    states: HashMap<String, LoginState>,
    sessions: HashMap<String, FakeSession>,
    tokens: Vec<FakeToken>,
    recorded: Vec<Recorded>,
    behaviour: Behaviour,
    next_id: i64,
    mfa: HashMap<String, FakeMfa>,
    /// Enrolments started: method id → (email, the code that confirms it).
    pending_totp: HashMap<String, (String, String)>,
    /// Browser pages: id → (session token, purpose).
    browser_pages: HashMap<String, (String, String)>,
}

#[derive(Clone)]
pub struct FakeGateway {
    inner: Arc<Mutex<Inner>>,
    pub url: String,
    stop: Arc<Mutex<Option<oneshot::Sender<()>>>>,
}

const DOMAIN: &str = "example.com";

impl FakeGateway {
    /// Users admin@/deployer@/viewer@example.com with those roles.
    pub async fn start() -> FakeGateway {
        FakeGateway::start_with(Behaviour::default()).await
    }

    pub async fn start_with(behaviour: Behaviour) -> FakeGateway {
        let mut inner = Inner {
            behaviour,
            next_id: 1000,
            ..Inner::default()
        };
        for (email, role) in [
            ("admin@example.com", "admin"),
            ("deployer@example.com", "deployer"),
            ("viewer@example.com", "viewer"),
            ("unverified@example.com", "viewer"),
        ] {
            inner.users.insert(email.to_owned(), role.to_owned());
        }
        let inner = Arc::new(Mutex::new(inner));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake gateway");
        let addr: SocketAddr = listener.local_addr().expect("local addr");
        let url = format!("http://{addr}");
        let app = Router::new()
            .route("/health", get(health))
            .route("/api/v1/auth/cli/start", post(start_login))
            .route("/api/v1/auth/cli/complete", post(complete_login))
            .route("/api/v1/auth/logout", post(logout))
            .route("/api/v1/info", get(info))
            .route("/api/v1/api-tokens", get(list_tokens).post(create_token))
            .route(
                "/api/v1/api-tokens/{id}",
                get(get_token).delete(delete_token),
            )
            .route("/api/v1/auth/mfa/status", get(mfa_status))
            .route("/api/v1/auth/mfa/verify", post(mfa_verify))
            .route("/api/v1/auth/mfa/enroll/totp/start", post(totp_start))
            .route("/api/v1/auth/mfa/enroll/totp/confirm", post(totp_confirm))
            .route(
                "/api/v1/auth/mfa/backup-codes/regenerate",
                post(regenerate_backup_codes),
            )
            .route(
                "/api/v1/auth/mfa/webauthn/browser/start",
                post(webauthn_browser_start),
            )
            .route("/fake-browser/webauthn/{id}", get(webauthn_page))
            .route("/fake-browser/authorize", get(browser_step))
            .fallback(fallback)
            .with_state(Shared {
                inner: inner.clone(),
                url: url.clone(),
            });
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        FakeGateway {
            inner,
            url,
            stop: Arc::new(Mutex::new(Some(stop))),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.lock().behaviour = behaviour;
    }

    /// A live session, as if the user had logged in earlier.
    pub fn add_session(&self, email: &str, role: &str) -> (String, FakeSession) {
        let mut inner = self.lock();
        inner.next_id += 1;
        let session = FakeSession {
            id: inner.next_id,
            email: email.to_owned(),
            role: role.to_owned(),
            expires_at: (chrono::Utc::now() + chrono::Duration::days(90))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            revoked: false,
            mfa_verified: true,
            mfa_method: Some("totp".into()),
            step_up_until: None,
        };
        let token = random_secret("rgw_sess_");
        inner.sessions.insert(token.clone(), session.clone());
        (token, session)
    }

    /// Give `email` these MFA methods and codes.
    pub fn set_mfa(&self, email: &str, mfa: FakeMfa) {
        self.lock().mfa.insert(email.to_owned(), mfa);
    }

    pub fn mfa_of(&self, email: &str) -> FakeMfa {
        self.lock().mfa.get(email).cloned().unwrap_or_default()
    }

    /// Change a session (its MFA state).
    pub fn update_session(&self, token: &str, change: impl FnOnce(&mut FakeSession)) {
        if let Some(session) = self.lock().sessions.get_mut(token) {
            change(session);
        }
    }

    /// The session whose email is `email` (the last one made).
    pub fn session_of(&self, email: &str) -> Option<FakeSession> {
        let inner = self.lock();
        inner
            .sessions
            .values()
            .filter(|s| s.email == email)
            .max_by_key(|s| s.id)
            .cloned()
    }

    /// The code that confirms the TOTP enrolment `method_id`.
    pub fn confirming_code(&self, method_id: &str) -> Option<String> {
        self.lock()
            .pending_totp
            .get(method_id)
            .map(|(_, code)| code.clone())
    }

    pub fn revoke_session(&self, token: &str) {
        if let Some(s) = self.lock().sessions.get_mut(token) {
            s.revoked = true;
        }
    }

    pub fn session(&self, token: &str) -> Option<FakeSession> {
        self.lock().sessions.get(token).cloned()
    }

    /// An API token owned by `email`, returned with its secret.
    pub fn add_api_token(&self, name: &str, role: &str, email: &str) -> (String, Value) {
        let mut inner = self.lock();
        inner.next_id += 1;
        let record = json!({
            "id": format!("tok-{}", inner.next_id),
            "name": name,
            "role": role,
            "user_email": email,
            "expires_at": null,
            "created_at": "2026-01-01T00:00:00Z",
            "created_by": email,
            "revoked_at": null,
        });
        let secret = random_secret("rgw_token_");
        inner.tokens.push(FakeToken {
            record: record.clone(),
            secret: secret.clone(),
        });
        (secret, record)
    }

    pub fn recorded(&self) -> Vec<Recorded> {
        self.lock().recorded.clone()
    }

    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.recorded()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    pub fn stop(&self) {
        if let Some(stop) = self.stop.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for FakeGateway {
    fn drop(&mut self) {
        if Arc::strong_count(&self.stop) == 1 {
            self.stop();
        }
    }
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    url: String,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, method: &str, path: &str, headers: &HeaderMap, body: Value) {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        self.lock().recorded.push(Recorded {
            method: method.to_owned(),
            path: path.to_owned(),
            authorization: header("authorization"),
            mfa_code: header("x-mfa-totp"),
            body,
        });
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn unauthorized(reason: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [("x-error-reason", reason)],
        Json(json!({"error": "authentication required"})),
    )
        .into_response()
}

/// Who the bearer is: (email, role, credential JSON), or a 401.
fn principal(
    inner: &Inner,
    headers: &HeaderMap,
) -> Result<(Option<(String, String)>, Value), Response> {
    let secret = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| unauthorized("missing"))?;
    if let Some(session) = inner.sessions.get(secret) {
        if session.revoked {
            return Err(unauthorized("revoked"));
        }
        return Ok((
            Some((session.email.clone(), session.role.clone())),
            json!({"kind": "session", "id": session.id, "channel": "cli", "expires_at": session.expires_at}),
        ));
    }
    if let Some(token) = inner.tokens.iter().find(|t| t.secret == secret) {
        if !token.record["revoked_at"].is_null() {
            return Err(unauthorized("revoked"));
        }
        let email = token.record["user_email"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let role = token.record["role"].as_str().unwrap_or_default().to_owned();
        return Ok((
            Some((email, role)),
            json!({"kind": "api_token", "id": token.record["id"], "name": token.record["name"], "expires_at": token.record["expires_at"]}),
        ));
    }
    Err(unauthorized("unknown"))
}

fn require_admin(inner: &Inner, headers: &HeaderMap, permission: &str) -> Result<String, Response> {
    let (who, _) = principal(inner, headers)?;
    match who {
        Some((email, role)) if role == "admin" => Ok(email),
        _ => Err(error(
            StatusCode::FORBIDDEN,
            &format!("permission denied: {permission} requires admin role"),
        )),
    }
}

async fn health(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    shared.record("GET", "/health", &headers, Value::Null);
    Json(json!({"status": "ok", "service": "rack-gateway"})).into_response()
}

async fn start_login(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    shared.record("POST", "/api/v1/auth/cli/start", &headers, body.clone());
    let Some(hash) = body["cli_secret_sha256"]
        .as_str()
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "cli_secret_sha256 must be 64 hex digits",
        );
    };
    let state = random_secret("st_");
    shared.lock().states.insert(
        state.clone(),
        LoginState {
            secret_sha256: hash.to_owned(),
            outcome: Outcome::Pending,
            polls: 0,
        },
    );
    Json(json!({
        "auth_url": format!("{}/fake-browser/authorize?state={state}", shared.url),
        "state": state,
        "expires_at": (chrono::Utc::now() + chrono::Duration::minutes(10)).to_rfc3339(),
    }))
    .into_response()
}

/// What the provider + callback would decide for this email.
fn browser_outcome(inner: &Inner, email: &str) -> Outcome {
    if !email.ends_with(&format!("@{DOMAIN}")) {
        return Outcome::Failed {
            status: StatusCode::FORBIDDEN,
            message: "email domain not allowed".into(),
        };
    }
    if email.starts_with("unverified@") {
        return Outcome::Failed {
            status: StatusCode::FORBIDDEN,
            message: "email not verified".into(),
        };
    }
    if !inner.users.contains_key(email) {
        return Outcome::Failed {
            status: StatusCode::UNAUTHORIZED,
            message: "user not authorized".into(),
        };
    }
    Outcome::Ready {
        email: email.to_owned(),
    }
}

/// The browser step: `?state=…&login_hint=<email>` signs in as that email.
async fn browser_step(
    State(shared): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let email = query
        .get("login_hint")
        .cloned()
        .unwrap_or_else(|| "admin@example.com".into());
    let mut inner = shared.lock();
    let outcome = browser_outcome(&inner, &email);
    let Some(state) = query.get("state").and_then(|s| inner.states.get_mut(s)) else {
        return (StatusCode::BAD_REQUEST, "unknown state").into_response();
    };
    state.outcome = outcome;
    (
        StatusCode::OK,
        format!("Signed in as {email}. Return to your terminal."),
    )
        .into_response()
}

async fn complete_login(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    shared.record("POST", "/api/v1/auth/cli/complete", &headers, body.clone());
    let mut inner = shared.lock();
    if inner.behaviour.unavailable_polls > 0 {
        inner.behaviour.unavailable_polls -= 1;
        return error(StatusCode::SERVICE_UNAVAILABLE, "audit store unavailable");
    }
    let state_key = body["state"].as_str().unwrap_or_default().to_owned();
    if inner.behaviour.forget_states {
        inner.states.clear();
    }
    let auto = inner.behaviour.auto_browser.clone();
    let reject_secret = inner.behaviour.reject_secret;
    let decided = auto
        .as_ref()
        .map(|(email, _)| browser_outcome(&inner, email));
    let Some(state) = inner.states.get_mut(&state_key) else {
        return error(StatusCode::BAD_REQUEST, "invalid or expired state");
    };
    let presented = sha256_hex(body["cli_secret"].as_str().unwrap_or_default());
    if reject_secret || presented != state.secret_sha256 {
        return error(
            StatusCode::FORBIDDEN,
            "login was started by a different client",
        );
    }
    if let (Some((_, after)), Some(decided), Outcome::Pending) = (&auto, decided, &state.outcome) {
        if state.polls >= *after {
            state.outcome = decided;
        }
    }
    state.polls += 1;
    let outcome = state.outcome.clone();
    match outcome {
        Outcome::Pending => {
            (StatusCode::ACCEPTED, Json(json!({"status": "pending"}))).into_response()
        }
        Outcome::Failed { status, message } => {
            inner.states.remove(&state_key);
            error(status, &message)
        }
        Outcome::Ready { email } => {
            inner.states.remove(&state_key);
            let role = inner.users.get(&email).cloned().unwrap_or_default();
            inner.next_id += 1;
            let session = FakeSession {
                id: inner.next_id,
                email: email.clone(),
                role: role.clone(),
                expires_at: (chrono::Utc::now() + chrono::Duration::days(90))
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                revoked: false,
                mfa_verified: false,
                mfa_method: None,
                step_up_until: None,
            };
            let enforced = inner.behaviour.mfa_enforced;
            let enrolled = inner.mfa.get(&email).is_some_and(|m| !m.methods.is_empty());
            // The CLI records what the gateway says; this fake says `false` unless a
            // verification happened, as the gateway does for a session made before MFA.
            let session = FakeSession {
                mfa_verified: false,
                mfa_method: None,
                step_up_until: None,
                ..session
            };
            let token = random_secret("rgw_sess_");
            inner.sessions.insert(token.clone(), session.clone());
            Json(json!({
                "token": token,
                "mfa_required": enforced && enrolled,
                "enrollment_required": enforced && !enrolled,
                "email": email,
                "name": "Test User",
                "role": role,
                "expires_at": session.expires_at,
                "session_id": session.id,
                "channel": "cli",
                "device_id": body["device_id"],
                "device_name": body["device_name"],
                "mfa_verified": session.mfa_verified,
            }))
            .into_response()
        }
    }
}

fn email_of_token(inner: &Inner, token: &str) -> String {
    inner
        .sessions
        .get(token)
        .map(|s| s.email.clone())
        .unwrap_or_default()
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

fn mfa_refusal(reason: &str, message: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        [("x-error-reason", reason)],
        Json(json!({ "error": message })),
    )
        .into_response()
}

/// The bearer's session token, or a 401.
fn session_token(inner: &Inner, headers: &HeaderMap) -> Result<String, Response> {
    let secret = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| unauthorized("missing"))?;
    match inner.sessions.get(secret) {
        Some(s) if !s.revoked => Ok(secret.to_owned()),
        _ => Err(unauthorized("unknown")),
    }
}

fn status_json(inner: &Inner, token: &str) -> Value {
    let session = &inner.sessions[token];
    let mfa = inner.mfa.get(&session.email).cloned().unwrap_or_default();
    let enrolled = !mfa.methods.is_empty();
    let enforced = inner.behaviour.mfa_enforced;
    let until = session
        .step_up_until
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|t| t.to_rfc3339());
    json!({
        "enrolled": enrolled,
        "methods": mfa.methods,
        "preferred_method": mfa.preferred,
        "mfa_verified": session.mfa_verified,
        "mfa_method": session.mfa_method,
        "recent_step_up_at": until.as_ref().map(|_| chrono::Utc::now().to_rfc3339()),
        "recent_step_up_expires_at": until,
        "step_up_window_seconds": 600,
        "backup_codes_remaining": mfa.backup_codes_remaining,
        "locked": mfa.locked,
        "enrollment_required": enforced && !enrolled && !session.mfa_verified,
        "mfa_required": enforced && enrolled && !session.mfa_verified,
    })
}

async fn mfa_status(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    shared.record("GET", "/api/v1/auth/mfa/status", &headers, Value::Null);
    let inner = shared.lock();
    match session_token(&inner, &headers) {
        Ok(token) => Json(status_json(&inner, &token)).into_response(),
        Err(response) => response,
    }
}

/// Accept `code` once for `email`: one of its codes, or (if any remain) a
/// backup code, spelled `BACKUP…` here. Returns the kind that verified.
fn use_code(inner: &mut Inner, email: &str, code: &str) -> Option<String> {
    let mfa = inner.mfa.get_mut(email)?;
    if let Some(at) = mfa.codes.iter().position(|c| c == code) {
        mfa.codes.remove(at);
        let kind = if code.len() == 44 { "yubikey" } else { "totp" };
        return Some(kind.to_owned());
    }
    if code.starts_with("BACKUP") && mfa.backup_codes_remaining > 0 {
        mfa.backup_codes_remaining -= 1;
        return Some("backup_code".to_owned());
    }
    None
}

async fn mfa_verify(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    shared.record("POST", "/api/v1/auth/mfa/verify", &headers, body.clone());
    let mut inner = shared.lock();
    let token = match session_token(&inner, &headers) {
        Ok(token) => token,
        Err(response) => return response,
    };
    let email = inner.sessions[&token].email.clone();
    let code = body["code"].as_str().unwrap_or_default().to_owned();
    match use_code(&mut inner, &email, &code) {
        Some(kind) => {
            let session = inner.sessions.get_mut(&token).expect("session");
            session.mfa_verified = true;
            session.mfa_method = Some(kind.clone());
            session.step_up_until = Some(now_secs() + 600);
            Json(json!({"verified": true, "method": kind})).into_response()
        }
        None => error(StatusCode::BAD_REQUEST, "invalid MFA code"),
    }
}

async fn totp_start(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    shared.record(
        "POST",
        "/api/v1/auth/mfa/enroll/totp/start",
        &headers,
        body.clone(),
    );
    let mut inner = shared.lock();
    let token = match session_token(&inner, &headers) {
        Ok(token) => token,
        Err(response) => return response,
    };
    let email = inner.sessions[&token].email.clone();
    inner.next_id += 1;
    let method_id = format!("m-{}", inner.next_id);
    let code = format!("{:06}", inner.next_id % 1_000_000);
    inner
        .pending_totp
        .insert(method_id.clone(), (email.clone(), code));
    Json(json!({
        "method_id": method_id,
        "secret": "JBSWY3DPEHPK3PXP",
        "otpauth_url": format!("otpauth://totp/rack-gateway:{email}?secret=JBSWY3DPEHPK3PXP&issuer=rack-gateway"),
        "qr_svg": "<svg/>",
    }))
    .into_response()
}

async fn totp_confirm(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    shared.record(
        "POST",
        "/api/v1/auth/mfa/enroll/totp/confirm",
        &headers,
        body.clone(),
    );
    let mut inner = shared.lock();
    let token = match session_token(&inner, &headers) {
        Ok(token) => token,
        Err(response) => return response,
    };
    let method_id = body["method_id"].as_str().unwrap_or_default().to_owned();
    let Some((email, code)) = inner.pending_totp.get(&method_id).cloned() else {
        return error(StatusCode::NOT_FOUND, "no such enrolment");
    };
    if body["code"].as_str() != Some(code.as_str()) {
        return error(StatusCode::BAD_REQUEST, "invalid TOTP code");
    }
    inner.pending_totp.remove(&method_id);
    let mfa = inner.mfa.entry(email).or_default();
    mfa.methods.push(json!({
        "id": method_id, "kind": "totp", "label": body.get("label").cloned().unwrap_or(json!("Authenticator")),
        "cli_compatible": true, "disabled": false, "created_at": chrono::Utc::now().to_rfc3339(),
        "last_used_at": null,
    }));
    // The first method verifies a session waiting to enrol; it opens no step-up window.
    let session = inner.sessions.get_mut(&token).expect("session");
    if !session.mfa_verified {
        session.mfa_verified = true;
        session.mfa_method = Some("totp".into());
    }
    // The first method comes with the first backup codes, as the gateway does.
    let owner = email_of_token(&inner, &token);
    let mut answer = json!({"method": {"id": method_id, "kind": "totp"}, "mfa_verified": true});
    let mfa = inner.mfa.entry(owner).or_default();
    if mfa.methods.len() == 1 {
        mfa.backup_codes_remaining = 10;
        answer["backup_codes"] =
            json!((0..10).map(|i| format!("FIRST{i:07X}")).collect::<Vec<_>>());
    }
    Json(answer).into_response()
}

/// `step_up`: a fresh window, or a code in `X-MFA-TOTP`.
async fn regenerate_backup_codes(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    shared.record(
        "POST",
        "/api/v1/auth/mfa/backup-codes/regenerate",
        &headers,
        Value::Null,
    );
    let mut inner = shared.lock();
    let token = match session_token(&inner, &headers) {
        Ok(token) => token,
        Err(response) => return response,
    };
    let session = inner.sessions[&token].clone();
    let fresh = session.step_up_until.is_some_and(|t| t > now_secs());
    if !fresh {
        let proof = headers
            .get("x-mfa-totp")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let verified =
            proof.is_some_and(|code| use_code(&mut inner, &session.email, &code).is_some());
        if !verified {
            return mfa_refusal(
                "mfa_step_up_required",
                "MFA step-up required for auth:mfa_backup_codes:generate",
            );
        }
        if let Some(s) = inner.sessions.get_mut(&token) {
            s.step_up_until = Some(now_secs() + 600);
        }
    }
    inner
        .mfa
        .entry(session.email)
        .or_default()
        .backup_codes_remaining = 10;
    let codes: Vec<String> = (0..10).map(|i| format!("BACKUP{i:06X}")).collect();
    Json(json!({ "codes": codes })).into_response()
}

async fn webauthn_browser_start(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    shared.record(
        "POST",
        "/api/v1/auth/mfa/webauthn/browser/start",
        &headers,
        body.clone(),
    );
    let mut inner = shared.lock();
    let token = match session_token(&inner, &headers) {
        Ok(token) => token,
        Err(response) => return response,
    };
    let purpose = body["purpose"].as_str().unwrap_or_default().to_owned();
    if purpose != "login" && purpose != "step_up" {
        return error(StatusCode::BAD_REQUEST, "purpose must be login or step_up");
    }
    inner.next_id += 1;
    let id = format!("wa-{}", inner.next_id);
    inner.browser_pages.insert(id.clone(), (token, purpose));
    Json(json!({
        "url": format!("{}/fake-browser/webauthn/{id}", shared.url),
        "expires_at": (chrono::Utc::now() + chrono::Duration::minutes(5)).to_rfc3339(),
    }))
    .into_response()
}

/// The page the CLI opens: visiting it stands for a successful assertion.
async fn webauthn_page(State(shared): State<Shared>, UrlPath(id): UrlPath<String>) -> Response {
    let mut inner = shared.lock();
    let Some((token, _purpose)) = inner.browser_pages.remove(&id) else {
        return (StatusCode::NOT_FOUND, "used or unknown").into_response();
    };
    if let Some(session) = inner.sessions.get_mut(&token) {
        session.mfa_verified = true;
        session.mfa_method = Some("webauthn".into());
        session.step_up_until = Some(now_secs() + 600);
    }
    (StatusCode::OK, "Verified. Return to your terminal.").into_response()
}

async fn logout(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    shared.record("POST", "/api/v1/auth/logout", &headers, Value::Null);
    let mut inner = shared.lock();
    let secret = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    match inner.sessions.get_mut(&secret) {
        Some(session) if !session.revoked => {
            session.revoked = true;
            Json(json!({"status": "logged_out"})).into_response()
        }
        _ => unauthorized("unknown"),
    }
}

async fn info(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    shared.record("GET", "/api/v1/info", &headers, Value::Null);
    let inner = shared.lock();
    match principal(&inner, &headers) {
        Err(response) => response,
        Ok((who, credential)) => Json(json!({
            "user": who.map(|(email, role)| json!({"email": email, "name": "Test User", "role": role})),
            "credential": credential,
            "rack": {"name": "fake-rack"},
            "version": {"gateway": "9.9.9-fake"},
        }))
        .into_response(),
    }
}

async fn list_tokens(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    shared.record("GET", "/api/v1/api-tokens", &headers, Value::Null);
    let inner = shared.lock();
    if let Err(response) = require_admin(&inner, &headers, "gateway:api_token:read") {
        return response;
    }
    Json(Value::Array(
        inner.tokens.iter().map(|t| t.record.clone()).collect(),
    ))
    .into_response()
}

async fn get_token(
    State(shared): State<Shared>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    shared.record(
        "GET",
        &format!("/api/v1/api-tokens/{id}"),
        &headers,
        Value::Null,
    );
    let inner = shared.lock();
    if let Err(response) = require_admin(&inner, &headers, "gateway:api_token:read") {
        return response;
    }
    match inner.tokens.iter().find(|t| t.record["id"] == id.as_str()) {
        Some(t) => Json(t.record.clone()).into_response(),
        None => error(StatusCode::NOT_FOUND, "api token not found"),
    }
}

async fn create_token(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    shared.record("POST", "/api/v1/api-tokens", &headers, body.clone());
    let mut inner = shared.lock();
    let creator = match require_admin(&inner, &headers, "gateway:api_token:create") {
        Ok(email) => email,
        Err(response) => return response,
    };
    // `always` for a person with MFA: a code on this very request.
    if inner
        .mfa
        .get(&creator)
        .is_some_and(|m| !m.methods.is_empty())
    {
        let proof = headers
            .get("x-mfa-totp")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if proof.is_none_or(|code| use_code(&mut inner, &creator, &code).is_none()) {
            return mfa_refusal(
                "mfa_step_up_required",
                "MFA step-up required for gateway:api_token:create",
            );
        }
    }
    inner.next_id += 1;
    let record = json!({
        "id": format!("tok-{}", inner.next_id),
        "name": body["name"],
        "role": body["role"],
        "user_email": body.get("user_email").cloned().unwrap_or(json!(creator)),
        "expires_at": body.get("expires_at").cloned().unwrap_or(Value::Null),
        "created_at": chrono::Utc::now().to_rfc3339(),
        "created_by": creator,
        "revoked_at": null,
    });
    let secret = random_secret("rgw_token_");
    inner.tokens.push(FakeToken {
        record: record.clone(),
        secret: secret.clone(),
    });
    let mut response = record;
    response["token"] = json!(secret);
    (StatusCode::CREATED, Json(response)).into_response()
}

async fn delete_token(
    State(shared): State<Shared>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Response {
    shared.record(
        "DELETE",
        &format!("/api/v1/api-tokens/{id}"),
        &headers,
        Value::Null,
    );
    let mut inner = shared.lock();
    if let Err(response) = require_admin(&inner, &headers, "gateway:api_token:delete") {
        return response;
    }
    match inner
        .tokens
        .iter_mut()
        .find(|t| t.record["id"] == id.as_str())
    {
        Some(t) => {
            t.record["revoked_at"] = json!(chrono::Utc::now().to_rfc3339());
            Json(t.record.clone()).into_response()
        }
        None => error(StatusCode::NOT_FOUND, "api token not found"),
    }
}

async fn fallback(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    shared.record(method.as_str(), uri.path(), &headers, Value::Null);
    error(StatusCode::NOT_FOUND, "not found")
}

/// The result of one CLI run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn assert_ok(&self) -> &Run {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn assert_error(&self, message: &str) -> &Run {
        assert_eq!(
            self.code, 1,
            "expected exit 1\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        assert!(
            self.stderr.contains(&format!("Error: {message}")),
            "stderr should contain {message:?}:\n{}",
            self.stderr
        );
        self
    }
}

/// A HOME, config directory, recording browser and fake convox of the test's own.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

pub const FAKE_CONVOX: &str = r#"#!/bin/sh
# Fake convox: shows what it was given, reads stdin when asked, exits as told.
echo "RACK_URL=$RACK_URL"
for arg in "$@"; do echo "ARG=$arg"; done
if [ -n "$FAKE_CONVOX_READ_STDIN" ]; then
  while IFS= read -r line; do echo "STDIN=$line"; done
fi
if [ -n "$FAKE_CONVOX_MARKER" ]; then touch "$FAKE_CONVOX_MARKER"; fi
echo "fake convox stderr" >&2
exit "${FAKE_CONVOX_EXIT:-0}"
"#;

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).expect("home");
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).expect("bin");
        write_executable(&bin.join("convox"), FAKE_CONVOX);
        let browser_log = dir.path().join("browser.log");
        write_executable(
            &bin.join("record-browser"),
            &format!("#!/bin/sh\necho \"$1\" >> '{}'\n", browser_log.display()),
        );
        let env = vec![
            ("HOME".to_owned(), home.display().to_string()),
            ("PATH".to_owned(), "/usr/bin:/bin".to_owned()),
            (
                "GATEWAY_CLI_CONFIG_DIR".to_owned(),
                dir.path().join("config").display().to_string(),
            ),
            (
                "CONVOX_BIN".to_owned(),
                bin.join("convox").display().to_string(),
            ),
            (
                "BROWSER".to_owned(),
                bin.join("record-browser").display().to_string(),
            ),
        ];
        Sandbox { dir, env }
    }

    pub fn set_env(&mut self, name: &str, value: impl Into<String>) {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.to_owned(), value.into()));
    }

    pub fn remove_env(&mut self, name: &str) {
        self.env.retain(|(n, _)| n != name);
    }

    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    pub fn config_path(&self) -> PathBuf {
        self.config_dir().join("config.json")
    }

    pub fn browser_log(&self) -> PathBuf {
        self.dir.path().join("browser.log")
    }

    pub fn config(&self) -> Value {
        let bytes = std::fs::read(self.config_path()).expect("config.json exists");
        serde_json::from_slice(&bytes).expect("config.json is JSON")
    }

    pub fn write_config(&self, config: Value) {
        std::fs::create_dir_all(self.config_dir()).expect("config dir");
        std::fs::write(
            self.config_path(),
            serde_json::to_vec_pretty(&config).expect("json"),
        )
        .expect("write config");
    }

    /// A config with one logged-in rack (current) at `url`.
    pub fn logged_in(&self, rack: &str, url: &str, token: &str, email: &str) {
        let expires = (chrono::Utc::now() + chrono::Duration::days(90)).to_rfc3339();
        self.write_config(json!({
            "current": rack,
            "machine_id": "11111111-2222-3333-4444-555555555555",
            "mfa_preference": "default",
            "gateways": {rack: {
                "url": url, "token": token, "email": email, "expires_at": expires,
                "session_id": 7, "channel": "cli", "device_id": "11111111-2222-3333-4444-555555555555",
                "device_name": "test-host", "mfa_verified": false
            }}
        }));
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(CLI);
        command
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        command.stdin(std::process::Stdio::null());
        command.kill_on_drop(true);
        command
    }

    pub async fn run(&self, args: &[&str]) -> Run {
        output(self.command(args)).await
    }

    /// Run on a pseudo-terminal (util-linux `script`), typing `input`; `None`
    /// (and a note) where `script` is not installed.
    pub async fn run_on_terminal(&self, args: &[&str], input: &str) -> Option<Run> {
        let script = Path::new("/usr/bin/script");
        if !script.is_file() {
            eprintln!("skipped: /usr/bin/script (util-linux) is not installed");
            return None;
        }
        let quoted: Vec<String> = std::iter::once(CLI)
            .chain(args.iter().copied())
            .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
            .collect();
        let mut command = tokio::process::Command::new(script);
        command
            .args(["-qec", &quoted.join(" "), "/dev/null"])
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("spawn script");
        let mut stdin = child.stdin.take().expect("stdin");
        use tokio::io::AsyncWriteExt as _;
        stdin.write_all(input.as_bytes()).await.expect("type");
        let out = tokio::time::timeout(RUN_TIMEOUT, child.wait_with_output())
            .await
            .expect("finished in time")
            .expect("output");
        drop(stdin);
        // On a terminal stdout and stderr are one stream (with CRLF line ends).
        let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
        Some(Run {
            code: out.status.code().unwrap_or(-1),
            stdout: text.clone(),
            stderr: text,
        })
    }
}

pub async fn output(mut command: tokio::process::Command) -> Run {
    command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = command.spawn().expect("spawn rack-gateway");
    let out = tokio::time::timeout(RUN_TIMEOUT, child.wait_with_output())
        .await
        .expect("rack-gateway finished in time")
        .expect("rack-gateway output");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn write_executable(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, body).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Wait (bounded) until `path` has a line, and return the first.
pub async fn first_line_of(path: &Path) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Some(line) = text.lines().next().filter(|l| !l.is_empty()) {
                return line.to_owned();
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} was never written",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A loopback URL where nothing listens.
pub fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}
