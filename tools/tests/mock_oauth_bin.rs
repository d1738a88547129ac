//! The `mock-oauth` binary: the command-line contract other scripts rely on.

mod mock_oauth_support;

use std::process::Stdio;

use reqwest::StatusCode;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};

use mock_oauth_support::*;

struct Running {
    child: Child,
    url: String,
    stdout: BufReader<ChildStdout>,
    stderr: ChildStderr,
}

/// Start the binary and read the URL from its first stdout line.
async fn launch(args: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mock-oauth"))
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn mock-oauth");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let stderr = child.stderr.take().expect("stderr");
    let mut first = String::new();
    tokio::time::timeout(TIMEOUT, stdout.read_line(&mut first))
        .await
        .expect("first stdout line within the timeout")
        .expect("read stdout");
    Running {
        child,
        url: first.trim_end().to_owned(),
        stdout,
        stderr,
    }
}

impl Running {
    /// SIGTERM, then the exit status and everything written to stderr and (after the URL) stdout.
    async fn terminate(mut self) -> (std::process::ExitStatus, String, String) {
        let pid = self.child.id().expect("still running");
        let pid = libc::pid_t::try_from(pid).expect("pid fits");
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(sent, 0, "send SIGTERM");
        let status = tokio::time::timeout(TIMEOUT, self.child.wait())
            .await
            .expect("exit within the timeout after SIGTERM")
            .expect("wait");
        let mut stderr = String::new();
        let mut rest = String::new();
        tokio::time::timeout(TIMEOUT, async {
            self.stderr
                .read_to_string(&mut stderr)
                .await
                .expect("stderr");
            self.stdout.read_to_string(&mut rest).await.expect("stdout");
        })
        .await
        .expect("pipes close after exit");
        (status, stderr, rest)
    }
}

#[tokio::test]
async fn prints_its_url_first_and_serves_the_dev_defaults() {
    let running = launch(&["--port", "0"]).await;
    let url = url::Url::parse(&running.url).expect("first line is a URL");
    assert_eq!(url.scheme(), "http");
    assert_eq!(url.host_str(), Some("127.0.0.1"));
    assert!(url.port().is_some_and(|p| p != 0), "real port: {url}");
    let base = running.url.clone();

    let client = client();
    let doc = json(
        client
            .get(format!("{base}/.well-known/openid-configuration"))
            .send()
            .await
            .expect("discovery"),
    )
    .await;
    assert_eq!(
        doc["issuer"],
        base.as_str(),
        "default issuer is the printed URL"
    );

    // The documented dev client works, with any loopback redirect.
    let jwks = fetch_jwks(&client, &base).await;
    let request = AuthRequest::new("rack-gateway-dev", Some("viewer@example.com"));
    let code = obtain_code(&client, &base, &request).await;
    let response = exchange(
        &client,
        &base,
        &code,
        &request.redirect_uri,
        &request.pkce.verifier,
        "rack-gateway-dev",
        "rack-gateway-dev-secret",
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let tokens = json(response).await;
    let id_token = tokens["id_token"].as_str().expect("id_token").to_owned();
    let claims = verify(&jwks, &id_token, &validation(&base, "rack-gateway-dev"))
        .expect("verifies")
        .claims;
    assert_eq!(claims["email"], "viewer@example.com");

    // Test controls are off by default.
    let request = AuthRequest::new("rack-gateway-dev", Some("viewer@example.com"))
        .with("mock_tamper", "expired");
    assert_eq!(
        request.send(&client, &base).await.status(),
        StatusCode::BAD_REQUEST
    );

    let (status, stderr, rest) = running.terminate().await;
    assert!(
        status.success(),
        "clean exit on SIGTERM: {status:?}\n{stderr}"
    );
    assert!(rest.is_empty(), "nothing but the URL on stdout: {rest:?}");
    assert!(
        stderr.contains("tokens issued"),
        "logs the sign-in: {stderr}"
    );
    // Logs never carry secrets.
    let access_token = tokens["access_token"].as_str().expect("access_token");
    for secret in [
        "rack-gateway-dev-secret",
        code.as_str(),
        access_token,
        id_token.as_str(),
    ] {
        assert!(!stderr.contains(secret), "a secret leaked into the log");
    }
}

#[tokio::test]
async fn honours_client_redirect_and_test_control_flags() {
    let running = launch(&[
        "--port",
        "0",
        "--client-id",
        "ci-client",
        "--client-secret",
        "ci-secret",
        "--redirect-uri",
        REDIRECT_URI,
        "--redirect-uri",
        "http://127.0.0.1:8765/second",
        "--test-controls",
    ])
    .await;
    let base = running.url.clone();
    let client = client();
    let jwks = fetch_jwks(&client, &base).await;

    // Only the listed redirect URIs.
    let mut request = AuthRequest::new("ci-client", Some("admin@example.com"));
    request.redirect_uri = "http://127.0.0.1:8765/not-listed".to_owned();
    assert_eq!(
        request.send(&client, &base).await.status(),
        StatusCode::BAD_REQUEST
    );
    let mut request = AuthRequest::new("ci-client", Some("admin@example.com"));
    request.redirect_uri = "http://127.0.0.1:8765/second".to_owned();
    obtain_code(&client, &base, &request).await;

    // The dev client is not configured here.
    let request = AuthRequest::new("rack-gateway-dev", Some("admin@example.com"));
    assert_eq!(
        request.send(&client, &base).await.status(),
        StatusCode::BAD_REQUEST
    );

    // --test-controls enables mock_tamper.
    let request =
        AuthRequest::new("ci-client", Some("admin@example.com")).with("mock_tamper", "wrong_aud");
    let code = obtain_code(&client, &base, &request).await;
    let response = exchange(
        &client,
        &base,
        &code,
        &request.redirect_uri,
        &request.pkce.verifier,
        "ci-client",
        "ci-secret",
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let tokens = json(response).await;
    let error = verify(
        &jwks,
        tokens["id_token"].as_str().expect("id_token"),
        &validation(&base, "ci-client"),
    )
    .expect_err("wrong_aud token must fail audience validation");
    assert_eq!(
        error.kind(),
        &jsonwebtoken::errors::ErrorKind::InvalidAudience
    );

    let (status, stderr, _) = running.terminate().await;
    assert!(
        status.success(),
        "clean exit on SIGTERM: {status:?}\n{stderr}"
    );
    assert!(
        !stderr.contains("ci-secret"),
        "client secret leaked into the log"
    );
}

#[tokio::test]
async fn refuses_a_bad_issuer_with_an_error() {
    let output = tokio::time::timeout(
        TIMEOUT,
        Command::new(env!("CARGO_BIN_EXE_mock-oauth"))
            .args(["--port", "0", "--issuer", "ftp://nope"])
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("exits within the timeout")
    .expect("run");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "no URL printed when not serving");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid issuer"), "{stderr}");
}
