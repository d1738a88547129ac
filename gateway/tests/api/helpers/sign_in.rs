//! Sign-in tests' helpers: the gateway and an in-process mock OpenID provider
//! (test controls on), and the web and CLI login flows driven without a
//! browser (reqwest, `login_hint`, redirects followed by hand so each hop can
//! be checked).
#![allow(dead_code)]

use base64::Engine as _;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tools::mock_oauth::{
    MockOAuth, MockOAuthConfig, MockOAuthHandle, DEV_CLIENT_ID, DEV_CLIENT_SECRET,
};

use super::app::{spawn_app_with, TestApp};
use gateway::settings::Env;

pub const USERS: [(&str, &str); 4] = [
    ("admin@example.com", "admin"),
    ("deployer@example.com", "deployer"),
    ("ops@example.com", "ops"),
    ("viewer@example.com", "viewer"),
];

pub struct Stack {
    pub app: TestApp,
    pub oauth: MockOAuthHandle,
}

/// The gateway (with the four test users provisioned from settings, and a
/// rate limit tests do not reach) and the mock provider.
pub async fn stack(configure: impl FnOnce(&mut Env)) -> Stack {
    stack_with(|_| {}, configure).await
}

pub async fn stack_with(
    provider: impl FnOnce(&mut MockOAuthConfig),
    configure: impl FnOnce(&mut Env),
) -> Stack {
    let mut config = MockOAuthConfig {
        test_controls: true,
        ..MockOAuthConfig::default()
    };
    provider(&mut config);
    let oauth = MockOAuth::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("mock OAuth binds")
        .spawn();
    let issuer = oauth.issuer();
    let port = testkit::free_port();
    let app = spawn_app_with(|env| {
        env.set("PORT", port.to_string());
        env.set("PUBLIC_URL", format!("http://127.0.0.1:{port}"));
        env.set("OAUTH_ISSUER_URL", issuer);
        env.set("GOOGLE_CLIENT_ID", DEV_CLIENT_ID);
        env.set("GOOGLE_CLIENT_SECRET", DEV_CLIENT_SECRET);
        env.set("GOOGLE_ALLOWED_DOMAIN", "example.com");
        env.set("ADMIN_USERS", "admin@example.com");
        env.set("DEPLOYER_USERS", "deployer@example.com");
        env.set("OPERATIONS_USERS", "ops@example.com");
        env.set("VIEWER_USERS", "viewer@example.com");
        env.set("AUTH_RATE_LIMIT_PER_SECOND", "10000");
        env.set("AUTH_RATE_LIMIT_BURST", "10000");
        configure(env);
    })
    .await;
    Stack { app, oauth }
}

/// Every `Set-Cookie` header of a response.
pub fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect()
}

/// The `Set-Cookie` header that sets `name`, if any.
pub fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    set_cookies(headers)
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
}

/// The value in a `Set-Cookie` header.
pub fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default()
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("no Location on a {} response", response.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

/// Sign in at the provider as `email` (optionally with a tamper control):
/// returns where the provider sends the browser back to.
pub async fn provider_redirect(
    client: &reqwest::Client,
    auth_url: &str,
    email: &str,
    tamper: Option<&str>,
) -> url::Url {
    let mut url = url::Url::parse(auth_url).expect("auth URL parses");
    url.query_pairs_mut().append_pair("login_hint", email);
    if let Some(tamper) = tamper {
        url.query_pairs_mut().append_pair("mock_tamper", tamper);
    }
    let response = client.get(url).send().await.expect("provider answers");
    assert_eq!(
        response.status(),
        StatusCode::FOUND,
        "provider did not redirect"
    );
    url::Url::parse(&location(&response)).expect("callback URL parses")
}

/// The same path and query on the test gateway (the provider may have been
/// told a different public host).
pub fn on_app(app: &TestApp, url: &url::Url) -> String {
    let query = url.query().map(|q| format!("?{q}")).unwrap_or_default();
    app.url(&format!("{}{}", url.path(), query))
}

/// What a browser ends up with after a web login.
pub struct WebLogin {
    /// Where the callback sent the browser (`/app` or `/app/auth/error?error=...`).
    pub landing: String,
    /// The `session_token` cookie, when the login succeeded.
    pub session: Option<String>,
    pub callback_headers: HeaderMap,
    pub login_headers: HeaderMap,
    /// The callback URL the provider sent the browser to (code and state).
    pub callback_url: url::Url,
    /// The login cookie (`rgw_login_state=...`) the browser held.
    pub login_cookie: String,
}

pub async fn web_login(stack: &Stack, email: &str, tamper: Option<&str>) -> WebLogin {
    let app = &stack.app;
    let start = app
        .client
        .get(app.url("/api/v1/auth/web/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), StatusCode::SEE_OTHER, "web login start");
    let login_headers = start.headers().clone();
    let login_cookie = set_cookie(&login_headers, "rgw_login_state").expect("login cookie");
    let login_cookie = login_cookie.split(';').next().unwrap().to_owned();
    let callback_url = provider_redirect(&app.client, &location(&start), email, tamper).await;
    let callback = app
        .client
        .get(on_app(app, &callback_url))
        .header("cookie", &login_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(callback.status(), StatusCode::SEE_OTHER, "web callback");
    let session = set_cookie(callback.headers(), "session_token")
        .map(|c| cookie_value(&c))
        .filter(|v| !v.is_empty());
    WebLogin {
        landing: location(&callback),
        session,
        callback_headers: callback.headers().clone(),
        login_headers,
        callback_url,
        login_cookie,
    }
}

/// A started CLI login and the secret only this "CLI" holds.
pub struct CliLogin {
    pub state: String,
    pub auth_url: String,
    pub expires_at: String,
    pub cli_secret: String,
}

pub fn new_cli_secret() -> String {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).unwrap();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub async fn cli_start(app: &TestApp) -> CliLogin {
    let cli_secret = new_cli_secret();
    let response = app
        .client
        .post(app.url("/api/v1/auth/cli/start"))
        .json(&json!({
            "cli_secret_sha256": hex::encode(Sha256::digest(cli_secret.as_bytes())),
            "device_id": "device-1",
            "device_name": "test-laptop",
            "device_os": "linux",
            "client_version": "0.1.0-test",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "cli start");
    let body: Value = response.json().await.unwrap();
    CliLogin {
        state: body["state"].as_str().unwrap().to_owned(),
        auth_url: body["auth_url"].as_str().unwrap().to_owned(),
        expires_at: body["expires_at"].as_str().unwrap().to_owned(),
        cli_secret,
    }
}

/// The browser half of a CLI login: sign in at the provider, follow the
/// callback; returns the callback's redirect target.
pub async fn cli_browser(
    app: &TestApp,
    login: &CliLogin,
    email: &str,
    tamper: Option<&str>,
) -> String {
    let callback_url = provider_redirect(&app.client, &login.auth_url, email, tamper).await;
    let callback = app
        .client
        .get(on_app(app, &callback_url))
        .send()
        .await
        .unwrap();
    assert_eq!(callback.status(), StatusCode::SEE_OTHER, "cli callback");
    location(&callback)
}

pub async fn cli_complete(
    app: &TestApp,
    state: &str,
    cli_secret: &str,
) -> (StatusCode, HeaderMap, Value) {
    let response = app
        .client
        .post(app.url("/api/v1/auth/cli/complete"))
        .json(&json!({
            "state": state,
            "cli_secret": cli_secret,
            "device_id": "device-1",
            "device_name": "test-laptop",
            "device_os": "linux",
            "client_version": "0.1.0-test",
        }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

/// A whole CLI login that must succeed: the `/complete` body.
pub async fn cli_login(app: &TestApp, email: &str) -> Value {
    let login = cli_start(app).await;
    let landing = cli_browser(app, &login, email, None).await;
    assert!(landing.starts_with("/app/cli/auth/success"), "{landing}");
    let (status, _, body) = cli_complete(app, &login.state, &login.cli_secret).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

pub async fn get_page(app: &TestApp, path: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url(path));
    if let Some(session) = cookie {
        request = request.header("cookie", format!("session_token={session}"));
    }
    request.send().await.unwrap()
}

/// `GET /api/v1/info` with a Bearer secret.
pub async fn info(app: &TestApp, secret: &str) -> (StatusCode, HeaderMap, Value) {
    let response = app
        .client
        .get(app.url("/api/v1/info"))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

pub fn error_reason(headers: &HeaderMap) -> String {
    headers
        .get("x-error-reason")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The `auth.login.failed` events, as `(reason, detail, email, channel)`.
pub async fn failures(app: &TestApp) -> Vec<(String, Option<String>, Option<String>, String)> {
    app.events_of("auth.login.failed")
        .await
        .into_iter()
        .map(|e| {
            let d = &e["data"];
            (
                d["reason"].as_str().unwrap_or_default().to_owned(),
                d["detail"].as_str().map(str::to_owned),
                d["email"].as_str().map(str::to_owned),
                d["channel"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The newest `auth.login.failed` event's data.
pub async fn last_failure(app: &TestApp) -> Value {
    app.events_of("auth.login.failed")
        .await
        .pop()
        .map(|e| e["data"].clone())
        .expect("an auth.login.failed event")
}

/// No secret anywhere in the chain: no session or API token (whatever its
/// value), no JWT, and none of the given values (codes, states, cookies...).
pub async fn assert_no_secrets_in_events(app: &TestApp, secrets: &[String]) {
    let all: Vec<String> = sqlx::query_scalar("SELECT convert_from(canonical, 'UTF8') FROM events")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert!(!all.is_empty());
    for event in &all {
        for marker in [
            "rgw_sess_",
            "rgw_token_",
            "eyJ",
            "test-app-secret-key",
            DEV_CLIENT_SECRET,
        ] {
            assert!(!event.contains(marker), "event holds {marker:?}: {event}");
        }
        for secret in secrets.iter().filter(|s| s.len() >= 8) {
            assert!(
                !event.contains(secret.as_str()),
                "event holds a secret: {event}"
            );
        }
    }
}

/// The projections equal a refold of the chain.
pub async fn assert_projections_rebuild(app: &TestApp) {
    let (report, differences) = projections::rebuild::check(&app.pool)
        .await
        .expect("rebuild check runs");
    assert!(
        differences.is_empty(),
        "projections differ from the chain: {differences:?}"
    );
    assert!(report.folded > 0);
}

/// The CSRF token the documentation defines: base64(HMAC-SHA256(APP_SECRET_KEY, "csrf|" + token)).
pub fn csrf_token(app: &TestApp, session: &str) -> String {
    use hmac::Mac;
    let key = app.env.get("APP_SECRET_KEY").expect("test APP_SECRET_KEY");
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(format!("csrf|{session}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}
