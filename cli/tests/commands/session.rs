//! `logout` and `test-auth` against the fake gateway.

use serde_json::json;

use crate::support::{dead_url, FakeGateway, Sandbox};

#[tokio::test]
async fn logout_revokes_on_the_server_then_clears_the_token_and_keeps_the_url() {
    let gateway = FakeGateway::start().await;
    let (token, _) = gateway.add_session("admin@example.com", "admin");
    let sandbox = Sandbox::new();
    sandbox.logged_in("production", &gateway.url, &token, "admin@example.com");

    let run = sandbox.run(&["logout"]).await;
    run.assert_ok();
    assert!(
        run.stdout.contains("revoked on the gateway"),
        "{}",
        run.stdout
    );

    let calls = gateway.requests_to("/api/v1/auth/logout");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].method, "POST");
    assert_eq!(
        calls[0].authorization.as_deref(),
        Some(format!("Bearer {token}").as_str())
    );
    assert!(gateway.session(&token).unwrap().revoked);

    let config = sandbox.config();
    assert_eq!(config["current"], "production");
    assert_eq!(
        config["gateways"]["production"],
        json!({"url": gateway.url})
    );

    // Afterwards the CLI knows it is logged out and asks nobody.
    let run = sandbox.run(&["test-auth"]).await;
    run.assert_error(&format!(
        "session expired or invalid\nPlease run: rack-gateway login production {}",
        gateway.url
    ));
    assert!(gateway.requests_to("/api/v1/info").is_empty());
    sandbox.run(&["logout"]).await.assert_ok();
    assert_eq!(gateway.requests_to("/api/v1/auth/logout").len(), 1);
}

#[tokio::test]
async fn logout_with_the_gateway_unreachable_still_clears_locally_and_says_so() {
    let url = dead_url();
    let sandbox = Sandbox::new();
    sandbox.logged_in(
        "production",
        &url,
        "rgw_sess_unreachable",
        "admin@example.com",
    );
    let run = sandbox.run(&["logout"]).await;
    run.assert_ok();
    assert!(
        run.stderr
            .contains("Warning: could not revoke the session on the gateway"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("locally only"), "{}", run.stdout);
    assert!(
        run.stdout.contains("stays valid on the gateway"),
        "{}",
        run.stdout
    );
    assert_eq!(
        sandbox.config()["gateways"]["production"],
        json!({"url": url})
    );
}

#[tokio::test]
async fn logout_of_a_session_the_gateway_already_ended_clears_it() {
    let gateway = FakeGateway::start().await;
    let (token, _) = gateway.add_session("admin@example.com", "admin");
    gateway.revoke_session(&token);
    let sandbox = Sandbox::new();
    sandbox.logged_in("production", &gateway.url, &token, "admin@example.com");
    let run = sandbox.run(&["logout"]).await;
    run.assert_ok();
    assert!(
        run.stdout.contains("already ended the session"),
        "{}",
        run.stdout
    );
    assert_eq!(
        sandbox.config()["gateways"]["production"],
        json!({"url": gateway.url})
    );
}

#[tokio::test]
async fn test_auth_prints_who_role_and_expiry() {
    let gateway = FakeGateway::start().await;
    let (token, session) = gateway.add_session("deployer@example.com", "deployer");
    let sandbox = Sandbox::new();
    sandbox.logged_in("production", &gateway.url, &token, "deployer@example.com");
    let run = sandbox.run(&["test-auth"]).await;
    run.assert_ok();
    let expires = chrono::DateTime::parse_from_rfc3339(&session.expires_at)
        .unwrap()
        .with_timezone(&chrono::Utc)
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[..3],
        [
            "Authenticated as deployer@example.com",
            "Role: deployer",
            &format!("Session expires: {expires}"),
        ]
    );
    let info = gateway.requests_to("/api/v1/info");
    assert_eq!(
        info[0].authorization.as_deref(),
        Some(format!("Bearer {token}").as_str())
    );
}

#[tokio::test]
async fn an_expired_stored_session_is_refused_without_any_request() {
    let gateway = FakeGateway::start().await;
    let sandbox = Sandbox::new();
    sandbox.write_config(json!({
        "current": "production",
        "gateways": {"production": {
            "url": gateway.url, "token": "rgw_sess_old", "email": "a@example.com",
            "expires_at": "2020-01-01T00:00:00Z"
        }}
    }));
    for args in [
        &["test-auth"][..],
        &["apps"][..],
        &["api-token", "list"][..],
    ] {
        sandbox.run(args).await.assert_error(&format!(
            "session expired or invalid\nPlease run: rack-gateway login production {}",
            gateway.url
        ));
    }
    assert!(gateway.recorded().is_empty(), "{:?}", gateway.recorded());
}

#[tokio::test]
async fn a_session_the_gateway_refuses_gives_the_login_hint() {
    let gateway = FakeGateway::start().await;
    let (token, _) = gateway.add_session("admin@example.com", "admin");
    gateway.revoke_session(&token);
    let sandbox = Sandbox::new();
    sandbox.logged_in("production", &gateway.url, &token, "admin@example.com");
    sandbox.run(&["test-auth"]).await.assert_error(&format!(
        "session expired or invalid\nPlease run: rack-gateway login production {}",
        gateway.url
    ));
}

#[tokio::test]
async fn api_token_from_flag_beats_env_beats_session() {
    let gateway = FakeGateway::start().await;
    let (session, _) = gateway.add_session("viewer@example.com", "viewer");
    let (env_token, _) = gateway.add_api_token("from-env", "cicd", "ci@example.com");
    let (flag_token, _) = gateway.add_api_token("from-flag", "deployer", "deploy-bot@example.com");
    let mut sandbox = Sandbox::new();
    sandbox.logged_in("production", &gateway.url, &session, "viewer@example.com");

    let run = sandbox.run(&["test-auth"]).await;
    assert!(run
        .assert_ok()
        .stdout
        .contains("Authenticated as viewer@example.com\n"));

    sandbox.set_env("RACK_GATEWAY_API_TOKEN", env_token.clone());
    let run = sandbox.run(&["test-auth"]).await;
    run.assert_ok();
    assert!(
        run.stdout
            .contains("Authenticated as ci@example.com (API token from-env)"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Role: cicd"));
    assert!(run.stdout.contains("Token expires: never"));

    let run = sandbox
        .run(&["test-auth", "--api-token", &flag_token])
        .await;
    assert!(
        run.assert_ok().stdout.contains("(API token from-flag)"),
        "{}",
        run.stdout
    );

    // A refused API token says which one, not "run login".
    let run = sandbox
        .run(&["test-auth", "--api-token", "rgw_token_nope"])
        .await;
    run.assert_error("the API token from --api-token was refused by the gateway");
    assert!(
        run.stderr.contains("(unknown)"),
        "X-Error-Reason shown: {}",
        run.stderr
    );
}

#[tokio::test]
async fn rack_gateway_url_alone_needs_an_api_token() {
    let gateway = FakeGateway::start().await;
    let (token, _) = gateway.add_api_token("ci", "cicd", "ci@example.com");
    let mut sandbox = Sandbox::new();
    sandbox.set_env("RACK_GATEWAY_URL", gateway.url.clone());
    sandbox
        .run(&["test-auth"])
        .await
        .assert_error("RACK_GATEWAY_URL is set without a rack name, so an API token is required");
    sandbox.set_env("RACK_GATEWAY_API_TOKEN", token);
    let run = sandbox.run(&["rack"]).await;
    assert!(
        run.assert_ok()
            .stdout
            .contains("Current rack: (from environment)"),
        "{}",
        run.stdout
    );
    sandbox.run(&["test-auth"]).await.assert_ok();
}
