//! `api-token list|get|create|delete` against the fake gateway.

use serde_json::Value;

use crate::support::{FakeGateway, Sandbox};

async fn admin_sandbox() -> (FakeGateway, Sandbox) {
    let gateway = FakeGateway::start().await;
    let (token, _) = gateway.add_session("admin@example.com", "admin");
    let sandbox = Sandbox::new();
    sandbox.logged_in("production", &gateway.url, &token, "admin@example.com");
    (gateway, sandbox)
}

#[tokio::test]
async fn create_prints_the_secret_once_in_each_output_format() {
    let (gateway, sandbox) = admin_sandbox().await;

    let run = sandbox
        .run(&["api-token", "create", "--name", "ci", "--role", "cicd"])
        .await;
    run.assert_ok();
    let body = &gateway.requests_to("/api/v1/api-tokens")[0].body;
    assert_eq!(body, &serde_json::json!({"name": "ci", "role": "cicd"}));
    assert!(
        run.stdout.starts_with("Created API token ci (id tok-"),
        "{}",
        run.stdout
    );
    let secret_line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("Token: "))
        .unwrap();
    assert!(secret_line.starts_with("Token: rgw_token_"));

    let run = sandbox
        .run(&[
            "api-token",
            "create",
            "--name",
            "deploy-bot",
            "--role",
            "deployer",
            "--user",
            "deployer@example.com",
            "--expires-at",
            "2030-01-31T12:00:00Z",
            "--output",
            "token",
        ])
        .await;
    run.assert_ok();
    let bare = run.stdout.trim_end();
    assert!(
        bare.starts_with("rgw_token_") && !bare.contains(char::is_whitespace),
        "{:?}",
        run.stdout
    );
    let body = &gateway.requests_to("/api/v1/api-tokens")[1].body;
    assert_eq!(body["user_email"], "deployer@example.com");
    assert_eq!(body["expires_at"], "2030-01-31T12:00:00Z");

    let run = sandbox
        .run(&[
            "api-token",
            "create",
            "--name",
            "j",
            "--role",
            "viewer",
            "--output",
            "json",
        ])
        .await;
    run.assert_ok();
    let created: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(created["name"], "j");
    assert!(created["token"].as_str().unwrap().starts_with("rgw_token_"));

    // The secret is in no listing.
    let run = sandbox.run(&["api-token", "list", "--json"]).await;
    run.assert_ok();
    assert!(!run.stdout.contains("rgw_token_"));
    let listed: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn list_get_and_delete() {
    let (gateway, sandbox) = admin_sandbox().await;
    let (_, first) = gateway.add_api_token("ci", "cicd", "ci@example.com");
    gateway.add_api_token("backup", "viewer", "ops@example.com");
    let id = first["id"].as_str().unwrap();

    let run = sandbox.run(&["api-token", "list"]).await;
    run.assert_ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[0].starts_with("ID"), "{}", run.stdout);
    assert!(lines[0].contains("NAME") && lines[0].contains("STATUS"));
    assert!(
        lines[1].contains(id) && lines[1].contains("ci@example.com") && lines[1].contains("never")
    );
    assert!(lines[1].trim_end().ends_with("active"));
    assert_eq!(lines.len(), 3);

    let run = sandbox.run(&["api-token", "get", id]).await;
    run.assert_ok();
    assert!(
        run.stdout.contains(&format!("ID:         {id}")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Role:       cicd"));
    assert!(run.stdout.contains("Revoked:    no"));
    let run = sandbox.run(&["api-token", "get", id, "--json"]).await;
    let got: Value = serde_json::from_str(&run.assert_ok().stdout).unwrap();
    assert_eq!(got, first);

    let run = sandbox.run(&["api-token", "delete", id]).await;
    run.assert_ok();
    assert_eq!(
        run.stdout.trim_end(),
        format!("Revoked API token {id} (ci)")
    );
    assert_eq!(
        gateway
            .requests_to(&format!("/api/v1/api-tokens/{id}"))
            .last()
            .unwrap()
            .method,
        "DELETE"
    );
    let run = sandbox.run(&["api-token", "list"]).await;
    assert!(
        run.assert_ok()
            .stdout
            .lines()
            .nth(1)
            .unwrap()
            .contains("revoked "),
        "{}",
        run.stdout
    );

    sandbox
        .run(&["api-token", "get", "tok-missing"])
        .await
        .assert_error("api token not found");
}

#[tokio::test]
async fn permission_denials_and_bad_input_are_clear_errors() {
    let gateway = FakeGateway::start().await;
    let (token, _) = gateway.add_session("viewer@example.com", "viewer");
    let sandbox = Sandbox::new();
    sandbox.logged_in("production", &gateway.url, &token, "viewer@example.com");
    sandbox
        .run(&["api-token", "create", "--name", "x", "--role", "cicd"])
        .await
        .assert_error("permission denied: gateway:api_token:create requires admin role");
    sandbox
        .run(&["api-token", "list"])
        .await
        .assert_error("permission denied: gateway:api_token:read requires admin role");

    let before = gateway.recorded().len();
    sandbox
        .run(&[
            "api-token",
            "create",
            "--name",
            "x",
            "--role",
            "cicd",
            "--expires-at",
            "tomorrow",
        ])
        .await
        .assert_error("--expires-at \"tomorrow\" is not an RFC 3339 time");
    assert_eq!(gateway.recorded().len(), before, "bad input sends nothing");
    let run = sandbox
        .run(&["api-token", "create", "--name", "x", "--role", "root"])
        .await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .starts_with("Error: invalid value 'root' for '--role <ROLE>'"),
        "{}",
        run.stderr
    );
}
