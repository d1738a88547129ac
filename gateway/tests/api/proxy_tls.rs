//! TLS on both sides of the gateway: trusting a self-signed rack by CA file or
//! by pinned fingerprint (and failing closed otherwise), and serving HTTPS.

use std::time::Duration;

use tools::mock_rack::MockRackConfig;

use crate::helpers::{basic, request_id, Rack, Role, TestApp, PREFIX};

async fn tls_rack() -> Rack {
    Rack::start_with(MockRackConfig {
        tls: true,
        ..MockRackConfig::default()
    })
    .await
}

async fn get_apps(app: &TestApp, secret: &str) -> reqwest::Response {
    app.proxy(secret).get("/apps").await
}

/// The logs websocket through the gateway, read to its end.
async fn logs(app: &TestApp, secret: &str) -> String {
    app.proxy(secret)
        .websocket_text("/apps/myapp/logs", &[("follow", "false")])
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_file_trusts_the_racks_self_signed_certificate() {
    let rack = tls_rack().await;
    assert!(rack.url().starts_with("https://"));
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("rack.pem");
    std::fs::write(&ca, rack.tls_cert_pem().unwrap()).unwrap();
    let ca_path = ca.display().to_string();
    let app = TestApp::build()
        .rack(&rack.url())
        .env("RACK_TLS_CA_FILE", ca_path)
        .spawn()
        .await;
    let admin = app.token(Role::Admin).await;
    let response = get_apps(&app, &admin).await;
    assert_eq!(response.status(), 200);
    assert!(rack.saw(&request_id(&response)));
    // Websockets go over the same trust (wss).
    let text = logs(&app, &admin).await;
    assert!(text.contains("listening on port 3000"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_fingerprint_works_and_a_wrong_one_fails_closed() {
    let rack = tls_rack().await;
    let fingerprint = rack.tls_fingerprint_sha256().unwrap();
    // Operators paste it with colons, in capitals.
    let pretty = fingerprint
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(":");
    let app = TestApp::build()
        .rack(&rack.url())
        .env("RACK_TLS_FINGERPRINT", pretty)
        .spawn()
        .await;
    let admin = app.token(Role::Admin).await;
    assert_eq!(get_apps(&app, &admin).await.status(), 200);
    assert!(logs(&app, &admin).await.contains("listening on port 3000"));

    let mut wrong = fingerprint.into_bytes();
    wrong[0] = if wrong[0] == b'0' { b'1' } else { b'0' };
    let wrong = String::from_utf8(wrong).unwrap();
    let seen = rack.recorded().len();
    let app = TestApp::build()
        .rack(&rack.url())
        .env("RACK_TLS_FINGERPRINT", wrong)
        .spawn()
        .await;
    let admin = app.token(Role::Admin).await;
    let response = get_apps(&app, &admin).await;
    assert_eq!(response.status(), 502);
    let id = request_id(&response);
    let body = response.text().await.unwrap();
    assert!(
        !body.to_lowercase().contains("certificate"),
        "no internals: {body}"
    );
    let events = app.proxy_events_for(&id).await;
    assert_eq!(events[0].2["decision"], "allow");
    let failure = &events[1].2["upstream_error"];
    assert_eq!(failure["code"], "rack_unreachable", "{events:?}");
    assert!(
        failure["detail"]
            .as_str()
            .is_some_and(|d| d.contains("certificate")),
        "{failure}"
    );
    assert_eq!(rack.recorded().len(), seen, "no request reached the rack");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_trust_a_self_signed_rack_is_refused_except_in_dev_mode() {
    let rack = tls_rack().await;
    let app = TestApp::build().rack(&rack.url()).spawn().await;
    let admin = app.token(Role::Admin).await;
    assert_eq!(get_apps(&app, &admin).await.status(), 502);
    assert!(rack.recorded().is_empty());

    let app = TestApp::build()
        .rack(&rack.url())
        .env("DEV_MODE", "true")
        .spawn()
        .await;
    let admin = app.token(Role::Admin).await;
    assert_eq!(get_apps(&app, &admin).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_trust_settings_stop_the_gateway_from_starting() {
    let env = |pairs: &[(&str, &str)]| {
        let mut env = gateway::settings::Env::from_pairs([
            ("DATABASE_URL", "postgres://u@localhost/db"),
            ("RACK_HOST", "https://rack.example:5443"),
            ("RACK_TOKEN", "x"),
        ]);
        for (k, v) in pairs {
            env.set(k, *v);
        }
        gateway::settings::Settings::from_env(&env).unwrap()
    };
    for (pairs, expected) in [
        (
            vec![("RACK_TLS_FINGERPRINT", "abcd")],
            "RACK_TLS_FINGERPRINT",
        ),
        (
            vec![("RACK_TLS_CA_FILE", "/nonexistent.pem")],
            "/nonexistent.pem",
        ),
        (
            vec![
                ("RACK_TLS_CA_FILE", "/x.pem"),
                ("RACK_TLS_FINGERPRINT", &"ab".repeat(32)),
            ],
            "only one",
        ),
        (vec![("TRUSTED_PROXY_CIDRS", "10.0.0.0/8,nope")], "nope"),
    ] {
        let error = match gateway::proxy::parts::ProxyParts::new(&env(&pairs)) {
            Ok(_) => panic!("{pairs:?} accepted"),
            Err(e) => e.to_string(),
        };
        assert!(error.contains(expected), "{pairs:?}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_serves_https() {
    let rack = Rack::start().await;
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let (cert_path, key_path) = (cert.display().to_string(), key.display().to_string());
    let mut app = TestApp::build()
        .rack(&rack.url())
        .env("TLS_CERT_FILE", cert_path)
        .env("TLS_KEY_FILE", key_path)
        .spawn()
        .await;
    let admin = app.token(Role::Admin).await;
    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap(),
        )
        .build()
        .unwrap();
    let base = format!("https://127.0.0.1:{}", app.port);
    let health = client.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let response = client
        .get(format!("{base}{PREFIX}/apps"))
        .header("Authorization", basic(&admin))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(rack.saw(&request_id(&response)));
    // Plain HTTP on the TLS port is not served.
    assert!(app.client.get(app.url("/health")).send().await.is_err());

    // The real CLI over https (it skips certificate checks, as against a rack).
    if let Some(bin) = testkit::skip_without_convox("the_gateway_serves_https (CLI part)") {
        let home = tempfile::tempdir().unwrap();
        let out = tokio::process::Command::new(bin)
            .args(["logs", "-a", "myapp", "--no-follow"])
            .env_clear()
            .env("HOME", home.path())
            .env("CONVOX_CONFIG", home.path())
            .env(
                "RACK_URL",
                format!("https://convox:{admin}@127.0.0.1:{}{PREFIX}", app.port),
            )
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("listening on port 3000"), "{stdout}");
    }
    // Graceful shutdown works over TLS too.
    tokio::time::timeout(Duration::from_secs(20), app.stop())
        .await
        .expect("stopped in time");
}
