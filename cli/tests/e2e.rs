//! The done-means, end to end with real processes: `rack-gateway login`
//! → `test-auth` → `apps` (through the real `convox` CLI and the gateway's rack
//! proxy to the mock rack) → `logout` → the old token gets 401 at the proxy.
//!
//! Runs the workspace binaries `rack-gateway-server`, `mock-oauth`, `mock-rack`
//! (built by `cargo build --workspace --bins`, as `./scripts/test` does) with a
//! fresh database; the browser step is a reqwest client following `auth_url`
//! with `login_hint=admin@example.com`, which the mock provider signs in at once.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

const CLI: &str = env!("CARGO_BIN_EXE_rack-gateway");
const STEP_TIMEOUT: Duration = Duration::from_secs(90);
const RACK_PASSWORD: &str = "e2e-rack-password";

/// A child process killed when the test ends, pass or fail.
struct Proc {
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn workspace_bin(name: &str) -> PathBuf {
    let path = testkit::workspace_bin(name);
    assert!(
        path.is_file(),
        "{} is missing: build the workspace binaries first (cargo build --workspace --bins)",
        path.display()
    );
    path
}

/// Start a server that prints its URL as the first stdout line; logs go to `log`.
async fn start_printing_url(program: &Path, args: &[&str], log: &Path) -> (Proc, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("log file"))
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let url = tokio::time::timeout(STEP_TIMEOUT, lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("{} printed no URL in time", program.display()))
        .expect("read stdout")
        .unwrap_or_else(|| panic!("{} exited: see {}", program.display(), log.display()));
    // Keep draining so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (Proc { child }, url.trim().to_owned())
}

struct CliRun {
    code: i32,
    stdout: String,
    stderr: String,
}

impl CliRun {
    fn assert_ok(&self, what: &str) -> &CliRun {
        assert_eq!(
            self.code, 0,
            "{what} failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

async fn finish(child: Child) -> CliRun {
    let out = tokio::time::timeout(STEP_TIMEOUT, child.wait_with_output())
        .await
        .expect("rack-gateway finished in time")
        .expect("rack-gateway output");
    CliRun {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn http_client(follow_redirects: bool) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let policy = if follow_redirects {
        reqwest::redirect::Policy::limited(10)
    } else {
        reqwest::redirect::Policy::none()
    };
    reqwest::Client::builder()
        .redirect(policy)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// The browser's side of a CLI login: the provider, the callback (which sets
/// the confirmation cookie), the confirmation page (which must show
/// `user_code`), and Confirm. Returns where it ends and that page's text.
async fn browser_signs_in_and_confirms(auth_url: &str, user_code: &str) -> (url::Url, String) {
    let browser = http_client(false);
    let mut url = url::Url::parse(auth_url).expect("auth url");
    let mut cookie: Option<String> = None;
    for _ in 0..6 {
        let mut request = browser.get(url.clone());
        if let Some(cookie) = &cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.expect("browser step");
        for set in response.headers().get_all("set-cookie") {
            let set = set.to_str().unwrap_or_default();
            if set.starts_with("rgw_cli_confirm_") {
                cookie = set.split(';').next().map(str::to_owned);
            }
        }
        match response.headers().get("location") {
            Some(next) => url = url.join(next.to_str().expect("location")).expect("join"),
            None => {
                let page = response.text().await.unwrap_or_default();
                if !url.path().starts_with("/app/cli/auth/confirm") {
                    return (url, page);
                }
                assert!(
                    page.contains(user_code),
                    "the page shows the CLI's code: {page}"
                );
                let login = url
                    .query_pairs()
                    .find(|(k, _)| k == "login")
                    .map(|(_, v)| v.into_owned())
                    .expect("login id");
                let confirmed = browser
                    .post(url.join("/app/cli/auth/confirm").expect("join"))
                    .header("cookie", cookie.clone().expect("confirmation cookie"))
                    .form(&[("login", login.as_str())])
                    .send()
                    .await
                    .expect("confirm");
                let next = confirmed.headers()["location"].to_str().expect("location");
                url = url.join(next).expect("join");
                cookie = None;
            }
        }
    }
    panic!("the browser went round in circles at {url}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_test_auth_apps_logout_then_the_old_token_is_refused_at_the_proxy() {
    let Some(convox) = testkit::skip_without_convox("cli e2e") else {
        return;
    };
    let server_bin = workspace_bin("rack-gateway-server");
    let oauth_bin = workspace_bin("mock-oauth");
    let rack_bin = workspace_bin("mock-rack");
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    let db = testkit::fresh_database().await;

    // The rack, recording every request it receives.
    let rack_record = dir.join("rack-requests.jsonl");
    let (_rack, rack_url) = start_printing_url(
        &rack_bin,
        &[
            "--port",
            "0",
            "--password",
            RACK_PASSWORD,
            "--record",
            rack_record.to_str().expect("utf-8 path"),
        ],
        &dir.join("mock-rack.log"),
    )
    .await;
    // The OpenID provider with the test users.
    let (_oauth, oauth_url) =
        start_printing_url(&oauth_bin, &["--port", "0"], &dir.join("mock-oauth.log")).await;

    // A checkpoint key, made the operator's way.
    let key_file = dir.join("checkpoint.key");
    let keygen = std::process::Command::new(&server_bin)
        .args(["keygen", "--name", "rack-gateway-e2e", "--out"])
        .arg(&key_file)
        .env("DATABASE_URL", &db.url)
        .output()
        .expect("run keygen");
    assert!(
        keygen.status.success(),
        "keygen: {}",
        String::from_utf8_lossy(&keygen.stderr)
    );

    // The gateway.
    let port = testkit::free_port();
    let gateway_url = format!("http://127.0.0.1:{port}");
    let gateway_log = dir.join("gateway.log");
    let _gateway = Proc {
        child: Command::new(&server_bin)
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATABASE_URL", &db.url)
            .env("PORT", port.to_string())
            .env("BIND_ADDRESS", "127.0.0.1")
            .env("PUBLIC_URL", &gateway_url)
            .env("APP_SECRET_KEY", "e2e-app-secret-key-0123456789abcdef")
            .env("CHECKPOINT_SIGNING_KEY_FILE", &key_file)
            .env("RACK_NAME", "e2e")
            .env("RACK_HOST", &rack_url)
            .env("RACK_TOKEN", RACK_PASSWORD)
            .env("GOOGLE_CLIENT_ID", "rack-gateway-dev")
            .env("GOOGLE_CLIENT_SECRET", "rack-gateway-dev-secret")
            .env("GOOGLE_ALLOWED_DOMAIN", "example.com")
            .env("OAUTH_ISSUER_URL", &oauth_url)
            .env("ADMIN_USERS", "admin@example.com")
            // This journey is sign-in, proxy and sign-out; the CLI's MFA against the
            // real gateway is gateway/tests/api/cli_mfa.rs.
            .env("MFA_REQUIRE_ALL_USERS", "false")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("gateway.stdout")).expect("log"))
            .stderr(std::fs::File::create(&gateway_log).expect("log"))
            .kill_on_drop(true)
            .spawn()
            .expect("start rack-gateway-server"),
    };
    let http = http_client(false);
    let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    loop {
        let up = http.get(format!("{gateway_url}/health")).send().await;
        if matches!(&up, Ok(r) if r.status().is_success()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the gateway did not come up; log:\n{}",
            std::fs::read_to_string(&gateway_log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The user's machine.
    let home = dir.join("home");
    std::fs::create_dir_all(&home).expect("home");
    let config_dir = home.join(".config").join("rack-gateway");
    let cli = |args: &[&str]| {
        let mut command = Command::new(CLI);
        command
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &home)
            .env("CONVOX_BIN", &convox)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    };

    // 1. login: the CLI starts it and waits; the "browser" signs in as admin.
    let auth_file = dir.join("auth.env");
    let login = cli(&[
        "login",
        "e2e",
        &gateway_url,
        "--no-open",
        "--auth-file",
        auth_file.to_str().expect("utf-8 path"),
    ])
    .spawn()
    .expect("start login");
    let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    let auth_url = loop {
        let text = std::fs::read_to_string(&auth_file).unwrap_or_default();
        if let Some(url) = text.lines().find_map(|l| l.strip_prefix("AUTH_URL=")) {
            break url.to_owned();
        }
        assert!(tokio::time::Instant::now() < deadline, "no auth file");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let user_code = std::fs::read_to_string(&auth_file)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("USER_CODE=").map(str::to_owned))
        .expect("the auth file carries the user code");
    let (landed, page) = browser_signs_in_and_confirms(
        &format!("{auth_url}&login_hint=admin@example.com"),
        &user_code,
    )
    .await;
    assert!(
        landed.path().starts_with("/app/cli/auth/success"),
        "browser ended at {landed}: {page}"
    );
    assert!(page.contains("admin@example.com"), "{page}");
    let run = finish(login).await;
    run.assert_ok("login");
    assert!(
        run.stdout.contains("Logged in to e2e as admin@example.com"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(&format!("confirm only if it is {user_code}")),
        "the CLI prints the code the page shows: {}",
        run.stdout
    );
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(config_dir.join("config.json")).expect("config"))
            .expect("json");
    let old_token = config["gateways"]["e2e"]["token"]
        .as_str()
        .expect("token saved")
        .to_owned();
    assert!(old_token.starts_with("rgw_sess_"));

    // 2. test-auth.
    let run = finish(cli(&["test-auth"]).spawn().expect("test-auth")).await;
    run.assert_ok("test-auth");
    assert!(
        run.stdout
            .contains("Authenticated as admin@example.com\nRole: admin\nSession expires: "),
        "{}",
        run.stdout
    );

    // 3. apps, through the real convox CLI and the gateway's rack proxy.
    let run = finish(cli(&["apps"]).spawn().expect("apps")).await;
    run.assert_ok("apps");
    assert!(run.stdout.contains("myapp"), "{}", run.stdout);
    let recorded = std::fs::read_to_string(&rack_record).unwrap_or_default();
    assert!(
        recorded
            .lines()
            .any(|l| l.contains("\"GET\"") && l.contains("\"/apps\"")),
        "the rack saw GET /apps: {recorded}"
    );

    // An admin makes a viewer API token; the proxy's denial reaches the user
    // through convox's own stderr, and a valid token gets no login hint.
    let run = finish(
        cli(&[
            "api-token",
            "create",
            "--name",
            "e2e-viewer",
            "--role",
            "viewer",
            "--output",
            "token",
        ])
        .spawn()
        .expect("api-token create"),
    )
    .await;
    run.assert_ok("api-token create");
    let viewer_token = run.stdout.trim().to_owned();
    assert!(viewer_token.starts_with("rgw_token_"), "{}", run.stdout);
    let run = finish(
        cli(&["ps", "-a", "myapp", "--api-token", &viewer_token])
            .spawn()
            .expect("ps"),
    )
    .await;
    run.assert_ok("ps as viewer");
    let run = finish(
        cli(&["restart", "-a", "myapp", "--api-token", &viewer_token])
            .spawn()
            .expect("restart"),
    )
    .await;
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stderr
            .contains("permission denied: convox:app:restart requires ops role"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("session expired"), "{}", run.stderr);

    // 4. logout.
    let run = finish(cli(&["logout"]).spawn().expect("logout")).await;
    run.assert_ok("logout");
    assert!(
        run.stdout.contains("revoked on the gateway"),
        "{}",
        run.stdout
    );

    // 5. The old token is refused at the proxy: directly, and through convox.
    let refused = http
        .get(format!("{gateway_url}/api/v1/rack-proxy/apps"))
        .basic_auth("convox", Some(&old_token))
        .send()
        .await
        .expect("proxy answers");
    assert_eq!(refused.status(), reqwest::StatusCode::UNAUTHORIZED);
    let direct = Command::new(&convox)
        .arg("apps")
        .env_clear()
        .env("HOME", &home)
        .env(
            "RACK_URL",
            format!("http://convox:{old_token}@127.0.0.1:{port}/api/v1/rack-proxy"),
        )
        .stdin(Stdio::null())
        .output()
        .await
        .expect("convox apps");
    assert!(
        !direct.status.success(),
        "convox with the revoked token must fail"
    );
    let direct_stderr = String::from_utf8_lossy(&direct.stderr);
    assert!(direct_stderr.contains("ERROR"), "{direct_stderr}");

    // A session revoked behind the CLI's back (as by an admin) still looks usable
    // locally: convox gets the 401, and the CLI adds what to do about it.
    let mut stale = config.clone();
    stale["gateways"]["e2e"]["token"] = serde_json::json!(old_token);
    std::fs::write(
        config_dir.join("config.json"),
        serde_json::to_vec_pretty(&stale).expect("json"),
    )
    .expect("write config");
    let run = finish(cli(&["apps"]).spawn().expect("apps")).await;
    assert_ne!(run.code, 0, "{}", run.stdout);
    eprintln!("convox + CLI on a revoked session:\n{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "Error: session expired or invalid\nPlease run: rack-gateway login e2e {gateway_url}"
        )),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains(&old_token) && !run.stderr.contains(&old_token));
    cli(&["logout"]).output().await.expect("logout");

    // And the CLI no longer has a session to offer.
    let run = finish(cli(&["apps"]).spawn().expect("apps")).await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(&format!(
            "Error: session expired or invalid\nPlease run: rack-gateway login e2e {gateway_url}"
        )),
        "{}",
        run.stderr
    );
}
