//! `login`: the browser flow against the fake gateway, each refusal, the timeout.

use std::time::Duration;

use cli::api::{CompleteLogin, GatewayClient, StartLogin};
use cli::login::{wait_for_session, CliSecret, PollSchedule, WaitingIndicator, TIMED_OUT};
use cli::racks::GatewayUrl;

use crate::support::{first_line_of, http, output, sha256_hex, Behaviour, FakeGateway, Sandbox};

#[tokio::test]
async fn login_opens_the_browser_waits_and_saves_the_session() {
    let gateway = FakeGateway::start().await;
    let sandbox = Sandbox::new();
    let child = sandbox.command(&["login", "production", &format!("{}/", gateway.url)]);
    let run = tokio::spawn(output(child));

    // The "browser" got the auth URL; finishing the sign-in there is what the CLI waits for.
    let auth_url = first_line_of(&sandbox.browser_log()).await;
    assert!(auth_url.starts_with(&format!("{}/fake-browser/authorize?state=", gateway.url)));
    // Let it poll while pending at least once before the browser step is done.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while gateway.requests_to("/api/v1/auth/cli/complete").is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the CLI never polled /complete"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let page = http()
        .get(format!("{auth_url}&login_hint=admin@example.com"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Signed in as admin@example.com"));

    let result = run.await.unwrap();
    result.assert_ok();
    assert!(
        result
            .stdout
            .contains("Logged in to production as admin@example.com"),
        "{}",
        result.stdout
    );
    assert!(
        result
            .stderr
            .contains("Waiting for browser authentication…"),
        "{}",
        result.stderr
    );
    // Not a terminal: plain lines, no spinner control codes.
    assert!(!result.stderr.contains('\u{1b}'), "{:?}", result.stderr);

    // Only the hash went to /start; the secret went to /complete and matches it.
    let start = &gateway.requests_to("/api/v1/auth/cli/start")[0].body;
    assert!(start.get("cli_secret").is_none());
    let hash = start["cli_secret_sha256"].as_str().unwrap();
    let polls = gateway.requests_to("/api/v1/auth/cli/complete");
    assert!(
        polls.len() >= 2,
        "pending at least once, then complete: {}",
        polls.len()
    );
    for poll in &polls {
        assert_eq!(sha256_hex(poll.body["cli_secret"].as_str().unwrap()), hash);
        assert!(poll.authorization.is_none());
    }

    let config = sandbox.config();
    let machine_id = config["machine_id"].as_str().unwrap();
    assert_eq!(start["device_id"], machine_id);
    assert_eq!(config["current"], "production");
    assert_eq!(config["mfa_preference"], "default");
    let entry = &config["gateways"]["production"];
    assert_eq!(
        entry["url"],
        gateway.url.as_str(),
        "normalised: no trailing slash"
    );
    assert_eq!(entry["email"], "admin@example.com");
    assert_eq!(entry["channel"], "cli");
    assert_eq!(entry["device_id"], machine_id);
    assert_eq!(entry["mfa_verified"], false);
    assert!(entry["session_id"].is_number());
    let token = entry["token"].as_str().unwrap();
    assert!(token.starts_with("rgw_sess_"));
    let session = gateway
        .session(token)
        .expect("the stored token is the issued session");
    assert_eq!(entry["expires_at"], session.expires_at.as_str());
    // The token itself is never printed.
    assert!(!result.stdout.contains(token) && !result.stderr.contains(token));

    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&sandbox.config_dir()), 0o700);
    assert_eq!(mode(&sandbox.config_path()), 0o600);
}

#[tokio::test]
async fn no_open_prints_the_url_and_auth_file_gets_the_lines() {
    let gateway = FakeGateway::start_with(Behaviour {
        auto_browser: Some(("deployer@example.com".into(), 1)),
        ..Behaviour::default()
    })
    .await;
    let sandbox = Sandbox::new();
    let auth_file = sandbox.dir.path().join("auth.env");
    let run = sandbox
        .run(&[
            "login",
            "staging",
            &gateway.url,
            "--no-open",
            "--auth-file",
            auth_file.to_str().unwrap(),
        ])
        .await;
    run.assert_ok();
    assert!(run.stdout.contains("Open this URL in your browser"));
    assert!(run
        .stdout
        .contains(&format!("{}/fake-browser/authorize?state=", gateway.url)));
    assert!(run
        .stdout
        .contains("Logged in to staging as deployer@example.com"));
    assert!(
        !sandbox.browser_log().exists(),
        "--no-open must not start a browser"
    );

    let text = std::fs::read_to_string(&auth_file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with(&format!("AUTH_URL={}/fake-browser/", gateway.url)));
    assert!(lines[1].starts_with("STATE=st_"));
    assert!(lines.iter().all(|l| !l.contains("cli_secret")));
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&auth_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[tokio::test]
async fn each_refusal_is_printed_as_the_gateway_words_it_and_nothing_is_saved() {
    let cases: [(Behaviour, &str); 5] = [
        (
            Behaviour {
                auto_browser: Some(("someone@wrongdomain.com".into(), 0)),
                ..Behaviour::default()
            },
            "email domain not allowed",
        ),
        (
            Behaviour {
                auto_browser: Some(("unverified@example.com".into(), 0)),
                ..Behaviour::default()
            },
            "email not verified",
        ),
        (
            Behaviour {
                auto_browser: Some(("stranger@example.com".into(), 0)),
                ..Behaviour::default()
            },
            "user not authorized",
        ),
        (
            Behaviour {
                forget_states: true,
                ..Behaviour::default()
            },
            "invalid or expired state",
        ),
        (
            Behaviour {
                reject_secret: true,
                ..Behaviour::default()
            },
            "login was started by a different client",
        ),
    ];
    let gateway = FakeGateway::start().await;
    for (behaviour, message) in cases {
        gateway.set_behaviour(behaviour);
        let sandbox = Sandbox::new();
        let run = sandbox
            .run(&["login", "prod", &gateway.url, "--no-open"])
            .await;
        run.assert_error(message);
        assert!(!run.stdout.contains("Logged in"), "{message}");
        let config = sandbox.config();
        assert!(
            config["gateways"].get("prod").is_none(),
            "{message}: {config}"
        );
    }
}

#[tokio::test]
async fn login_without_url_uses_the_stored_one_or_rack_gateway_url() {
    let gateway = FakeGateway::start_with(Behaviour {
        auto_browser: Some(("admin@example.com".into(), 0)),
        ..Behaviour::default()
    })
    .await;
    let mut sandbox = Sandbox::new();
    sandbox.write_config(serde_json::json!({
        "current": "prod",
        "gateways": {"prod": {"url": gateway.url, "notification_sound": "disabled"}}
    }));
    // No argument: the current rack.
    sandbox.run(&["login", "--no-open"]).await.assert_ok();
    let config = sandbox.config();
    assert_eq!(config["gateways"]["prod"]["email"], "admin@example.com");
    assert_eq!(
        config["gateways"]["prod"]["notification_sound"], "disabled",
        "unknown per-rack fields kept"
    );

    // One argument, URL from RACK_GATEWAY_URL: a new rack.
    sandbox.set_env(
        "RACK_GATEWAY_URL",
        gateway.url.trim_start_matches("http://").to_owned(),
    );
    let run = sandbox.run(&["login", "other", "--no-open"]).await;
    // No scheme → https:// is assumed, which the plain-HTTP fake cannot answer.
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(&format!(
            "https://{}",
            gateway.url.trim_start_matches("http://")
        )),
        "{}",
        run.stderr
    );
    sandbox.set_env("RACK_GATEWAY_URL", gateway.url.clone());
    sandbox
        .run(&["login", "other", "--no-open"])
        .await
        .assert_ok();
    let config = sandbox.config();
    assert_eq!(config["current"], "other");
    assert_eq!(config["gateways"]["other"]["url"], gateway.url.as_str());

    // One argument, unknown rack, no URL anywhere.
    sandbox.remove_env("RACK_GATEWAY_URL");
    sandbox
        .run(&["login", "nowhere", "--no-open"])
        .await
        .assert_error(
            "rack nowhere is not configured. Run: rack-gateway login nowhere <gateway-url>",
        );
}

#[tokio::test]
async fn login_with_nothing_configured_says_no_rack_selected() {
    let sandbox = Sandbox::new();
    sandbox.run(&["login"]).await.assert_error(
        "no rack selected. Run: rack-gateway login <rack> <gateway-url> or use --rack flag",
    );
}

/// The two-minute wait, shortened: a login nobody finishes times out with the documented message.
#[tokio::test]
async fn polling_gives_up_with_the_timeout_message() {
    let gateway = FakeGateway::start().await;
    let (client, request) = started_login(&gateway).await;
    let mut indicator = WaitingIndicator::start_with(false);
    let started = std::time::Instant::now();
    let error = wait_for_session(
        &client,
        &request,
        PollSchedule {
            interval: Duration::from_millis(50),
            timeout: Duration::from_millis(400),
        },
        &mut indicator,
    )
    .await
    .err()
    .expect("times out");
    assert_eq!(error.to_string(), TIMED_OUT);
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert!(gateway.requests_to("/api/v1/auth/cli/complete").len() >= 3);
}

/// A gateway that is briefly unavailable (503) does not end the wait.
#[tokio::test]
async fn polling_rides_out_a_briefly_unavailable_gateway() {
    let gateway = FakeGateway::start_with(Behaviour {
        auto_browser: Some(("viewer@example.com".into(), 1)),
        unavailable_polls: 2,
        ..Behaviour::default()
    })
    .await;
    let (client, request) = started_login(&gateway).await;
    let mut indicator = WaitingIndicator::start_with(false);
    let session = wait_for_session(
        &client,
        &request,
        PollSchedule {
            interval: Duration::from_millis(20),
            timeout: Duration::from_secs(10),
        },
        &mut indicator,
    )
    .await
    .map_err(|e| e.to_string())
    .expect("completes");
    assert_eq!(session.email, "viewer@example.com");
    assert_eq!(gateway.requests_to("/api/v1/auth/cli/complete").len(), 4);
}

async fn started_login(gateway: &FakeGateway) -> (GatewayClient, CompleteLogin) {
    let url = GatewayUrl::parse(&gateway.url).unwrap();
    let client = GatewayClient::new(&url, None).unwrap();
    let secret = CliSecret::generate();
    let started = client
        .start_login(&StartLogin {
            cli_secret_sha256: secret.sha256.clone(),
            device_id: "d".into(),
            device_name: "n".into(),
            device_os: "linux".into(),
            client_version: "t".into(),
        })
        .await
        .map_err(|e| e.to_string())
        .expect("start");
    let request = CompleteLogin {
        state: started.state,
        cli_secret: secret.secret,
        device_id: "d".into(),
        device_name: "n".into(),
        device_os: "linux".into(),
        client_version: "t".into(),
    };
    (client, request)
}
