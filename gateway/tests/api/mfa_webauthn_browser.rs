//! WebAuthn with a real browser: headless Chromium (Debian's) and a W3C
//! WebDriver **virtual authenticator** (`POST /session/{id}/webauthn/authenticator`).
//! The page script the gateway serves (`/app/assets/webauthn.js`) runs the
//! ceremonies against the JSON API; the test checks the answers, the events
//! and the projections.
//!
//! The gateway's public URL is `http://localhost:<port>`: WebAuthn needs a
//! secure context and a domain as RP id (`127.0.0.1` is neither allowed).

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::browser::{chromium, required_browser, start_driver};
use crate::helpers::{Role, TestApp};

/// A WebDriver command on the browser session (fantoccini has no WebAuthn helpers).
pub(crate) struct WebDriver {
    pub url: String,
    pub session: String,
    http: reqwest::Client,
}

impl WebDriver {
    pub(crate) async fn of(client: &fantoccini::Client, url: &str) -> WebDriver {
        let session = client
            .session_id()
            .await
            .expect("session id")
            .expect("a session");
        WebDriver {
            url: url.to_owned(),
            session,
            http: reqwest::Client::new(),
        }
    }

    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let url = format!("{}/session/{}/{}", self.url, self.session, path);
        let mut request = self.http.request(method.clone(), &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("chromedriver answers");
        let status = response.status();
        let value: Value = response.json().await.expect("WebDriver JSON");
        assert!(status.is_success(), "{method} {path}: {status} {value}");
        value["value"].clone()
    }

    /// A USB security key with a PIN (user verification), as WebDriver's
    /// virtual authenticator: returns its id.
    pub(crate) async fn add_security_key(&self) -> String {
        let id = self
            .call(
                reqwest::Method::POST,
                "webauthn/authenticator",
                Some(json!({
                    "protocol": "ctap2",
                    "transport": "usb",
                    "hasResidentKey": false,
                    "hasUserVerification": true,
                    "isUserConsenting": true,
                    "isUserVerified": true,
                })),
            )
            .await;
        id.as_str().expect("authenticator id").to_owned()
    }

    pub(crate) async fn credentials(&self, authenticator: &str) -> Vec<Value> {
        self.call(
            reqwest::Method::GET,
            &format!("webauthn/authenticator/{authenticator}/credentials"),
            None,
        )
        .await
        .as_array()
        .expect("credentials")
        .clone()
    }

    /// Replace the authenticator's credential by a copy whose counter is `sign_count`.
    pub(crate) async fn reset_counter(
        &self,
        authenticator: &str,
        credential: &Value,
        sign_count: u32,
    ) {
        self.call(
            reqwest::Method::DELETE,
            &format!("webauthn/authenticator/{authenticator}/credentials"),
            None,
        )
        .await;
        let mut copy = credential.clone();
        copy["signCount"] = json!(sign_count);
        self.call(
            reqwest::Method::POST,
            &format!("webauthn/authenticator/{authenticator}/credential"),
            Some(copy),
        )
        .await;
    }

    pub(crate) async fn set_user_verified(&self, authenticator: &str, verified: bool) {
        self.call(
            reqwest::Method::POST,
            &format!("webauthn/authenticator/{authenticator}/uv"),
            Some(json!({ "isUserVerified": verified })),
        )
        .await;
    }
}

/// A gateway whose public URL is `http://localhost:<port>`.
pub(crate) async fn localhost_app() -> TestApp {
    let port = testkit::free_port();
    TestApp::build()
        .sign_in()
        .env("PORT", port.to_string())
        .env("PUBLIC_URL", format!("http://localhost:{port}"))
        .spawn()
        .await
}

/// Load the gateway's WebAuthn script into the current page.
pub(crate) async fn load_script(client: &fantoccini::Client) {
    let loaded = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('/app/assets/webauthn.js').then(r => r.text())
               .then(t => { (0, eval)(t); done(typeof window.rgwWebauthn); }, e => done(String(e)));",
            vec![],
        )
        .await
        .expect("script loads");
    assert_eq!(loaded, "object");
}

/// Run `rgwWebauthn.<call>(args)` in the page: `{ok, status, body, reason}`.
pub(crate) async fn run(client: &fantoccini::Client, call: &str, args: Value) -> Value {
    client
        .execute_async(
            &format!(
                "const done = arguments[arguments.length - 1];
                 window.rgwWebauthn.{call}(arguments[0]).then(done, e => done({{ok: false, status: -1, body: {{error: String(e)}}}}));"
            ),
            vec![args],
        )
        .await
        .expect("script runs")
}

/// An assertion for `purpose` through the page script, with the session's `bearer` headers.
async fn verify(client: &fantoccini::Client, purpose: &str, bearer: &Value) -> Value {
    run(
        client,
        "verify",
        json!({"purpose": purpose, "headers": bearer}),
    )
    .await
}

#[tokio::test]
async fn a_security_key_enrols_verifies_and_a_clone_or_an_unverified_user_is_refused() {
    let Some((chromium_bin, driver)) = required_browser() else {
        return;
    };
    let app = localhost_app().await;
    let public = app.env.get("PUBLIC_URL").expect("public URL");
    let session = app.signed_in(Role::Admin).await;
    let bearer = json!({ "Authorization": format!("Bearer {}", session.token) });
    let (_driver, driver_url) = start_driver(&driver).await;
    let profile = tempfile::tempdir().expect("profile dir");
    let client = chromium(&chromium_bin, &driver_url, profile.path()).await;
    let wd = WebDriver::of(&client, &driver_url).await;
    let key = wd.add_security_key().await;

    client
        .goto(&format!("{public}/health"))
        .await
        .expect("a page on the gateway");
    load_script(&client).await;

    // Enrol.
    let enrolled = run(
        &client,
        "enroll",
        json!({"label": "blue key", "headers": bearer}),
    )
    .await;
    assert_eq!(enrolled["status"], 201, "{enrolled}");
    let method_id = enrolled["body"]["method_id"]
        .as_str()
        .expect("method id")
        .to_owned();
    assert_eq!(enrolled["body"]["method"]["cli_compatible"], true);
    assert_eq!(enrolled["body"]["method"]["kind"], "webauthn");
    assert_eq!(enrolled["body"]["mfa_verified"], true);
    // The first method brings the first backup codes, shown once.
    assert_eq!(
        enrolled["body"]["backup_codes"].as_array().map(Vec::len),
        Some(10)
    );
    let events = app.events_of("mfa.method.enrolled").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["kind"], "webauthn");
    assert_eq!(events[0]["data"]["label"], "blue key");
    assert_eq!(
        events[0]["data"]["fingerprint"].as_str().map(str::len),
        Some(16)
    );
    let credentials = wd.credentials(&key).await;
    assert_eq!(credentials.len(), 1);
    let private_key = credentials[0]["privateKey"]
        .as_str()
        .expect("private key")
        .to_owned();

    // The same key cannot be enrolled twice (excluded by the browser, refused by the server).
    let again = run(
        &client,
        "enroll",
        json!({"label": "again", "headers": bearer}),
    )
    .await;
    assert_ne!(again["status"], 201, "{again}");

    // Sign in with it (purpose login), then step up with it.
    let login = verify(&client, "login", &bearer).await;
    assert_eq!(login["status"], 200, "{login}");
    assert_eq!(login["body"]["purpose"], "login");
    let step_up = verify(&client, "step_up", &bearer).await;
    assert_eq!(step_up["status"], 200, "{step_up}");
    // Enrolment verified this session for sign-in; then the two assertions.
    let succeeded = app.events_of("mfa.verification.succeeded").await;
    assert_eq!(succeeded.len(), 3);
    for (event, purpose, step) in [
        (&succeeded[0], "login", false),
        (&succeeded[1], "login", false),
        (&succeeded[2], "step_up", true),
    ] {
        assert_eq!(event["data"]["kind"], "webauthn");
        assert_eq!(event["data"]["method_id"], method_id.as_str());
        assert_eq!(event["data"]["purpose"], purpose);
        assert_eq!(event["data"]["channel"], "cli");
        assert_eq!(event["data"]["verifies_session"], true);
        assert_eq!(event["data"]["opens_step_up"], step);
    }
    let (verified, step_up_at): (bool, Option<chrono::DateTime<chrono::Utc>>) =
        sqlx::query_as("SELECT mfa_verified, recent_step_up_at FROM sessions WHERE id = $1::uuid")
            .bind(session.id.as_deref().expect("session id"))
            .fetch_one(&app.pool)
            .await
            .expect("session row");
    assert!(verified);
    assert!(step_up_at.is_some());

    // A ceremony is used once: an unknown one is refused and counted.
    let forged = app
        .client
        .post(app.url("/api/v1/auth/mfa/webauthn/assertion/verify"))
        .bearer_auth(&session.token)
        .json(&json!({
            "ceremony_id": uuid::Uuid::new_v4(),
            "credential": {"id": "AA", "rawId": "AA", "type": "public-key",
                "response": {"authenticatorData": "AA", "clientDataJSON": "AA", "signature": "AA"}},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        crate::helpers::error_reason(forged.headers()),
        "ceremony_invalid"
    );

    // The authenticator does not verify the user, and the client asks it not to:
    // the assertion reaches the server without the UV bit, and is refused.
    wd.set_user_verified(&key, false).await;
    let no_uv = run(
        &client,
        "verify",
        json!({"purpose": "step_up", "headers": bearer, "userVerification": "discouraged"}),
    )
    .await;
    assert_eq!(no_uv["status"], 403, "{no_uv}");
    assert_eq!(no_uv["reason"], "user_verification_missing", "{no_uv}");
    wd.set_user_verified(&key, true).await;

    // A clone: the key's counter is put well ahead, then a copy with a lower counter signs.
    let credential = wd.credentials(&key).await.remove(0);
    wd.reset_counter(&key, &credential, 10).await;
    let ahead = verify(&client, "step_up", &bearer).await;
    assert_eq!(ahead["status"], 200, "{ahead}");
    wd.reset_counter(&key, &credential, 3).await;
    let clone = verify(&client, "step_up", &bearer).await;
    assert_eq!(clone["status"], 403, "{clone}");
    assert_eq!(clone["reason"], "counter_regression", "{clone}");
    let regressed = app.events_of("mfa.webauthn.counter_regressed").await;
    assert_eq!(regressed.len(), 1);
    assert_eq!(regressed[0]["data"]["method_id"], method_id.as_str());
    assert_eq!(regressed[0]["data"]["stored_counter"], 11);
    assert_eq!(regressed[0]["data"]["presented_counter"], 4);
    let alerts = app.events_of("security.alert").await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["data"]["alert"], "webauthn_counter_regression");
    let disabled: bool = sqlx::query_scalar("SELECT disabled FROM mfa_methods WHERE id = $1::uuid")
        .bind(&method_id)
        .fetch_one(&app.pool)
        .await
        .expect("method row");
    assert!(disabled);
    // The disabled key cannot start another verification.
    let after = verify(&client, "step_up", &bearer).await;
    assert_eq!(after["status"], 400, "{after}");
    assert_eq!(after["reason"], "no_method", "{after}");

    let failed: Vec<String> = app
        .events_of("mfa.verification.failed")
        .await
        .iter()
        .map(|e| e["data"]["reason"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        failed,
        [
            "ceremony_invalid",
            "user_verification_missing",
            "counter_regression"
        ]
    );
    let _ = client.close().await;
    app.assert_no_secrets_in_events(&[private_key]).await;
    app.assert_projections_rebuild().await;
}
