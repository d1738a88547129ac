//! `rack`, `racks`, `switch`, selection precedence, `gateway`, `version`, `web`, `completion`.

use serde_json::json;

use crate::support::{first_line_of, FakeGateway, Sandbox};

fn three_racks(sandbox: &Sandbox) {
    let future = (chrono::Utc::now() + chrono::Duration::days(30))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    sandbox.write_config(json!({
        "current": "cur",
        "machine_id": "m-1",
        "mfa_preference": "default",
        "gateways": {
            "cur": {"url": "https://cur.example.com", "token": "rgw_sess_a", "email": "me@example.com", "expires_at": future},
            "old": {"url": "https://old.example.com", "token": "rgw_sess_b", "email": "me@example.com", "expires_at": "2020-01-01T00:00:00Z"},
            "new": {"url": "https://new.example.com"}
        }
    }));
}

#[tokio::test]
async fn rack_shows_the_status_lines() {
    let mut sandbox = Sandbox::new();
    three_racks(&sandbox);
    let config = sandbox.config();
    let expires = config["gateways"]["cur"]["expires_at"]
        .as_str()
        .unwrap()
        .to_owned();

    let run = sandbox.run(&["rack"]).await;
    run.assert_ok();
    let expires_rfc3339 = chrono::DateTime::parse_from_rfc3339(&expires)
        .unwrap()
        .with_timezone(&chrono::Utc)
        .to_rfc3339();
    assert_eq!(
        run.stdout,
        format!(
            "Current rack: cur\nGateway URL: https://cur.example.com\nStatus: Logged in as me@example.com\nToken expires: {expires_rfc3339}\n"
        )
    );
    let run = sandbox.run(&["rack", "-r", "old"]).await;
    assert!(
        run.assert_ok().stdout.ends_with("Status: Token expired\n"),
        "{}",
        run.stdout
    );
    let run = sandbox.run(&["rack", "--rack", "new"]).await;
    assert!(
        run.assert_ok().stdout.ends_with("Status: Not logged in\n"),
        "{}",
        run.stdout
    );

    sandbox.set_env("RACK_GATEWAY_API_TOKEN", "rgw_token_x");
    let run = sandbox.run(&["rack"]).await;
    assert!(run
        .assert_ok()
        .stdout
        .ends_with("Status: Using the API token from RACK_GATEWAY_API_TOKEN\n"));
}

#[tokio::test]
async fn selection_order_flag_then_env_rack_then_env_url_then_current() {
    let mut sandbox = Sandbox::new();
    three_racks(&sandbox);
    sandbox.set_env("RACK_GATEWAY_RACK", "old");
    sandbox.set_env("RACK_GATEWAY_URL", "env-gateway.example.com/");
    sandbox.set_env("RACK_GATEWAY_API_TOKEN", "rgw_token_x");

    let current = |stdout: &str| {
        stdout
            .lines()
            .take(2)
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let run = sandbox.run(&["rack", "--rack", "new"]).await;
    assert_eq!(
        current(&run.assert_ok().stdout),
        [
            "Current rack: new",
            "Gateway URL: https://env-gateway.example.com"
        ]
    );
    let run = sandbox.run(&["rack"]).await;
    assert_eq!(
        current(&run.assert_ok().stdout),
        [
            "Current rack: old",
            "Gateway URL: https://env-gateway.example.com"
        ]
    );
    sandbox.remove_env("RACK_GATEWAY_RACK");
    let run = sandbox.run(&["rack"]).await;
    assert_eq!(
        current(&run.assert_ok().stdout),
        [
            "Current rack: (from environment)",
            "Gateway URL: https://env-gateway.example.com"
        ]
    );
    sandbox.remove_env("RACK_GATEWAY_URL");
    let run = sandbox.run(&["rack"]).await;
    assert_eq!(
        current(&run.assert_ok().stdout),
        ["Current rack: cur", "Gateway URL: https://cur.example.com"]
    );

    let empty = Sandbox::new();
    empty.run(&["rack"]).await.assert_error(
        "no rack selected. Run: rack-gateway login <rack> <gateway-url> or use --rack flag",
    );
    empty
        .run(&["rack", "--rack", "ghost"])
        .await
        .assert_error("rack ghost is not configured. Run: rack-gateway login ghost <gateway-url>");
}

#[tokio::test]
async fn racks_lists_and_marks_current_and_switch_changes_it() {
    let sandbox = Sandbox::new();
    sandbox.run(&["racks"]).await.assert_ok();
    three_racks(&sandbox);
    let run = sandbox.run(&["racks"]).await;
    run.assert_ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(
        lines[0].starts_with("* cur ") && lines[0].ends_with("logged in as me@example.com"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("  new ") && lines[1].ends_with("not logged in"),
        "{lines:?}"
    );
    assert!(
        lines[2].starts_with("  old ") && lines[2].ends_with("token expired"),
        "{lines:?}"
    );

    let run = sandbox.run(&["switch", "new"]).await;
    assert_eq!(
        run.assert_ok().stdout,
        "Switched to new (https://new.example.com)\n"
    );
    assert_eq!(sandbox.config()["current"], "new");
    let run = sandbox.run(&["racks"]).await;
    assert!(run.stdout.lines().any(|l| l.starts_with("* new ")));

    sandbox
        .run(&["switch", "ghost"])
        .await
        .assert_error("rack ghost is not configured (configured: cur, new, old)");
    assert_eq!(sandbox.config()["current"], "new");
}

#[tokio::test]
async fn legacy_current_file_goes_away_on_the_first_save() {
    let sandbox = Sandbox::new();
    three_racks(&sandbox);
    std::fs::write(sandbox.config_dir().join("current"), "old\n").unwrap();
    sandbox.run(&["switch", "old"]).await.assert_ok();
    assert!(!sandbox.config_dir().join("current").exists());
}

#[tokio::test]
async fn gateway_and_version_show_server_information() {
    let gateway = FakeGateway::start().await;
    let (token, _) = gateway.add_session("ops@example.com", "ops");
    let sandbox = Sandbox::new();
    sandbox.logged_in("production", &gateway.url, &token, "ops@example.com");

    let run = sandbox.run(&["gateway"]).await;
    run.assert_ok();
    assert!(run
        .stdout
        .contains(&format!("Gateway URL: {}", gateway.url)));
    assert!(
        run.stdout.contains("Health: ok (rack-gateway)"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Gateway version: 9.9.9-fake"));
    assert!(run.stdout.contains("Gateway rack name: fake-rack"));
    assert!(run.stdout.contains("Signed in as: ops@example.com (ops)"));

    let run = sandbox.run(&["version"]).await;
    run.assert_ok();
    assert_eq!(
        run.stdout,
        format!(
            "rack-gateway CLI {}\nGateway 9.9.9-fake\n",
            env!("CARGO_PKG_VERSION")
        )
    );

    // Logged out: the CLI version still shows, and why the gateway's does not.
    let empty = Sandbox::new();
    let run = empty.run(&["version"]).await;
    run.assert_ok();
    assert!(
        run.stdout.contains("Gateway: unknown (no rack selected."),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn web_opens_the_app_page() {
    let sandbox = Sandbox::new();
    sandbox.logged_in(
        "production",
        "https://gw.example.com/prefix/",
        "rgw_sess_x",
        "a@example.com",
    );
    let run = sandbox.run(&["web"]).await;
    run.assert_ok();
    assert_eq!(run.stdout, "Opening https://gw.example.com/prefix/app\n");
    assert_eq!(
        first_line_of(&sandbox.browser_log()).await,
        "https://gw.example.com/prefix/app"
    );
}

#[tokio::test]
async fn completions_and_help() {
    let sandbox = Sandbox::new();
    for shell in ["bash", "zsh", "fish"] {
        let run = sandbox.run(&["completion", shell]).await;
        run.assert_ok();
        assert!(run.stdout.contains("rack-gateway"), "{shell}");
        assert!(
            run.stdout.contains("test-auth") && run.stdout.contains("api-token"),
            "{shell}"
        );
    }
    let run = sandbox.run(&[]).await;
    assert!(run.assert_ok().stdout.contains("Usage: rack-gateway"));
    let run = sandbox.run(&["--bogus"]).await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .starts_with("Error: unexpected argument '--bogus'"),
        "{}",
        run.stderr
    );
    assert!(
        !sandbox.config_path().exists(),
        "help and completion touch no config"
    );
}
