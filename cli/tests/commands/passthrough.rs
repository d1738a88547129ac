//! Passthrough to convox, using the fake `convox` script from the sandbox.

use std::process::Stdio;

use tokio::io::AsyncWriteExt as _;

use crate::support::{dead_url, output, FakeGateway, Sandbox};

fn args_of(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ARG="))
        .collect()
}

fn rack_url_of(stdout: &str) -> &str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("RACK_URL="))
        .unwrap_or_default()
}

#[tokio::test]
async fn arguments_reach_convox_verbatim_with_rack_url() {
    let sandbox = Sandbox::new();
    let url = "http://127.0.0.1:8447/gw/";
    sandbox.logged_in(
        "production",
        url,
        "rgw_sess_tok-EN_123",
        "admin@example.com",
    );

    for args in [
        &["apps"][..],
        &["ps", "-a", "myapp"][..],
        &["env", "set", "A=1", "-a", "myapp"][..],
        &["run", "command", "rails console", "-a", "myapp"][..],
        &["deploy", "--wait", "-a", "myapp", "--", "-r", "x"][..],
        &["logs", "-a", "myapp", "--since", "5m", "--no-follow"][..],
    ] {
        let run = sandbox.run(args).await;
        run.assert_ok();
        assert_eq!(args_of(&run.stdout), args, "{}", run.stdout);
        assert_eq!(
            rack_url_of(&run.stdout),
            "http://convox:rgw_sess_tok-EN_123@127.0.0.1:8447/gw/api/v1/rack-proxy"
        );
        assert!(
            run.stderr.contains("fake convox stderr"),
            "stderr inherited"
        );
    }

    // `rack <sub>` is `convox rack <sub>`.
    let run = sandbox
        .run(&["rack", "params", "set", "A=1", "--wait"])
        .await;
    run.assert_ok();
    assert_eq!(
        args_of(&run.stdout),
        ["rack", "params", "set", "A=1", "--wait"]
    );
}

#[tokio::test]
async fn our_global_flags_are_consumed_wherever_they_are() {
    let mut sandbox = Sandbox::new();
    sandbox.write_config(serde_json::json!({
        "current": "production",
        "gateways": {
            "production": {"url": "https://prod.example.com", "token": "rgw_sess_prod"},
            "staging": {"url": "staging.example.com:8443", "token": "rgw_sess_staging"}
        }
    }));
    let run = sandbox
        .run(&["apps", "--api-token", "rgw_token_flag", "-r", "staging"])
        .await;
    run.assert_ok();
    assert_eq!(args_of(&run.stdout), ["apps"]);
    assert_eq!(
        rack_url_of(&run.stdout),
        "https://convox:rgw_token_flag@staging.example.com:8443/api/v1/rack-proxy"
    );

    let run = sandbox
        .run(&["--rack", "staging", "ps", "--rack=production", "-a", "x"])
        .await;
    assert_eq!(args_of(&run.assert_ok().stdout), ["ps", "-a", "x"]);
    assert_eq!(
        rack_url_of(&run.stdout),
        "https://convox:rgw_sess_prod@prod.example.com/api/v1/rack-proxy",
        "the flag after the command wins"
    );

    // RACK_GATEWAY_API_TOKEN beats the stored session.
    sandbox.set_env("RACK_GATEWAY_API_TOKEN", "rgw_token_env");
    let run = sandbox.run(&["apps"]).await;
    assert_eq!(
        rack_url_of(&run.assert_ok().stdout),
        "https://convox:rgw_token_env@prod.example.com/api/v1/rack-proxy"
    );
    // RACK_GATEWAY_RACK picks the rack.
    sandbox.set_env("RACK_GATEWAY_RACK", "staging");
    let run = sandbox.run(&["apps"]).await;
    assert!(rack_url_of(&run.assert_ok().stdout).contains("@staging.example.com:8443/"));
    // RACK_GATEWAY_URL with no rack name, plus the API token: the CI set-up.
    sandbox.remove_env("RACK_GATEWAY_RACK");
    sandbox.set_env("RACK_GATEWAY_URL", "http://ci-gateway.internal:9000");
    let run = sandbox.run(&["apps"]).await;
    assert_eq!(
        rack_url_of(&run.assert_ok().stdout),
        "http://convox:rgw_token_env@ci-gateway.internal:9000/api/v1/rack-proxy"
    );
}

#[tokio::test]
async fn convox_exit_code_and_stdin_are_passed_through() {
    let mut sandbox = Sandbox::new();
    sandbox.logged_in(
        "production",
        "https://gw.example.com",
        "rgw_sess_x",
        "a@example.com",
    );
    sandbox.set_env("FAKE_CONVOX_EXIT", "3");
    sandbox.set_env("FAKE_CONVOX_READ_STDIN", "1");
    let mut command = sandbox.command(&["exec", "web-1", "sh", "-a", "myapp"]);
    command.stdin(Stdio::piped());
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"echo hello\nexit 3\n").await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stdout.contains("STDIN=echo hello\nSTDIN=exit 3\n"),
        "{stdout}"
    );
}

#[tokio::test]
async fn an_unusable_session_never_reaches_convox() {
    let mut sandbox = Sandbox::new();
    let marker = sandbox.dir.path().join("convox-ran");
    sandbox.set_env("FAKE_CONVOX_MARKER", marker.display().to_string());
    sandbox.write_config(serde_json::json!({
        "current": "production",
        "gateways": {"production": {"url": "https://gw.example.com", "token": "rgw_sess_x", "expires_at": "2001-01-01T00:00:00Z"}}
    }));
    sandbox.run(&["apps"]).await.assert_error(
        "session expired or invalid\nPlease run: rack-gateway login production https://gw.example.com",
    );
    assert!(!marker.exists());
    // Nothing selected at all.
    let empty = Sandbox::new();
    empty.run(&["apps"]).await.assert_error(
        "no rack selected. Run: rack-gateway login <rack> <gateway-url> or use --rack flag",
    );
}

#[tokio::test]
async fn a_missing_convox_is_a_clear_error() {
    let mut sandbox = Sandbox::new();
    sandbox.logged_in(
        "production",
        "https://gw.example.com",
        "rgw_sess_x",
        "a@example.com",
    );
    sandbox.remove_env("CONVOX_BIN");
    sandbox
        .run(&["apps"])
        .await
        .assert_error("the convox CLI was not found; install it or set CONVOX_BIN");
    sandbox.set_env("CONVOX_BIN", "/nonexistent/convox");
    sandbox
        .run(&["apps"])
        .await
        .assert_error("the convox CLI was not found at /nonexistent/convox (CONVOX_BIN)");
    // On PATH works too.
    let bin_dir = sandbox.dir.path().join("bin").display().to_string();
    sandbox.remove_env("CONVOX_BIN");
    sandbox.set_env("PATH", format!("{bin_dir}:/usr/bin:/bin"));
    sandbox.run(&["apps"]).await.assert_ok();
}

#[tokio::test]
async fn a_refused_session_after_a_convox_failure_gets_the_login_hint() {
    let gateway = FakeGateway::start().await;
    let (token, _) = gateway.add_session("admin@example.com", "admin");
    let mut sandbox = Sandbox::new();
    sandbox.logged_in("production", &gateway.url, &token, "admin@example.com");
    sandbox.set_env("FAKE_CONVOX_EXIT", "1");

    // Convox failed for another reason: the session is fine, no hint.
    let run = sandbox.run(&["apps"]).await;
    assert_eq!(run.code, 1);
    assert!(!run.stderr.contains("session expired"), "{}", run.stderr);
    assert_eq!(
        gateway.requests_to("/api/v1/info").len(),
        1,
        "checked once after the failure"
    );

    gateway.revoke_session(&token);
    let run = sandbox.run(&["apps"]).await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(&format!(
            "Error: session expired or invalid\nPlease run: rack-gateway login production {}",
            gateway.url
        )),
        "{}",
        run.stderr
    );

    // Success: no extra request.
    sandbox.set_env("FAKE_CONVOX_EXIT", "0");
    let before = gateway.requests_to("/api/v1/info").len();
    sandbox.run(&["apps"]).await.assert_ok();
    assert_eq!(gateway.requests_to("/api/v1/info").len(), before);

    // An unreachable gateway after a failure: convox's code, no invented hint.
    let mut sandbox = Sandbox::new();
    sandbox.logged_in("production", &dead_url(), "rgw_sess_x", "a@example.com");
    sandbox.set_env("FAKE_CONVOX_EXIT", "4");
    let run = output(sandbox.command(&["apps"])).await;
    assert_eq!(run.code, 4);
    assert!(!run.stderr.contains("Error:"), "{}", run.stderr);
}
