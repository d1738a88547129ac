//! Signing in through the in-process mock OpenID provider (test controls
//! on), without a browser: reqwest, `login_hint`, and redirects followed by
//! hand so each hop can be checked. [`TestApp::signed_in`] is the one way a
//! test gets a signed-in person's session.

use base64::Engine as _;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tools::mock_oauth::{
    MockOAuth, MockOAuthConfig, MockOAuthHandle, DEV_CLIENT_ID, DEV_CLIENT_SECRET,
};

use super::app::TestApp;
use super::http::{cookie_value, location, set_cookie};
use super::Role;
use gateway::settings::Env;

/// The people the mock provider knows and the gateway provisions from settings, in [`Role::ALL`] order.
pub const PEOPLE: [Role; 4] = [Role::Viewer, Role::Ops, Role::Deployer, Role::Admin];

/// The test person who holds `role` (`<role>@example.com`).
pub fn person(role: Role) -> String {
    assert!(PEOPLE.contains(&role), "no test person holds {role}");
    format!("{role}@example.com")
}

/// Start the provider and point `env` at it: the gateway's public URL is fixed
/// before it binds (the provider is told where to send people back).
pub(super) async fn start_provider(env: &mut Env, config: MockOAuthConfig) -> MockOAuthHandle {
    let oauth = MockOAuth::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("mock OAuth binds")
        .spawn();
    let port = testkit::free_port();
    env.set("PORT", port.to_string());
    env.set("PUBLIC_URL", format!("http://127.0.0.1:{port}"));
    env.set("OAUTH_ISSUER_URL", oauth.issuer());
    env.set("GOOGLE_CLIENT_ID", DEV_CLIENT_ID);
    env.set("GOOGLE_CLIENT_SECRET", DEV_CLIENT_SECRET);
    env.set("GOOGLE_ALLOWED_DOMAIN", "example.com");
    env.set("ADMIN_USERS", person(Role::Admin));
    env.set("DEPLOYER_USERS", person(Role::Deployer));
    env.set("OPERATIONS_USERS", person(Role::Ops));
    env.set("VIEWER_USERS", person(Role::Viewer));
    env.set("AUTH_RATE_LIMIT_PER_SECOND", "10000");
    env.set("AUTH_RATE_LIMIT_BURST", "10000");
    oauth
}

/// A signed-in person's session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The secret: `rgw_sess_...` (a CLI token, or a browser's cookie value).
    pub token: String,
    /// Its id (CLI sessions; the `/complete` answer names it).
    pub id: Option<String>,
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

/// A started CLI login and the secret only this "CLI" holds.
pub struct CliLogin {
    pub state: String,
    pub auth_url: String,
    pub expires_at: String,
    pub cli_secret: String,
    /// The short code the CLI prints and the confirmation page shows.
    pub user_code: String,
}

/// A CLI login the provider admitted, waiting on its confirmation page.
pub struct Unconfirmed {
    /// Where the callback sent the browser (`/app/cli/auth/confirm?login=…`, or an error page).
    pub landing: String,
    /// `name=value` of the confirmation cookie only this browser holds, if one was set.
    pub cookie: Option<String>,
}

/// A CLI login request body, with the device the CLI describes itself as.
fn from_the_test_laptop(mut body: Value) -> Value {
    let device = json!({
        "device_id": "device-1",
        "device_name": "test-laptop",
        "device_os": "linux",
        "client_version": "0.1.0-test",
    });
    if let (Some(body), Value::Object(device)) = (body.as_object_mut(), device) {
        body.extend(device);
    }
    body
}

pub fn new_cli_secret() -> String {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).unwrap();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl TestApp {
    /// The test person holding `role`, signed in through the CLI flow.
    pub async fn signed_in(&self, role: Role) -> Session {
        let email = person(role);
        let body = self.cli_login(&email).await;
        Session {
            token: body["token"].as_str().expect("a session token").to_owned(),
            id: body["session_id"].as_str().map(str::to_owned),
        }
    }

    /// The test person holding `role`, signed in through the web flow (the session cookie).
    pub async fn signed_in_on_the_web(&self, role: Role) -> Session {
        let email = person(role);
        let login = self.web_login(&email, None).await;
        assert_eq!(login.landing, "/app", "{email} signed in on the web");
        Session {
            token: login.session.expect("a session cookie"),
            id: None,
        }
    }

    /// A whole CLI login that must succeed: the `/complete` body.
    pub async fn cli_login(&self, email: &str) -> Value {
        let login = self.cli_start().await;
        let landing = self.cli_browser(&login, email, None).await;
        assert!(landing.starts_with("/app/cli/auth/success"), "{landing}");
        let (status, _, body) = self.cli_complete(&login.state, &login.cli_secret).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Sign in at the provider as `email` (optionally with a tamper control):
    /// returns where the provider sends the browser back to.
    pub async fn provider_redirect(
        &self,
        auth_url: &str,
        email: &str,
        tamper: Option<&str>,
    ) -> url::Url {
        let mut url = url::Url::parse(auth_url).expect("auth URL parses");
        url.query_pairs_mut().append_pair("login_hint", email);
        if let Some(tamper) = tamper {
            url.query_pairs_mut().append_pair("mock_tamper", tamper);
        }
        let response = self.client.get(url).send().await.expect("provider answers");
        assert_eq!(
            response.status(),
            StatusCode::FOUND,
            "provider did not redirect"
        );
        url::Url::parse(&location(&response)).expect("callback URL parses")
    }

    /// The same path and query on this gateway (the provider may have been
    /// told a different public host).
    pub fn on_app(&self, url: &url::Url) -> String {
        let query = url.query().map(|q| format!("?{q}")).unwrap_or_default();
        self.url(&format!("{}{}", url.path(), query))
    }

    /// `GET /api/v1/auth/web/login`: the start of a web login.
    pub async fn web_login_start(&self) -> reqwest::Response {
        self.anonymous().page("/api/v1/auth/web/login").await
    }

    pub async fn web_login(&self, email: &str, tamper: Option<&str>) -> WebLogin {
        let start = self.web_login_start().await;
        assert_eq!(start.status(), StatusCode::SEE_OTHER, "web login start");
        let login_headers = start.headers().clone();
        let login_cookie = set_cookie(&login_headers, "rgw_login_state").expect("login cookie");
        let login_cookie = login_cookie.split(';').next().unwrap().to_owned();
        let callback_url = self
            .provider_redirect(&location(&start), email, tamper)
            .await;
        let callback = self
            .client
            .get(self.on_app(&callback_url))
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

    pub async fn cli_start(&self) -> CliLogin {
        let cli_secret = new_cli_secret();
        let response = self
            .client
            .post(self.url("/api/v1/auth/cli/start"))
            .json(&from_the_test_laptop(json!({
                "cli_secret_sha256": hex::encode(Sha256::digest(cli_secret.as_bytes())),
            })))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "cli start");
        let body: Value = response.json().await.unwrap();
        CliLogin {
            state: body["state"].as_str().unwrap().to_owned(),
            auth_url: body["auth_url"].as_str().unwrap().to_owned(),
            expires_at: body["expires_at"].as_str().unwrap().to_owned(),
            user_code: body["user_code"].as_str().unwrap().to_owned(),
            cli_secret,
        }
    }

    /// The browser half of a CLI login: sign in at the provider, follow the
    /// callback and, when it asks, confirm on the confirmation page (after
    /// checking it shows the CLI's code); returns where the browser ends up.
    pub async fn cli_browser(&self, login: &CliLogin, email: &str, tamper: Option<&str>) -> String {
        let unconfirmed = self.cli_browser_unconfirmed(login, email, tamper).await;
        let Some(cookie) = unconfirmed.cookie.clone() else {
            return unconfirmed.landing;
        };
        let page = self
            .client
            .get(self.url(&unconfirmed.landing))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK, "confirmation page");
        let html = page.text().await.unwrap();
        assert!(
            html.contains(&login.user_code),
            "the page shows the code: {html}"
        );
        self.cli_confirm(&unconfirmed, &cookie).await
    }

    /// Sign in at the provider for a CLI login and follow the callback, without confirming.
    pub async fn cli_browser_unconfirmed(
        &self,
        login: &CliLogin,
        email: &str,
        tamper: Option<&str>,
    ) -> Unconfirmed {
        let callback_url = self.provider_redirect(&login.auth_url, email, tamper).await;
        let callback = self
            .client
            .get(self.on_app(&callback_url))
            .send()
            .await
            .unwrap();
        assert_eq!(callback.status(), StatusCode::SEE_OTHER, "cli callback");
        let cookie = super::http::set_cookies(callback.headers())
            .into_iter()
            .find(|c| c.starts_with("rgw_cli_confirm_"))
            .and_then(|c| c.split(';').next().map(str::to_owned));
        Unconfirmed {
            landing: location(&callback),
            cookie,
        }
    }

    /// Press Confirm on the confirmation page, with this cookie (`name=value`); returns where it sends the browser.
    pub async fn cli_confirm(&self, unconfirmed: &Unconfirmed, cookie: &str) -> String {
        let login_id = unconfirmed
            .landing
            .split("login=")
            .nth(1)
            .expect("the confirmation page names its login")
            .to_owned();
        let confirmed = self
            .client
            .post(self.url("/app/cli/auth/confirm"))
            .header("cookie", cookie)
            .form(&[("login", login_id.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(confirmed.status(), StatusCode::SEE_OTHER, "confirm");
        location(&confirmed)
    }

    pub async fn cli_complete(
        &self,
        state: &str,
        cli_secret: &str,
    ) -> (StatusCode, HeaderMap, Value) {
        let response = self
            .client
            .post(self.url("/api/v1/auth/cli/complete"))
            .json(&from_the_test_laptop(json!({
                "state": state,
                "cli_secret": cli_secret,
            })))
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

    /// The newest `auth.login.failed` event's data.
    pub async fn last_login_failure(&self) -> Value {
        self.events_of("auth.login.failed")
            .await
            .pop()
            .map(|e| e["data"].clone())
            .expect("an auth.login.failed event")
    }

    /// The CSRF token the documentation defines: base64(HMAC-SHA256(APP_SECRET_KEY, "csrf|" + token)).
    pub fn csrf_token(&self, session: &str) -> String {
        use hmac::Mac;
        let key = self.env.get("APP_SECRET_KEY").expect("test APP_SECRET_KEY");
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(format!("csrf|{session}").as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }
}
