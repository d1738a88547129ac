//! Shared set-up for the rack proxy tests: a mock rack in-process (recording
//! every request it receives), a gateway pointed at it, credentials per role,
//! a raw HTTP/1.1 client for requests no URL library would send as written,
//! and readers for the proxy's events.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use events::{Actor, Source};
use gateway::accounts::api_tokens::{self, NewToken};
use gateway::accounts::users::{self, Requester};
use gateway::auth::secrets::{self, SecretKind};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tools::mock_rack::{MockRack, MockRackConfig, RunningMockRack};

use crate::common::{spawn_app_with, TestApp};

/// The rack's own password in these tests (the gateway holds it; clients never see it).
pub const RACK_TOKEN: &str = "rack-secret-7c1d2e3f4a5b";

pub const PREFIX: &str = "/api/v1/rack-proxy";

pub const ROLES: [&str; 6] = ["viewer", "ops", "deployer", "admin", "cicd", "auditor"];

pub struct Rack {
    pub rack: RunningMockRack,
    /// The `--record` file the mock appends to.
    pub record_dir: tempfile::TempDir,
}

impl std::ops::Deref for Rack {
    type Target = RunningMockRack;
    fn deref(&self) -> &RunningMockRack {
        &self.rack
    }
}

impl Rack {
    /// Request ids (our `X-Request-Id`) of everything the rack received, from its record file.
    pub fn recorded_file(&self) -> Vec<tools::mock_rack::RecordedRequest> {
        let text =
            std::fs::read_to_string(self.record_dir.path().join("rack.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).expect("record line"))
            .collect()
    }

    /// Whether the rack received a request with this id.
    pub fn saw(&self, request_id: &str) -> bool {
        self.recorded()
            .iter()
            .any(|r| r.request_id.as_deref() == Some(request_id))
    }
}

/// A service `convox run` may start processes in (the seed app's `web` and
/// `worker` are refused by the default policy).
pub fn add_service(rack: &Rack, name: &str) {
    rack.update_state(|state| {
        let app = state
            .apps
            .get_mut(tools::mock_rack::SEED_APP)
            .expect("seed app");
        let mut service = app.services[0].clone();
        service.name = name.to_owned();
        app.services.push(service);
    });
}

pub async fn start_rack() -> Rack {
    start_rack_with(MockRackConfig::default()).await
}

pub async fn start_rack_with(config: MockRackConfig) -> Rack {
    let record_dir = tempfile::tempdir().expect("tempdir");
    let config = MockRackConfig {
        password: RACK_TOKEN.to_owned(),
        record: Some(record_dir.path().join("rack.jsonl")),
        ..config
    };
    let rack = MockRack::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config)
        .await
        .expect("bind mock rack")
        .spawn();
    Rack { rack, record_dir }
}

/// A gateway in front of `rack_url`, request lines off (tests read events),
/// failed-authentication limit out of the way unless the test sets it.
pub async fn spawn_gateway(
    rack_url: &str,
    configure: impl FnOnce(&mut gateway::settings::Env),
) -> TestApp {
    let rack_url = rack_url.to_owned();
    spawn_app_with(move |env| {
        env.set("RACK_HOST", rack_url);
        env.set("RACK_TOKEN", RACK_TOKEN);
        env.set("RACK_NAME", "test-rack");
        env.set("REQUEST_LOG", "off");
        env.set("PROXY_AUTH_FAILURE_LIMIT", "1000");
        configure(env);
    })
    .await
}

pub fn requester() -> Requester {
    Requester {
        actor: Actor::system("proxy-test"),
        source: Source::default(),
    }
}

/// An API token with `role` and no owner.
pub async fn token(app: &TestApp, role: &str) -> String {
    let name = format!(
        "t-{role}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    api_tokens::create(
        &app.pool,
        &app.state.appender,
        &requester(),
        NewToken {
            name: &name,
            role,
            user_email: None,
            expires_at: None,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("create {role} token: {e}"))
    .secret
}

/// One token per role, in [`ROLES`] order.
pub async fn tokens(app: &TestApp) -> Vec<(&'static str, String)> {
    let mut all = Vec::new();
    for role in ROLES {
        all.push((role, token(app, role).await));
    }
    all
}

/// A user, and a CLI session for them (as the sign-in flow would record it).
pub async fn session_for(app: &TestApp, email: &str, role: &str) -> String {
    let user = users::add(
        &app.pool,
        &app.state.appender,
        &requester(),
        email,
        role,
        None,
    )
    .await
    .expect("add user");
    let secret = secrets::generate(SecretKind::Session).expect("secret");
    let payload = events::catalogue::SessionCreated {
        session_id: uuid::Uuid::new_v4(),
        user_id: user.id,
        email: user.email.clone(),
        channel: "cli".into(),
        token_sha256: secret.sha256.clone(),
        device_id: None,
        device_name: None,
        device_os: None,
        client_version: None,
        expires_at: (chrono::Utc::now() + chrono::Duration::days(90))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    app.state
        .appender
        .append(events::catalogue::EventPayload::draft(
            &payload,
            Actor::system("proxy-test"),
        ))
        .await
        .expect("session.created");
    secret.secret
}

/// `Basic base64(convox:<secret>)`, as the CLI sends it.
pub fn basic(secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("convox:{secret}"))
    )
}

pub fn proxy_url(app: &TestApp, path: &str) -> String {
    app.url(&format!("{PREFIX}{path}"))
}

/// `X-Request-Id` of a gateway answer.
pub fn request_id(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("every proxy answer carries X-Request-Id")
        .to_owned()
}

/// Every `proxy.request` / `proxy.response` / `rate_limit.exceeded` event: (seq, type, data).
pub async fn proxy_events(app: &TestApp) -> Vec<(i64, String, Value)> {
    let rows: Vec<(i64, String, Value)> = sqlx::query_as(
        "SELECT seq, type, body FROM events WHERE type IN ('proxy.request', 'proxy.response', 'rate_limit.exceeded') ORDER BY seq",
    )
    .fetch_all(&app.pool)
    .await
    .expect("read events");
    rows.into_iter()
        .map(|(seq, t, body)| (seq, t, body["data"].clone()))
        .collect()
}

/// The events of one request id, in seq order.
pub async fn events_for(app: &TestApp, request_id: &str) -> Vec<(i64, String, Value)> {
    proxy_events(app)
        .await
        .into_iter()
        .filter(|(_, _, d)| d["request_id"] == request_id)
        .collect()
}

/// Wait (bounded) until `check` holds.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An answer read by [`raw`].
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

/// Send one HTTP/1.1 request exactly as written (method, target, headers),
/// with `Connection: close`, and read the answer. A `101` answer is returned
/// after its head (the connection is then dropped).
pub async fn raw(
    address: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let host = address.trim_start_matches("http://");
    let mut stream =
        tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(host))
            .await
            .expect("connect in time")
            .expect("connect");
    let mut request = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n");
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("connection"))
    {
        request.push_str("Connection: close\r\n");
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    stream.write_all(body).await.expect("write body");
    let mut buffer = Vec::new();
    let read = async {
        let mut chunk = [0u8; 8192];
        loop {
            let n = stream.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            buffer.extend_from_slice(&chunk[..n]);
            if let Some(end) = find(&buffer, b"\r\n\r\n") {
                if buffer.starts_with(b"HTTP/1.1 101") {
                    buffer.truncate(end + 4);
                    break;
                }
                let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
                let length = head.lines().find_map(|l| {
                    l.strip_prefix("content-length:")
                        .and_then(|v| v.trim().parse::<usize>().ok())
                });
                let body = buffer.len() - end - 4;
                if length.is_some_and(|l| body >= l)
                    || (head.contains("transfer-encoding: chunked")
                        && buffer.ends_with(b"0\r\n\r\n"))
                {
                    break;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("answer in time");
    let end = find(&buffer, b"\r\n\r\n").expect("a complete head");
    let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let mut body = buffer[end + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    RawResponse { status, head, body }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = find(data, b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..line_end]).trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}

/// A websocket upgrade's headers (the key is fixed; tests do not speak websocket over `raw`).
pub const UPGRADE: [(&str, &str); 4] = [
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Version", "13"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
];

/// `rack-gateway-server serve` as a subprocess (its own memory, its own
/// stdout and stderr, captured to files), on a fresh database.
pub struct ServerProcess {
    pub child: Option<testkit::ChildGuard>,
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    pub db: testkit::TestDatabase,
    pub key_file: std::path::PathBuf,
    pub stdout_path: std::path::PathBuf,
    pub stderr_path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl ServerProcess {
    pub async fn start(rack_url: &str, rack_token: &str, extra: &[(&str, &str)]) -> ServerProcess {
        let db = testkit::fresh_database().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let (key_file, _) = crate::common::new_key(dir.path());
        let stdout_path = dir.path().join("stdout");
        let stderr_path = dir.path().join("stderr");
        let port = testkit::free_port();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_rack-gateway-server"));
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RGW_ENV_FILE", "/nonexistent/.env")
            .env("DATABASE_URL", &db.url)
            .env("CHECKPOINT_SIGNING_KEY_FILE", &key_file)
            .env("PORT", port.to_string())
            .env("BIND_ADDRESS", "127.0.0.1")
            .env("APP_SECRET_KEY", "subprocess-app-secret-0123456789")
            .env("RACK_HOST", rack_url)
            .env("RACK_TOKEN", rack_token)
            .env("PROXY_AUTH_FAILURE_LIMIT", "1000");
        for (k, v) in extra {
            command.env(k, v);
        }
        let child = command
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&stdout_path).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
            .spawn()
            .expect("start rack-gateway-server serve");
        let server = ServerProcess {
            child: Some(testkit::ChildGuard(child)),
            address: format!("http://127.0.0.1:{port}"),
            db,
            key_file,
            stdout_path,
            stderr_path,
            _dir: dir,
        };
        let ready = async {
            loop {
                if let Ok(r) = reqwest::get(format!("{}/ready", server.address)).await {
                    if r.status() == 200 {
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(30), ready)
            .await
            .is_err()
        {
            panic!(
                "the gateway did not become ready: {}",
                std::fs::read_to_string(&server.stderr_path).unwrap_or_default()
            );
        }
        server
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// A token made by the operator command, as an operator would.
    pub fn token(&self, name: &str, role: &str) -> String {
        let out = crate::common::server_command(
            &self.db.url,
            &self.key_file,
            &[
                "token", "create", "--name", name, "--role", role, "--output", "token",
            ],
        );
        assert!(out.status.success(), "{}", crate::common::stderr(&out));
        crate::common::stdout(&out).trim().to_owned()
    }

    /// SIGTERM, then wait (bounded) for a clean exit.
    pub async fn stop(&mut self) {
        let Some(mut guard) = self.child.take() else {
            return;
        };
        let pid = guard.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        let waited = tokio::task::spawn_blocking(move || {
            let status = guard.0.wait();
            (guard, status)
        });
        let (_guard, status) = tokio::time::timeout(Duration::from_secs(30), waited)
            .await
            .expect("the gateway stopped in time")
            .expect("join");
        assert!(
            status.expect("wait").success(),
            "the gateway stopped cleanly"
        );
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

/// A process's memory figures from `/proc/<pid>/status`, in KiB: (VmRSS, VmHWM).
pub fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
