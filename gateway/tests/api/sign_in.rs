//! Sign-in end to end without a browser: the web and CLI logins against the
//! mock OpenID provider, every refusal with its clear message and its
//! `auth.login.failed` reason, single-use and expiring login state, tampered
//! ID tokens, provisioning from settings, and the rate limit.

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{
    error_reason, location, new_cli_secret, person, set_cookie, spawn_app, Role, TestApp, PEOPLE,
};

#[tokio::test]
async fn web_login_works_for_every_test_user_and_shows_who_is_signed_in() {
    let app = TestApp::build().sign_in().spawn().await;
    let mut secrets = Vec::new();
    for role in PEOPLE {
        let email = &person(role);
        let login = app.web_login(email, None).await;
        assert_eq!(login.landing, "/app", "{email}");
        let session = login.session.clone().expect("session cookie");
        assert!(session.starts_with("rgw_sess_"), "{session}");

        let page = app.with_cookie(&session).page("/app").await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        assert!(
            html.contains(&format!(r#"<dd id="email">{email}</dd>"#)),
            "{html}"
        );
        assert!(
            html.contains(&format!(r#"<dd id="role">{role}</dd>"#)),
            "{html}"
        );
        assert!(html.contains("Sign out"));

        let me = app.as_(&session).info().await;
        assert_eq!(me.status, StatusCode::OK);
        assert_eq!(me.body["user"]["email"], *email);
        assert_eq!(me.body["user"]["role"], role.as_str());
        assert_eq!(me.body["credential"]["kind"], "session");
        assert_eq!(me.body["credential"]["channel"], "web");

        secrets.push(session);
        secrets.push(login.login_cookie.clone());
        for (key, value) in login.callback_url.query_pairs() {
            if key == "code" || key == "state" {
                secrets.push(value.into_owned());
            }
        }
    }

    let started = app.events_of("auth.login.started").await;
    let succeeded = app.events_of("auth.login.succeeded").await;
    let created = app.events_of("session.created").await;
    assert_eq!((started.len(), succeeded.len(), created.len()), (4, 4, 4));
    for (i, role) in PEOPLE.into_iter().enumerate() {
        let email = &person(role);
        assert_eq!(started[i]["data"]["channel"], "web");
        assert_eq!(started[i]["actor"]["kind"], "anonymous");
        let ok = &succeeded[i];
        assert_eq!(ok["data"]["email"], *email);
        assert_eq!(ok["data"]["channel"], "web");
        assert_eq!(ok["data"]["login_id"], started[i]["data"]["login_id"]);
        assert_eq!(ok["data"]["session_id"], created[i]["data"]["session_id"]);
        assert_eq!(ok["actor"]["email"], *email);
        assert_eq!(ok["actor"]["role"], role.as_str());
        assert_eq!(created[i]["data"]["channel"], "web");
        assert_eq!(
            created[i]["data"]["token_sha256"].as_str().unwrap(),
            gateway::auth::secrets::sha256_hex(&secrets[i * 4])
        );
        assert_eq!(ok["source"]["ip"], "127.0.0.1");
    }
    assert!(app.events_of("auth.login.failed").await.is_empty());
    // The login state is stored as a hash, and its secrets are wiped once used.
    let leftovers: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM login_states WHERE status <> 'completed' OR pkce_verifier <> '' OR nonce <> ''",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(leftovers, 0);
    app.assert_no_secrets_in_events(&secrets).await;
    app.assert_projections_rebuild().await;
}

#[tokio::test]
async fn cli_login_works_for_every_test_user() {
    let app = TestApp::build()
        .sign_in()
        .env("LOGIN_STATE_TTL_SECONDS", "120")
        .spawn()
        .await;
    let mut secrets = Vec::new();
    for role in PEOPLE {
        let email = &person(role);
        let login = app.cli_start().await;
        let expires: DateTime<Utc> = login.expires_at.parse().unwrap();
        let ttl = expires - Utc::now();
        assert!(
            ttl > chrono::Duration::seconds(100) && ttl <= chrono::Duration::seconds(120),
            "LOGIN_STATE_TTL_SECONDS is honoured: {ttl}"
        );
        let auth_url = url::Url::parse(&login.auth_url).unwrap();
        let query: std::collections::HashMap<_, _> = auth_url.query_pairs().into_owned().collect();
        assert_eq!(query["scope"], "openid email profile");
        assert_eq!(query["code_challenge_method"], "S256");
        assert_eq!(query["state"], login.state);
        assert!(query["nonce"].len() >= 43);
        assert!(query["redirect_uri"].ends_with("/api/v1/auth/cli/callback"));

        let (status, _, pending) = app.cli_complete(&login.state, &login.cli_secret).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(pending, json!({"status": "pending"}));

        let landing = app.cli_browser(&login, email, None).await;
        assert!(
            landing.starts_with("/app/cli/auth/success?login="),
            "{landing}"
        );
        let page = app.anonymous().page(&landing).await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        assert!(
            html.contains(&format!(
                "Signed in as <strong>{email}</strong>. Return to your terminal."
            )),
            "{html}"
        );

        let (status, _, done) = app.cli_complete(&login.state, &login.cli_secret).await;
        assert_eq!(status, StatusCode::OK, "{done}");
        let token = done["token"].as_str().unwrap().to_owned();
        assert!(token.starts_with("rgw_sess_") && token.len() == "rgw_sess_".len() + 43);
        assert_eq!(done["email"], *email);
        assert_eq!(done["role"], role.as_str());
        assert_eq!(done["channel"], "cli");
        assert_eq!(done["device_id"], "device-1");
        assert_eq!(done["device_name"], "test-laptop");
        assert_eq!(done["mfa_verified"], false);
        let expires: DateTime<Utc> = done["expires_at"].as_str().unwrap().parse().unwrap();
        let lifetime = expires - Utc::now();
        assert!(lifetime > chrono::Duration::days(89) && lifetime <= chrono::Duration::days(90));

        let me = app.as_(&token).info().await;
        assert_eq!(me.status, StatusCode::OK);
        assert_eq!(me.body["user"]["email"], *email);
        assert_eq!(me.body["credential"]["channel"], "cli");
        assert_eq!(me.body["credential"]["id"], done["session_id"]);

        // Used once: the same state and secret get nothing more.
        let (status, _, again) = app.cli_complete(&login.state, &login.cli_secret).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(again, json!({"error": "invalid or expired state"}));
        let last = app.last_login_failure().await;
        assert_eq!(last["reason"], "replayed_state");
        assert_eq!(last["channel"], "cli");

        secrets.extend([token, login.state.clone(), login.cli_secret.clone()]);
    }
    let created = app.events_of("session.created").await;
    assert_eq!(created.len(), 4);
    for event in &created {
        assert_eq!(event["data"]["channel"], "cli");
        assert_eq!(event["data"]["device_name"], "test-laptop");
        assert_eq!(event["data"]["device_os"], "linux");
        assert_eq!(event["data"]["client_version"], "0.1.0-test");
    }
    let started = app.events_of("auth.login.started").await;
    assert_eq!(started[0]["data"]["channel"], "cli");
    assert_eq!(started[0]["data"]["device_id"], "device-1");
    app.assert_no_secrets_in_events(&secrets).await;
    app.assert_projections_rebuild().await;
}

#[tokio::test]
async fn refused_people_get_a_clear_message_and_a_recorded_reason() {
    // Only some users exist: deployer@ has a valid domain but no account.
    let app = TestApp::build()
        .sign_in()
        .env("DEPLOYER_USERS", "")
        .spawn()
        .await;
    // An admin disables the viewer.
    let admin = app.signed_in(Role::Admin).await;
    let disabled = app
        .as_(&admin.token)
        .disable_user_because("viewer@example.com", "left the team")
        .await;
    assert_eq!(disabled.status, StatusCode::OK);

    let cases = [
        (
            "unauthorized@wrongdomain.com",
            "domain_not_allowed",
            "email domain not allowed",
            403,
        ),
        (
            "unverified@example.com",
            "email_not_verified",
            "email not verified",
            403,
        ),
        (
            "deployer@example.com",
            "unknown_user",
            "user not authorized",
            401,
        ),
        (
            "viewer@example.com",
            "user_disabled",
            "user not authorized",
            401,
        ),
    ];
    for (email, reason, message, status) in cases {
        // Web: the error page says why.
        let login = app.web_login(email, None).await;
        assert_eq!(
            login.landing,
            format!("/app/auth/error?error={reason}"),
            "{email}"
        );
        assert!(login.session.is_none());
        let page = app.anonymous().page(&login.landing).await;
        let html = page.text().await.unwrap();
        assert!(html.contains(message), "{email}: {html}");
        let event = app.last_login_failure().await;
        assert_eq!(event["reason"], reason);
        assert_eq!(event["email"], email);
        assert_eq!(event["channel"], "web");

        // CLI: the browser is told, and so is the CLI (once).
        let cli = app.cli_start().await;
        let landing = app.cli_browser(&cli, email, None).await;
        assert_eq!(landing, format!("/app/auth/error?error={reason}"));
        let (got, headers, body) = app.cli_complete(&cli.state, &cli.cli_secret).await;
        assert_eq!(got.as_u16(), status, "{email}: {body}");
        assert_eq!(body, json!({"error": message}));
        if status == 401 {
            assert_eq!(error_reason(&headers), reason);
        }
        let event = app.last_login_failure().await;
        assert_eq!(event["reason"], reason);
        assert_eq!(event["email"], email);
        assert_eq!(event["channel"], "cli");
        let (again, _, body) = app.cli_complete(&cli.state, &cli.cli_secret).await;
        assert_eq!(again, StatusCode::BAD_REQUEST, "{body}");
    }
    assert_eq!(
        app.events_of("session.created").await.len(),
        1,
        "only the admin signed in"
    );
    app.assert_no_secrets_in_events(&[]).await;
    app.assert_projections_rebuild().await;
}

#[tokio::test]
async fn login_state_is_single_use_expires_and_belongs_to_its_starter() {
    let app = TestApp::build().sign_in().spawn().await;

    // Web: replaying the callback, or presenting it from another browser, is refused.
    let first = app.web_login("ops@example.com", None).await;
    assert_eq!(first.landing, "/app");
    let replay = app
        .client
        .get(app.on_app(&first.callback_url))
        .header("cookie", &first.login_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(location(&replay), "/app/auth/error?error=replayed_state");
    assert_eq!(app.last_login_failure().await["reason"], "replayed_state");

    let start = app.web_login_start().await;
    let callback = app
        .provider_redirect(&location(&start), "ops@example.com", None)
        .await;
    let elsewhere = app.client.get(app.on_app(&callback)).send().await.unwrap();
    assert_eq!(location(&elsewhere), "/app/auth/error?error=invalid_state");
    assert!(set_cookie(elsewhere.headers(), "session_token").is_none());

    let unknown = app
        .anonymous()
        .page("/api/v1/auth/cli/callback?code=abc&state=no-such-state")
        .await;
    assert_eq!(location(&unknown), "/app/auth/error?error=invalid_state");
    assert_eq!(app.last_login_failure().await["reason"], "invalid_state");

    // Web, expired: the login is older than its TTL when the browser returns.
    let start = app.web_login_start().await;
    let cookie = set_cookie(start.headers(), "rgw_login_state").unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let callback = app
        .provider_redirect(&location(&start), "ops@example.com", None)
        .await;
    age_login_states(&app).await;
    let late = app
        .client
        .get(app.on_app(&callback))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(location(&late), "/app/auth/error?error=expired_state");
    assert_eq!(app.last_login_failure().await["reason"], "expired_state");

    // CLI, expired.
    let cli = app.cli_start().await;
    age_login_states(&app).await;
    let (status, _, body) = app.cli_complete(&cli.state, &cli.cli_secret).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"error": "invalid or expired state"}));
    assert_eq!(app.last_login_failure().await["reason"], "expired_state");

    // CLI: /complete from a client without the secret is refused and does not use the login up.
    let cli = app.cli_start().await;
    app.cli_browser(&cli, "ops@example.com", None).await;
    let (status, _, body) = app.cli_complete(&cli.state, &new_cli_secret()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        json!({"error": "login was started by a different client"})
    );
    let event = app.last_login_failure().await;
    assert_eq!(event["reason"], "client_mismatch");
    assert_eq!(event["channel"], "cli");
    let (status, _, body) = app.cli_complete(&cli.state, &cli.cli_secret).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // CLI: unknown state.
    let (status, _, body) = app.cli_complete("not-a-state", &cli.cli_secret).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"error": "invalid or expired state"}));

    // The person cancels at the provider.
    let cli = app.cli_start().await;
    let mut cancel = url::Url::parse(&cli.auth_url).unwrap();
    cancel.query_pairs_mut().append_pair("action", "cancel");
    let back = app.client.get(cancel).send().await.unwrap();
    let back = url::Url::parse(&location(&back)).unwrap();
    let landing = app.client.get(app.on_app(&back)).send().await.unwrap();
    assert_eq!(location(&landing), "/app/auth/error?error=provider_error");
    let event = app.last_login_failure().await;
    assert_eq!(
        (event["reason"].as_str(), event["detail"].as_str()),
        (Some("provider_error"), Some("access_denied"))
    );
    let (status, _, _) = app.cli_complete(&cli.state, &cli.cli_secret).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);

    // Bad starts are refused before anything is stored.
    let bad = app
        .client
        .post(app.url("/api/v1/auth/cli/start"))
        .json(&json!({"cli_secret_sha256": "short"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = bad.json().await.unwrap();
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("cli_secret_sha256"));
    app.assert_no_secrets_in_events(&[]).await;
    app.assert_projections_rebuild().await;
}

async fn age_login_states(app: &TestApp) {
    sqlx::query(
        "UPDATE login_states SET expires_at = now() - interval '1 second' WHERE status = 'pending'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn defective_id_tokens_are_refused_naming_the_failed_check() {
    let app = TestApp::build().sign_in().spawn().await;
    let cases = [
        ("signature", "invalid_id_token", Some("signature")),
        ("wrong_nonce", "nonce_mismatch", None),
        ("wrong_aud", "invalid_id_token", Some("audience")),
        ("wrong_iss", "invalid_id_token", Some("issuer")),
        ("expired", "invalid_id_token", Some("expired")),
        ("no_email_verified", "email_not_verified", None),
    ];
    for (tamper, reason, detail) in cases {
        let login = app.web_login("admin@example.com", Some(tamper)).await;
        assert_eq!(
            login.landing,
            format!("/app/auth/error?error={reason}"),
            "{tamper}"
        );
        assert!(login.session.is_none(), "{tamper}");
        let event = app.last_login_failure().await;
        assert_eq!(event["reason"], reason, "{tamper}");
        assert_eq!(event["detail"].as_str(), detail, "{tamper}");
        assert_eq!(event["channel"], "web");
    }
    // The CLI channel refuses the same way, and tells the CLI.
    let cli = app.cli_start().await;
    let landing = app
        .cli_browser(&cli, "admin@example.com", Some("signature"))
        .await;
    assert_eq!(landing, "/app/auth/error?error=invalid_id_token");
    let (status, _, body) = app.cli_complete(&cli.state, &cli.cli_secret).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("ID token"),
        "{body}"
    );
    let cli = app.cli_start().await;
    app.cli_browser(&cli, "admin@example.com", Some("wrong_nonce"))
        .await;
    let (status, _, body) = app.cli_complete(&cli.state, &cli.cli_secret).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("nonce"), "{body}");

    assert!(app.events_of("session.created").await.is_empty());
    app.assert_no_secrets_in_events(&[]).await;
}

#[tokio::test]
async fn settings_users_are_provisioned_once() {
    let app = TestApp::build().sign_in().spawn().await;
    let created = app.events_of("user.created").await;
    let got: Vec<(&str, &str)> = created
        .iter()
        .map(|e| {
            (
                e["data"]["email"].as_str().unwrap(),
                e["data"]["role"].as_str().unwrap(),
            )
        })
        .collect();
    // In the order the settings list them: ADMIN_USERS, DEPLOYER_USERS, OPERATIONS_USERS, VIEWER_USERS.
    let listed = [Role::Admin, Role::Deployer, Role::Ops, Role::Viewer].map(|r| (person(r), r));
    let listed: Vec<(&str, &str)> = listed
        .iter()
        .map(|(e, r)| (e.as_str(), r.as_str()))
        .collect();
    assert_eq!(got, listed);
    for event in &created {
        assert_eq!(event["actor"]["kind"], "system");
        assert_eq!(event["actor"]["id"], "gateway");
    }
    // An admin's change sticks: provisioning again creates nobody and changes nothing.
    let admin = app.signed_in(Role::Admin).await;
    let changed = app
        .as_(&admin.token)
        .update_user("viewer@example.com", json!({"role": "ops"}))
        .await;
    assert_eq!(changed.status, StatusCode::OK);
    let state = &app.state;
    let again = gateway::auth::provisioning::provision(
        &state.pool,
        &state.appender,
        "test",
        &state.settings.auth.seed_users,
    )
    .await
    .unwrap();
    assert_eq!(again, 0);
    assert_eq!(app.events_of("user.created").await.len(), 4);
    let viewer = projections::users::by_email(&app.pool, "viewer@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(viewer.role, "ops");
}

#[tokio::test]
async fn public_sign_in_routes_are_rate_limited_per_client() {
    let app = TestApp::build()
        .sign_in()
        .env("AUTH_RATE_LIMIT_PER_SECOND", "1")
        .env("AUTH_RATE_LIMIT_BURST", "2")
        .spawn()
        .await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let response = app
            .client
            .post(app.url("/api/v1/auth/cli/complete"))
            .json(&json!({"state": "x", "cli_secret": "y"}))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(response.headers()["retry-after"], "1");
            assert_eq!(error_reason(response.headers()), "rate_limited");
        }
        statuses.push(response.status().as_u16());
    }
    assert_eq!(&statuses[..2], &[400, 400]);
    assert!(statuses[2..].iter().all(|s| *s == 429), "{statuses:?}");
    // Reported once, not once per refusal.
    let exceeded = app.events_of("rate_limit.exceeded").await;
    assert_eq!(exceeded.len(), 1);
    assert_eq!(exceeded[0]["data"]["path"], "/api/v1/auth/cli/complete");
    assert_eq!(exceeded[0]["source"]["ip"], "127.0.0.1");
    // Authenticated API routes are not limited by it.
    let health = app.anonymous().page("/api/v1/info").await;
    assert_eq!(health.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn without_oauth_settings_sign_in_says_it_is_not_configured() {
    let app = spawn_app().await;
    let start = app
        .client
        .post(app.url("/api/v1/auth/cli/start"))
        .json(&json!({"cli_secret_sha256": "a".repeat(64)}))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = start.json().await.unwrap();
    assert_eq!(body["error"], "sign-in is not configured on this gateway");
    let web = app.web_login_start().await;
    assert_eq!(location(&web), "/app/auth/error?error=not_configured");
    let page = app.anonymous().page("/app/login").await;
    assert!(page.text().await.unwrap().contains("not configured"));
    let root = app.anonymous().page("/").await;
    assert_eq!(location(&root), "/app");
    let signed_out = app.anonymous().page("/app").await;
    assert_eq!(location(&signed_out), "/app/login");
}

/// Captures this test binary's logs (the gateway runs in-process).
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_never_hold_codes_states_or_session_tokens() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    // The gateway's own log format (JSON lines with the current span and its parents), at debug
    // for the request spans and their responses.
    let installed = tracing_subscriber::fmt()
        .json()
        .with_env_filter("info,sqlx=warn,tower_http=debug,gateway=debug")
        .with_writer(move || writer.clone())
        .try_init();
    assert!(
        installed.is_ok(),
        "no other test in this binary installs a subscriber"
    );
    let app = TestApp::build().sign_in().spawn().await;
    let mut secrets = Vec::new();
    let ok = app.web_login("admin@example.com", None).await;
    let refused = app.web_login("unauthorized@wrongdomain.com", None).await;
    for login in [&ok, &refused] {
        secrets.extend(
            login
                .callback_url
                .query_pairs()
                .map(|(_, v)| v.into_owned()),
        );
    }
    secrets.push(ok.session.clone().unwrap());
    let cli = app.cli_start().await;
    app.cli_browser(&cli, "ops@example.com", Some("signature"))
        .await;
    let (status, _, _) = app.cli_complete(&cli.state, &cli.cli_secret).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    secrets.extend([cli.state.clone(), cli.cli_secret.clone()]);

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("login refused"),
        "the logs were captured: {text}"
    );
    assert!(
        text.contains("/api/v1/auth/web/callback"),
        "request spans name the path"
    );
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "a secret reached the logs");
    }
    for marker in ["rgw_sess_", "eyJ", "code=", "state="] {
        assert!(!text.contains(marker), "{marker:?} reached the logs");
    }
}

#[tokio::test]
async fn a_rotated_provider_key_is_fetched_when_first_seen() {
    let mut app = TestApp::build().sign_in().spawn().await;
    assert_eq!(app.web_login("ops@example.com", None).await.landing, "/app");
    // The provider restarts with a new signing key (a new `kid`) at the same issuer.
    let oauth = app.oauth.take().expect("the provider");
    let address = oauth.local_addr();
    oauth.shutdown().await.unwrap();
    let rotated = tools::mock_oauth::MockOAuth::bind(
        address,
        tools::mock_oauth::MockOAuthConfig {
            test_controls: true,
            ..Default::default()
        },
    )
    .await
    .expect("the provider comes back on its port")
    .spawn();
    app.oauth = Some(rotated);
    let login = app.web_login("ops@example.com", None).await;
    assert_eq!(login.landing, "/app", "the new key was fetched and trusted");
    assert_eq!(app.events_of("auth.login.succeeded").await.len(), 2);
}
