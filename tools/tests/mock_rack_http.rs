//! The mock rack at the protocol level (no CLI needed): response shapes, auth, recording,
//! websocket framing, TLS, streamed uploads, and the `mock-rack` binary.

mod mock_rack_support;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use mock_rack_support::{localhost0, start_rack, start_rack_with, PASSWORD};
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tools::mock_rack::{
    AuthOutcome, MockRack, MockRackConfig, RecordedRequest, EXIT_MARKER, SEED_APP,
};

const STEP: Duration = Duration::from_secs(20);

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("http client")
}

fn basic(password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("convox:{password}"))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_look_like_the_rack() {
    let rack = start_rack().await;
    let http = client();
    let url = rack.url();
    let auth = basic(PASSWORD);

    let res = http
        .get(format!("{url}/system"))
        .header("Authorization", &auth)
        .send()
        .await
        .expect("GET /system");
    assert_eq!(res.status(), 200);
    let request_id = res
        .headers()
        .get("request-id")
        .expect("Request-Id")
        .to_str()
        .expect("ascii")
        .to_string();
    assert_eq!(request_id.len(), 12);
    assert_eq!(res.headers()["content-type"], "application/json");
    let body = res.text().await.expect("body");
    assert!(body.starts_with("{\n  \"count\": "), "{body}");
    assert!(body.ends_with("}\n"), "{body}");
    let system: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(system["status"], "running");
    assert!(system["version"].as_str().expect("version") > "20180708231844");

    // Wrong password: 401, plain text, the rack's realm.
    let res = http
        .get(format!("{url}/apps"))
        .header("Authorization", basic("nope"))
        .send()
        .await
        .expect("GET /apps");
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Basic realm=\"convox\"");
    assert!(res.headers().contains_key("request-id"));
    assert_eq!(res.text().await.expect("body"), "invalid authentication\n");
    // No credentials at all is the same.
    let res = http
        .get(format!("{url}/apps"))
        .send()
        .await
        .expect("GET /apps");
    assert_eq!(res.status(), 401);
    // JSON errors for clients that ask for JSON.
    let res = http
        .get(format!("{url}/apps"))
        .header("Authorization", basic("nope"))
        .header("Accept", "text/html, application/json;q=0.9")
        .send()
        .await
        .expect("GET /apps");
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(
        res.json::<serde_json::Value>().await.expect("json"),
        serde_json::json!({"error": "invalid authentication"})
    );

    // The CLI's pre-websocket requests hit no route: 404, and no auth check either.
    for path in ["/machines", "/racks"] {
        for a in [&auth, &basic("nope")] {
            let res = http
                .get(format!("{url}{path}"))
                .header("Authorization", a)
                .send()
                .await
                .expect("GET");
            assert_eq!(res.status(), 404, "{path}");
            assert!(res.headers().contains_key("request-id"));
        }
    }
    // A websocket route without the upgrade does not match.
    let res = http
        .get(format!("{url}/apps/myapp/logs"))
        .header("Authorization", &auth)
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), 404);

    // Not found inside a route is the rack's message.
    let res = http
        .get(format!("{url}/apps/nope"))
        .header("Authorization", &auth)
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), 404);
    assert_eq!(res.text().await.expect("body"), "app not found: nope\n");

    // No-result actions answer ok.
    let pid = rack.app(SEED_APP).expect("app").processes[0].id.clone();
    let res = http
        .delete(format!("{url}/apps/myapp/processes/{pid}"))
        .header("Authorization", &auth)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.expect("body"), "ok\n");

    // A rack update is accepted (refusing it is the gateway's job).
    let res = http
        .put(format!("{url}/system"))
        .header("Authorization", &auth)
        .form(&[("version", "3.20.1"), ("force", "false")])
        .send()
        .await
        .expect("PUT /system");
    assert_eq!(res.status(), 200);
    assert_eq!(rack.state().system.version, "3.20.1");

    // A release without a manifest cannot be promoted (a new app's env-only release).
    let res = http
        .post(format!("{url}/apps"))
        .header("Authorization", &auth)
        .form(&[("name", "fresh")])
        .send()
        .await
        .expect("POST /apps");
    assert_eq!(res.status(), 200);
    let release: serde_json::Value = http
        .post(format!("{url}/apps/fresh/releases"))
        .header("Authorization", &auth)
        .form(&[("env", "X=1")])
        .send()
        .await
        .expect("POST releases")
        .json()
        .await
        .expect("release json");
    let id = release["id"].as_str().expect("id");
    let res = http
        .post(format!("{url}/apps/fresh/releases/{id}/promote"))
        .header("Authorization", &auth)
        .send()
        .await
        .expect("promote");
    assert_eq!(res.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_recorded_in_memory_and_to_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let record = dir.path().join("requests.jsonl");
    let rack = start_rack_with(MockRackConfig {
        password: PASSWORD.to_string(),
        record: Some(record.clone()),
        ..MockRackConfig::default()
    })
    .await;
    let http = client();
    let url = rack.url();

    http.get(format!("{url}/apps?limit=3"))
        .header("Authorization", basic(PASSWORD))
        .header("X-Request-Id", "req-1")
        .header("Convox-Actor", "alice@example.com")
        .send()
        .await
        .expect("GET");
    http.get(format!("{url}/apps"))
        .header("Authorization", basic("bad"))
        .send()
        .await
        .expect("GET");
    http.get(format!("{url}/machines"))
        .send()
        .await
        .expect("GET");
    let mut req = format!("{}/apps/myapp/logs", url.replace("http", "ws"))
        .into_client_request()
        .expect("request");
    req.headers_mut()
        .insert("Authorization", basic(PASSWORD).parse().expect("header"));
    req.headers_mut()
        .insert("X-Request-Id", "req-ws".parse().expect("header"));
    req.headers_mut()
        .insert("Follow", "false".parse().expect("header"));
    let (mut ws, _) = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(req))
        .await
        .expect("in time")
        .expect("connect");
    while let Some(Ok(msg)) = tokio::time::timeout(STEP, ws.next())
        .await
        .expect("in time")
    {
        if matches!(msg, Message::Binary(ref b) if b.is_empty()) {
            break;
        }
    }
    drop(ws);

    let recorded = rack.recorded();
    assert_eq!(recorded.len(), 4, "{recorded:#?}");
    let first = &recorded[0];
    assert_eq!(
        (first.method.as_str(), first.path.as_str()),
        ("GET", "/apps")
    );
    assert_eq!(first.query.as_deref(), Some("limit=3"));
    assert_eq!(first.request_id.as_deref(), Some("req-1"));
    assert_eq!(first.actor.as_deref(), Some("alice@example.com"));
    assert_eq!(first.auth, AuthOutcome::Ok);
    assert!(
        chrono::DateTime::parse_from_rfc3339(&first.ts).is_ok(),
        "{}",
        first.ts
    );
    assert_eq!(recorded[1].auth, AuthOutcome::Invalid);
    assert_eq!(recorded[1].actor, None);
    assert_eq!(
        (recorded[2].path.as_str(), recorded[2].auth),
        ("/machines", AuthOutcome::Missing)
    );
    assert!(recorded[3].websocket);
    assert_eq!(recorded[3].request_id.as_deref(), Some("req-ws"));

    // The file holds the same records, one JSON object per line, with the contract's keys.
    let text = std::fs::read_to_string(&record).expect("record file");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4);
    let from_file: Vec<RecordedRequest> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(from_file, recorded);
    let raw: serde_json::Value = serde_json::from_str(lines[2]).expect("json");
    for key in ["ts", "method", "path", "request_id", "actor"] {
        assert!(raw.get(key).is_some(), "missing {key} in {raw}");
    }
    assert!(raw["actor"].is_null() && raw["request_id"].is_null());
}

async fn ws_connect(
    url: &str,
    path: &str,
    password: &str,
    headers: &[(&'static str, &str)],
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    tokio_tungstenite::tungstenite::Error,
> {
    let mut req = format!("{}{path}", url.replacen("http", "ws", 1)).into_client_request()?;
    req.headers_mut()
        .insert("Authorization", basic(password).parse().expect("header"));
    for (k, v) in headers {
        req.headers_mut().insert(*k, v.parse().expect("header"));
    }
    let (ws, _) = tokio::time::timeout(STEP, tokio_tungstenite::connect_async(req))
        .await
        .expect("connect in time")?;
    Ok(ws)
}

/// Reads frames until the empty binary end-of-stream frame; returns the text frames.
async fn read_to_end<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> Vec<String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut texts = Vec::new();
    loop {
        let msg = tokio::time::timeout(STEP, ws.next())
            .await
            .expect("frame in time");
        match msg {
            Some(Ok(Message::Text(t))) => texts.push(t.to_string()),
            Some(Ok(Message::Binary(b))) => {
                assert!(b.is_empty(), "only the empty binary frame is expected");
                return texts;
            }
            Some(Ok(_)) => {}
            other => panic!("stream ended without the empty binary frame: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_framing_exec_markers_and_in_band_errors() {
    let rack = start_rack().await;
    let url = rack.url();
    let pid = rack.app(SEED_APP).expect("app").processes[0].id.clone();
    let exec_path = format!("/apps/myapp/processes/{pid}/exec");

    // cat: stdin in text frames, ended by an empty binary frame; echoed back, then exit 0.
    let mut ws = ws_connect(
        &url,
        &exec_path,
        PASSWORD,
        &[("Command", "cat"), ("Tty", "false")],
    )
    .await
    .expect("connect");
    ws.send(Message::Text("abc".into())).await.expect("send");
    ws.send(Message::Text("def\n".into())).await.expect("send");
    ws.send(Message::Binary(Vec::new().into()))
        .await
        .expect("send eof");
    let texts = read_to_end(&mut ws).await;
    assert_eq!(texts, ["abc", "def\n", &format!("{EXIT_MARKER}:0\n")]);
    drop(ws);

    let mut ws = ws_connect(&url, &exec_path, PASSWORD, &[("Command", "exit 42")])
        .await
        .expect("connect");
    assert_eq!(read_to_end(&mut ws).await, [format!("{EXIT_MARKER}:42\n")]);
    drop(ws);

    // A bad password: upgraded anyway, then the error in-band, as the rack does.
    let mut ws = ws_connect(&url, &exec_path, "nope", &[("Command", "echo hi")])
        .await
        .expect("connect");
    assert_eq!(
        read_to_end(&mut ws).await,
        ["ERROR: invalid authentication\n"]
    );
    drop(ws);

    // Unknown process: in-band error.
    let mut ws = ws_connect(
        &url,
        "/apps/myapp/processes/nope/exec",
        PASSWORD,
        &[("Command", "echo hi")],
    )
    .await
    .expect("connect");
    assert_eq!(
        read_to_end(&mut ws).await,
        ["ERROR: process not found: nope\n"]
    );
    drop(ws);

    // An Origin for another host is refused before the upgrade (gorilla's CheckOrigin).
    let err = ws_connect(
        &url,
        &exec_path,
        PASSWORD,
        &[("Origin", "https://gateway.example")],
    )
    .await
    .expect_err("refused");
    match err {
        tokio_tungstenite::tungstenite::Error::Http(res) => assert_eq!(res.status(), 403),
        other => panic!("expected an HTTP 403, got {other:?}"),
    }
    // The CLI's own Origin (same host) is fine.
    let host = url.trim_start_matches("http://");
    let mut ws = ws_connect(
        &url,
        &exec_path,
        PASSWORD,
        &[
            ("Command", "echo same origin"),
            ("Origin", &format!("http://{host}")),
        ],
    )
    .await
    .expect("connect");
    assert_eq!(
        read_to_end(&mut ws).await,
        ["same origin\n".to_string(), format!("{EXIT_MARKER}:0\n")]
    );
    drop(ws);

    let execs = rack.execs();
    assert_eq!(execs.len(), 3, "{execs:?}");
    assert_eq!(execs[0].stdin, "abcdef\n");
    assert_eq!(execs[0].tty, Some(false));
    assert_eq!(execs[1].exit_code, 42);

    // Log streams without Follow: prefixed lines, then the end frame (followed
    // streams stay open: `followed_logs_stay_open_and_exec_lasts_as_long_as_its_command`).
    let mut ws = ws_connect(
        &url,
        "/apps/myapp/services/web/logs",
        PASSWORD,
        &[("Prefix", "true"), ("Follow", "false")],
    )
    .await
    .expect("connect");
    let lines = read_to_end(&mut ws).await;
    assert!(!lines.is_empty());
    assert!(
        lines
            .iter()
            .all(|l| l.contains(" service/web/web-") && l.ends_with('\n')),
        "{lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_complete_with_a_release_even_without_a_log_reader() {
    let rack = start_rack_with(MockRackConfig {
        password: PASSWORD.to_string(),
        build_duration: Duration::from_millis(200),
        ..MockRackConfig::default()
    })
    .await;
    let http = client();
    let url = rack.url();
    let auth = basic(PASSWORD);

    let object: serde_json::Value = http
        .post(format!("{url}/apps/myapp/objects/tmp/src.tgz"))
        .header("Authorization", &auth)
        .header("Content-Type", "application/octet-stream")
        .body("not really a tarball")
        .send()
        .await
        .expect("upload")
        .json()
        .await
        .expect("object json");
    assert_eq!(
        object,
        serde_json::json!({"Url": "object://myapp/tmp/src.tgz"})
    );

    let build: serde_json::Value = http
        .post(format!("{url}/apps/myapp/builds"))
        .header("Authorization", &auth)
        .form(&[
            ("url", "object://myapp/tmp/src.tgz"),
            ("description", "test build"),
        ])
        .send()
        .await
        .expect("build")
        .json()
        .await
        .expect("build json");
    assert!(
        matches!(build["status"].as_str(), Some("created" | "running")),
        "{build}"
    );
    assert_eq!(build["ended"], "0001-01-01T00:00:00Z");
    let id = build["id"].as_str().expect("id").to_string();

    let missing: serde_json::Value = http
        .post(format!("{url}/apps/myapp/builds"))
        .header("Authorization", &auth)
        .form(&[("url", "object://myapp/tmp/never-uploaded.tgz")])
        .send()
        .await
        .expect("build")
        .json()
        .await
        .expect("build json");
    let missing_id = missing["id"].as_str().expect("id").to_string();

    tokio::time::sleep(Duration::from_millis(400)).await;
    let get = |id: String| {
        let http = http.clone();
        let auth = auth.clone();
        let url = url.clone();
        async move {
            http.get(format!("{url}/apps/myapp/builds/{id}"))
                .header("Authorization", auth)
                .send()
                .await
                .expect("get build")
                .json::<serde_json::Value>()
                .await
                .expect("json")
        }
    };
    let done = get(id).await;
    assert_eq!(done["status"], "complete", "{done}");
    let release_id = done["release"].as_str().expect("release").to_string();
    let app = rack.app(SEED_APP).expect("app");
    let release = app.release(&release_id).expect("release exists");
    assert_eq!(release.description, "test build");
    assert!(!release.manifest.is_empty());
    assert_eq!(release.env, "A=1");
    assert_eq!(get(missing_id).await["status"], "failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_certificate_can_be_trusted_and_pinned() {
    let rack = start_rack_with(MockRackConfig {
        password: PASSWORD.to_string(),
        tls: true,
        ..MockRackConfig::default()
    })
    .await;
    let pem = rack.tls_cert_pem().expect("pem");
    let fingerprint = rack.tls_fingerprint_sha256().expect("fingerprint");

    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("pem body");
    assert_eq!(hex::encode(Sha256::digest(&der)), fingerprint);

    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).expect("cert"))
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let res = http
        .get(format!("{}/apps", rack.url()))
        .header("Authorization", basic(PASSWORD))
        .send()
        .await
        .expect("https GET");
    assert_eq!(res.status(), 200);
    let apps: serde_json::Value = res.json().await.expect("json");
    assert_eq!(apps[0]["name"], SEED_APP);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_with_shutdown_future_stops() {
    let rack = MockRack::bind(localhost0(), MockRackConfig::default())
        .await
        .expect("bind");
    let url = rack.url();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(rack.run(async move {
        let _ = rx.await;
    }));
    let res = client()
        .get(format!("{url}/system"))
        .header("Authorization", basic("password"))
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), 200, "the default password is 'password'");
    tx.send(()).expect("signal");
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("stops in time")
        .expect("join")
        .expect("serve ok");
}

/// Spawns the binary and returns it with its first `n` stdout lines.
fn spawn_binary(args: &[&str], n: usize) -> (testkit::ChildGuard, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mock-rack"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn mock-rack");
    let stdout = child.stdout.take().expect("stdout");
    let guard = testkit::ChildGuard(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        for _ in 0..n {
            match lines.next() {
                Some(Ok(line)) => {
                    if tx.send(line).is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
        // Keep reading so the child never blocks on a full pipe.
        for _ in lines {}
    });
    let lines = (0..n)
        .map(|_| {
            rx.recv_timeout(STEP)
                .expect("mock-rack printed a line in time")
        })
        .collect();
    (guard, lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_prints_its_url_first_and_records_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let record = dir.path().join("rec.jsonl");
    let record_arg = record.to_str().expect("utf-8 path");
    let (_child, lines) = spawn_binary(
        &["--port", "0", "--password", "pw1", "--record", record_arg],
        1,
    );
    let url = &lines[0];
    let port: u16 = url
        .strip_prefix("http://127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {url:?}"));
    assert_ne!(port, 0);

    let res = client()
        .get(format!("{url}/system"))
        .header("Authorization", basic("pw1"))
        .header("X-Request-Id", "bin-req-7")
        .header("Convox-Actor", "ci-bot")
        .send()
        .await
        .expect("GET /system");
    assert_eq!(res.status(), 200);

    let text = std::fs::read_to_string(&record).expect("record file");
    let line = text.lines().next().expect("one record line");
    let rec: serde_json::Value = serde_json::from_str(line).expect("json");
    assert_eq!(rec["method"], "GET");
    assert_eq!(rec["path"], "/system");
    assert_eq!(rec["request_id"], "bin-req-7");
    assert_eq!(rec["actor"], "ci-bot");
    assert!(chrono::DateTime::parse_from_rfc3339(rec["ts"].as_str().expect("ts")).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_with_tls_prints_the_fingerprint_second() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = dir.path().join("cert.pem");
    let (_child, lines) = spawn_binary(
        &[
            "--port",
            "0",
            "--tls",
            "--tls-cert-out",
            cert.to_str().expect("utf-8 path"),
        ],
        2,
    );
    assert!(lines[0].starts_with("https://127.0.0.1:"), "{lines:?}");
    let fingerprint = &lines[1];
    assert_eq!(fingerprint.len(), 64);
    assert!(fingerprint
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));

    let pem = std::fs::read_to_string(&cert).expect("cert written");
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("pem body");
    assert_eq!(&hex::encode(Sha256::digest(&der)), fingerprint);
}

/// As a rack does: a followed log stream stays open, a line a second, until
/// the client leaves; an exec session lasts as long as its command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followed_logs_stay_open_and_exec_lasts_as_long_as_its_command() {
    let rack = start_rack_with(MockRackConfig {
        password: PASSWORD.to_string(),
        follow_interval: Duration::from_millis(200),
        ..MockRackConfig::default()
    })
    .await;
    let ws_url = rack.url().replace("http", "ws");
    let open = |path: &str, headers: &[(&'static str, &str)]| {
        let mut req = format!("{ws_url}{path}")
            .into_client_request()
            .expect("request");
        req.headers_mut()
            .insert("Authorization", basic(PASSWORD).parse().expect("header"));
        for (k, v) in headers {
            req.headers_mut().insert(*k, v.parse().expect("header"));
        }
        tokio_tungstenite::connect_async(req)
    };
    let (mut logs, _) = open("/apps/myapp/logs", &[("Prefix", "true")])
        .await
        .expect("logs");
    let started = std::time::Instant::now();
    let mut text = String::new();
    while !text.contains("still running (5)") {
        match tokio::time::timeout(STEP, logs.next())
            .await
            .expect("a line in time")
        {
            Some(Ok(Message::Text(t))) => text.push_str(&t),
            Some(Ok(Message::Binary(b))) => panic!("a followed stream ended ({b:?}): {text}"),
            other => panic!("a followed stream ended: {other:?} after {text}"),
        }
    }
    assert!(started.elapsed() >= Duration::from_millis(900), "{text}");
    assert!(text.contains(" app/myapp still running (1)"), "{text}");
    logs.close(None).await.expect("close");

    let pid = rack.app("myapp").expect("app").processes[0].id.clone();
    let (mut exec, _) = open(
        &format!("/apps/myapp/processes/{pid}/exec"),
        &[("Command", "sleep 1.5")],
    )
    .await
    .expect("exec");
    let started = std::time::Instant::now();
    let mut said = String::new();
    while let Some(Ok(message)) = tokio::time::timeout(STEP, exec.next())
        .await
        .expect("in time")
    {
        match message {
            Message::Text(t) => said.push_str(&t),
            Message::Binary(b) if b.is_empty() => break,
            _ => {}
        }
    }
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "ended early: {said}"
    );
    assert!(said.ends_with(":0\n"), "{said}");
}
