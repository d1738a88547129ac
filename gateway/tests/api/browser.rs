//! A real browser signs in: headless Chromium (Debian's `chromium`), driven
//! through `chromedriver` by fantoccini, opens `/app`, is sent to the login
//! page, clicks "Sign in with Google", picks the admin on the mock
//! provider's page, and lands on `/app` showing who is signed in; then signs
//! out with the page's button.
//!
//! Skips loudly when Chromium or chromedriver is missing, unless
//! `RGW_REQUIRE_BROWSER=1` (set by `scripts/test`, which installs them): then
//! a missing browser fails the test.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};

use crate::helpers::TestApp;

pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";
pub(crate) const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// chromedriver in a process group of its own; the whole group (driver and
/// the browsers it started) is killed when this is dropped.
pub(crate) struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(-(self.0.id() as i32));
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

pub(crate) fn browser_binaries() -> Option<(PathBuf, PathBuf)> {
    let chromium = std::env::var_os("CHROMIUM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(CHROMIUM));
    let driver = std::env::var_os("CHROMEDRIVER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(CHROMEDRIVER));
    (chromium.exists() && driver.exists()).then_some((chromium, driver))
}

pub(crate) async fn start_driver(driver: &Path) -> (Driver, String) {
    let port = testkit::free_port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start chromedriver");
    let guard = Driver(child);
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(response) = reqwest::get(format!("{url}/status")).await {
            if response.status().is_success() {
                break;
            }
        }
        assert!(Instant::now() < deadline, "chromedriver did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (guard, url)
}

pub(crate) async fn wait_for_path(client: &fantoccini::Client, path: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let url = client.current_url().await.expect("current URL");
        if url.path() == path {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "browser stayed at {url}, not {path}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The browsers and drivers, or `None` (the caller returns: skipped) when
/// they are missing and `RGW_REQUIRE_BROWSER` is not `1` (then: panic).
pub(crate) fn required_browser() -> Option<(PathBuf, PathBuf)> {
    let found = browser_binaries();
    if found.is_none() {
        if std::env::var("RGW_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("RGW_REQUIRE_BROWSER=1 but {CHROMIUM} or {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)");
        }
        eprintln!(
            "\n*** SKIPPED browser test: {CHROMIUM} or {CHROMEDRIVER} is missing \
             (apt-get install chromium chromium-driver, or run scripts/test) ***\n"
        );
    }
    found
}

/// A headless Chromium session on `driver_url`, with WebDriver's virtual
/// authenticators enabled (WebAuthn tests add them).
pub(crate) async fn chromium(
    chromium: &Path,
    driver_url: &str,
    profile: &Path,
) -> fantoccini::Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    capabilities.insert("webauthn:virtualAuthenticators".into(), true.into());
    // chromedriver is on loopback over plain HTTP: no TLS stack needed for the WebDriver client.
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(driver_url)
        .await
        .expect("a Chromium session")
}

#[tokio::test]
async fn a_browser_signs_in_through_the_provider_page_and_sees_who_it_is() {
    let Some((chromium_bin, driver)) = browser_binaries() else {
        if std::env::var("RGW_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("RGW_REQUIRE_BROWSER=1 but {CHROMIUM} or {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)");
        }
        eprintln!(
            "\n*** SKIPPED browser test: {CHROMIUM} or {CHROMEDRIVER} is missing \
             (apt-get install chromium chromium-driver, or run scripts/test) ***\n"
        );
        return;
    };
    let app = TestApp::build().sign_in().spawn().await;
    let (_driver, driver_url) = start_driver(&driver).await;
    let profile = tempfile::tempdir().expect("profile dir");
    let client = chromium(&chromium_bin, &driver_url, profile.path()).await;

    let result = async {
        client.goto(&app.url("/app")).await?;
        wait_for_path(&client, "/app/login").await;
        client.find(Locator::Id("sign-in")).await?.click().await?;
        // The mock provider's picker: choose the admin.
        let admin = client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(
                r#"button[name="login_hint"][value="admin@example.com"]"#,
            ))
            .await?;
        admin.click().await?;
        wait_for_path(&client, "/app").await;
        let email = client.find(Locator::Id("email")).await?.text().await?;
        let role = client.find(Locator::Id("role")).await?.text().await?;
        let name = client.find(Locator::Id("name")).await?.text().await?;
        assert_eq!(email, "admin@example.com");
        assert_eq!(role, "admin");
        assert!(!name.is_empty());
        // Signing out with the page's button ends the session.
        client.find(Locator::Id("sign-out")).await?.click().await?;
        wait_for_path(&client, "/app/login").await;
        client.goto(&app.url("/app")).await?;
        wait_for_path(&client, "/app/login").await;
        Ok::<(), fantoccini::error::CmdError>(())
    }
    .await;
    let _ = client.close().await;
    result.expect("browser steps");

    let succeeded = app.events_of("auth.login.succeeded").await;
    assert_eq!(succeeded.len(), 1);
    assert_eq!(succeeded[0]["data"]["email"], "admin@example.com");
    assert_eq!(succeeded[0]["data"]["channel"], "web");
    assert_eq!(app.events_of("auth.logout").await.len(), 1);
    app.assert_no_secrets_in_events(&[]).await;
}
