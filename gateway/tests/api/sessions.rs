//! Sessions after sign-in: logout, admin revoke, disable, the web idle
//! timeout, CSRF on cookie-authenticated changes, and the cookies themselves.
//! Every ending is a `session.revoked` event, and the next call is 401.

use crate::helpers::sign_in::*;
use gateway::auth::principal::{authenticate, SessionRules};
use gateway::auth::AuthFailure;
use reqwest::StatusCode;
use serde_json::json;

fn rules() -> SessionRules {
    SessionRules {
        web_idle_timeout: std::time::Duration::from_secs(300),
    }
}

#[tokio::test]
async fn logout_ends_the_session_for_every_later_call() {
    let stack = stack(|_| {}).await;
    let app = &stack.app;
    let login = cli_login(app, "deployer@example.com").await;
    let token = login["token"].as_str().unwrap();
    assert_eq!(info(app, token).await.0, StatusCode::OK);

    let out = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::OK);
    assert_eq!(
        out.json::<serde_json::Value>().await.unwrap(),
        json!({"status": "logged_out"})
    );

    let (status, headers, body) = info(app, token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_reason(&headers), "revoked");
    assert_eq!(body, json!({"error": "token revoked"}));
    // The rack proxy asks the same question, and gets the same answer.
    assert_eq!(
        authenticate(&app.pool, rules(), token).await,
        Err(AuthFailure::Revoked)
    );
    let revoked = app.events_of("session.revoked").await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["data"]["reason"], "logout");
    assert_eq!(revoked[0]["data"]["session_id"], login["session_id"]);
    assert_eq!(revoked[0]["actor"]["email"], "deployer@example.com");
    let logout = app.events_of("auth.logout").await;
    assert_eq!(logout.len(), 1);
    assert_eq!(logout[0]["data"]["channel"], "cli");

    // Logging out twice, or without credentials, is refused.
    let again = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    let none = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_reason(none.headers()), "missing_credentials");
    assert_no_secrets_in_events(app, &[token.to_owned()]).await;
    assert_projections_rebuild(app).await;
}

#[tokio::test]
async fn admins_revoke_sessions_and_disabling_a_user_ends_theirs() {
    // A rack behind the proxy, so the refusals below are shown where they matter most.
    let rack = tools::mock_rack::MockRack::bind(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        tools::mock_rack::MockRackConfig {
            password: "rack-secret".into(),
            ..Default::default()
        },
    )
    .await
    .expect("mock rack")
    .spawn();
    let rack_url = rack.url();
    let stack = stack(|env| {
        env.set("RACK_HOST", rack_url.clone());
        env.set("RACK_TOKEN", "rack-secret");
    })
    .await;
    let app = &stack.app;
    let proxy = |token: String| {
        let request = app
            .client
            .get(app.url("/api/v1/rack-proxy/apps"))
            .basic_auth("convox", Some(token));
        async move {
            let response = request.send().await.unwrap();
            (response.status(), error_reason(response.headers()))
        }
    };
    let admin = cli_login(app, "admin@example.com").await;
    let admin_token = admin["token"].as_str().unwrap().to_owned();
    let viewer_1 = cli_login(app, "viewer@example.com").await;
    let viewer_2 = web_login(&stack, "viewer@example.com", None)
        .await
        .session
        .unwrap();
    let ops = cli_login(app, "ops@example.com").await;
    let ops_token = ops["token"].as_str().unwrap();
    let viewer_1_token = viewer_1["token"].as_str().unwrap();

    // A user reads their own sessions, not someone else's.
    let own = app
        .client
        .get(app.url("/api/v1/users/viewer@example.com/sessions"))
        .bearer_auth(viewer_1_token)
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    let own: serde_json::Value = own.json().await.unwrap();
    assert_eq!(own.as_array().unwrap().len(), 2);
    assert!(
        !own.to_string().contains("token"),
        "no secret or hash: {own}"
    );
    let other = app
        .client
        .get(app.url("/api/v1/users/ops@example.com/sessions"))
        .bearer_auth(viewer_1_token)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = other.json().await.unwrap();
    assert_eq!(
        body["error"],
        "permission denied: gateway:user:read requires admin role"
    );
    // ...and cannot revoke anything.
    let url = format!(
        "/api/v1/users/ops@example.com/sessions/{}/revoke",
        ops["session_id"].as_str().unwrap()
    );
    let denied = app
        .client
        .post(app.url(&url))
        .bearer_auth(viewer_1_token)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = denied.json().await.unwrap();
    assert_eq!(
        body["error"],
        "permission denied: gateway:user:update requires admin role"
    );
    assert_eq!(info(app, ops_token).await.0, StatusCode::OK);
    assert_eq!(proxy(ops_token.to_owned()).await.0, StatusCode::OK);
    assert_eq!(proxy(viewer_1_token.to_owned()).await.0, StatusCode::OK);

    // The admin revokes one session: the next call with it is refused.
    let revoked = app
        .client
        .post(app.url(&url))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    let session: serde_json::Value = revoked.json().await.unwrap();
    assert_eq!(session["revoke_reason"], "admin");
    assert_eq!(session["revoked_by"], "admin@example.com");
    let (status, headers, _) = info(app, ops_token).await;
    assert_eq!(
        (status, error_reason(&headers).as_str()),
        (StatusCode::UNAUTHORIZED, "revoked")
    );
    assert_eq!(
        authenticate(&app.pool, rules(), ops_token).await,
        Err(AuthFailure::Revoked)
    );
    assert_eq!(
        proxy(ops_token.to_owned()).await,
        (StatusCode::UNAUTHORIZED, "revoked".to_owned()),
        "the rack proxy refuses the revoked session on the next call"
    );
    let twice = app
        .client
        .post(app.url(&url))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), StatusCode::CONFLICT);

    // Disabling the viewer ends both of their sessions at once.
    let disabled = app
        .client
        .post(app.url("/api/v1/users/viewer@example.com/disable"))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), StatusCode::OK);
    let user: serde_json::Value = disabled.json().await.unwrap();
    assert_eq!(user["disabled"], true);
    assert_eq!(user["sessions_revoked"], 2);
    for token in [viewer_1_token, viewer_2.as_str()] {
        let (status, _, _) = info(app, token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(authenticate(&app.pool, rules(), token).await.is_err());
        assert_eq!(
            proxy(token.to_owned()).await.0,
            StatusCode::UNAUTHORIZED,
            "the rack proxy refuses the disabled user's sessions"
        );
    }
    let page = get_page(app, "/app", Some(&viewer_2)).await;
    assert_eq!(location(&page), "/app/login");

    // revoke_all for a user with live sessions.
    let deployer_a = cli_login(app, "deployer@example.com").await;
    let deployer_b = cli_login(app, "deployer@example.com").await;
    let all = app
        .client
        .post(app.url("/api/v1/users/deployer@example.com/sessions/revoke_all"))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(all.status(), StatusCode::OK);
    assert_eq!(
        all.json::<serde_json::Value>().await.unwrap(),
        json!({"revoked": 2})
    );
    for login in [&deployer_a, &deployer_b] {
        assert_eq!(
            info(app, login["token"].as_str().unwrap()).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let listed = app
        .client
        .get(app.url("/api/v1/users/deployer@example.com/sessions"))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    let listed: serde_json::Value = listed.json().await.unwrap();
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["revoke_reason"] == "admin"));

    let reasons: Vec<String> = app
        .events_of("session.revoked")
        .await
        .iter()
        .map(|e| e["data"]["reason"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        reasons,
        ["admin", "user_disabled", "user_disabled", "admin", "admin"]
    );
    assert_no_secrets_in_events(app, &[admin_token.clone(), viewer_2.clone()]).await;
    assert_projections_rebuild(app).await;
}

#[tokio::test]
async fn an_idle_web_session_is_refused_and_revoked() {
    let stack = stack(|env| env.set("SESSION_TIMEOUT_MINUTES", "5")).await;
    let app = &stack.app;
    let session = web_login(&stack, "ops@example.com", None)
        .await
        .session
        .unwrap();
    let page = get_page(app, "/app", Some(&session)).await;
    assert_eq!(page.status(), StatusCode::OK);
    // Six minutes pass without use.
    sqlx::query("UPDATE session_activity SET last_seen_at = now() - interval '6 minutes'")
        .execute(&app.pool)
        .await
        .unwrap();
    let (status, headers, _) = info(app, &session).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_reason(&headers), "idle_timeout");
    let revoked = app.events_of("session.revoked").await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["data"]["reason"], "idle_timeout");
    assert_eq!(revoked[0]["actor"]["kind"], "system");
    let page = get_page(app, "/app", Some(&session)).await;
    assert_eq!(location(&page), "/app/login");
    // CLI sessions have no idle timeout.
    let cli = cli_login(app, "ops@example.com").await;
    let token = cli["token"].as_str().unwrap();
    assert_eq!(info(app, token).await.0, StatusCode::OK);
    assert_projections_rebuild(app).await;
}

#[tokio::test]
async fn cookie_authenticated_changes_need_the_csrf_token() {
    let stack = stack(|_| {}).await;
    let app = &stack.app;
    let session = web_login(&stack, "admin@example.com", None)
        .await
        .session
        .unwrap();
    let cookie = format!("session_token={session}");
    let new_user = json!({"email": "new@example.com", "role": "viewer"});
    let before = app.event_count().await;

    // Reads with the cookie alone are fine.
    let read = app
        .client
        .get(app.url("/api/v1/users"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);

    for token in [
        None,
        Some("bm90IHRoZSB0b2tlbg=="),
        Some(csrf_token(app, "rgw_sess_other").as_str()),
    ] {
        let mut request = app
            .client
            .post(app.url("/api/v1/users"))
            .header("cookie", &cookie)
            .json(&new_user);
        if let Some(token) = token {
            request = request.header("x-csrf-token", token);
        }
        let refused = request.send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{token:?}");
        assert_eq!(error_reason(refused.headers()), "csrf_failed");
        let body: serde_json::Value = refused.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().contains("CSRF"));
    }
    let created: i64 = app.event_count().await - before;
    assert_eq!(created, 0, "a refused change writes nothing");

    let accepted = app
        .client
        .post(app.url("/api/v1/users"))
        .header("cookie", &cookie)
        .header("x-csrf-token", csrf_token(app, &session))
        .json(&new_user)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), StatusCode::CREATED);
    // A Bearer credential is not sent by browsers on their own: no CSRF token needed.
    let bearer = app
        .client
        .put(app.url("/api/v1/users/new@example.com"))
        .bearer_auth(&session)
        .json(&json!({"role": "ops"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), StatusCode::OK);

    // The /app page carries the token for its sign-out form.
    let html = get_page(app, "/app", Some(&session))
        .await
        .text()
        .await
        .unwrap();
    // (HTML-escaped: minijinja writes '/' as &#x2f;.)
    let html = html.replace("&#x2f;", "/");
    assert!(html.contains(&csrf_token(app, &session)), "{html}");

    // Logout without the token: POST is refused, GET only asks.
    let post = app
        .client
        .post(app.url("/api/v1/auth/web/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::FORBIDDEN);
    let get = app
        .client
        .get(app.url("/api/v1/auth/web/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    assert!(get.text().await.unwrap().contains("Sign out?"));
    assert_eq!(
        info(app, &session).await.0,
        StatusCode::OK,
        "still signed in"
    );

    // The form's POST signs out and clears the cookie.
    let out = app
        .client
        .post(app.url("/api/v1/auth/web/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf_token", csrf_token(app, &session))])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&out), "/app/login");
    let cleared = set_cookie(out.headers(), "session_token").unwrap();
    assert!(
        cleared.starts_with("session_token=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    assert_eq!(info(app, &session).await.0, StatusCode::UNAUTHORIZED);
    let logout = app.events_of("auth.logout").await;
    assert_eq!(logout.len(), 1);
    assert_eq!(logout[0]["data"]["channel"], "web");
    assert_no_secrets_in_events(app, &[session.clone(), csrf_token(app, &session)]).await;
    assert_projections_rebuild(app).await;
}

#[tokio::test]
async fn cookies_are_httponly_lax_and_secure_on_https() {
    let stack = stack(|_| {}).await;
    let login = web_login(&stack, "viewer@example.com", None).await;
    let state = set_cookie(&login.login_headers, "rgw_login_state").unwrap();
    assert!(state.contains("; Path=/api/v1/auth/web;"), "{state}");
    assert!(state.contains("; Max-Age=600;"), "{state}");
    assert!(
        state.contains("; HttpOnly") && state.contains("; SameSite=Lax"),
        "{state}"
    );
    assert!(!state.contains("Secure"), "plain-http PUBLIC_URL: {state}");
    let session = set_cookie(&login.callback_headers, "session_token").unwrap();
    assert!(session.contains("; Path=/;"), "{session}");
    assert!(session.contains("; Max-Age=43200;"), "{session}");
    assert!(
        session.contains("; HttpOnly") && session.contains("; SameSite=Lax"),
        "{session}"
    );
    assert!(!session.contains("Secure"), "{session}");
    let cleared = set_cookie(&login.callback_headers, "rgw_login_state").unwrap();
    assert!(
        cleared.contains("Max-Age=0"),
        "the login cookie is spent: {cleared}"
    );

    // Behind https, the same cookies are Secure.
    let public = "https://gateway.example.test";
    let secure = stack_with(
        |provider| {
            provider.redirect_uris = vec![format!("{public}/api/v1/auth/web/callback")];
        },
        |env| env.set("PUBLIC_URL", public),
    )
    .await;
    let app = &secure.app;
    let start = app
        .client
        .get(app.url("/api/v1/auth/web/login"))
        .send()
        .await
        .unwrap();
    let state = set_cookie(start.headers(), "rgw_login_state").unwrap();
    assert!(state.ends_with("; Secure"), "{state}");
    let callback =
        provider_redirect(&app.client, &location(&start), "viewer@example.com", None).await;
    assert_eq!(callback.host_str(), Some("gateway.example.test"));
    let landing = app
        .client
        .get(on_app(app, &callback))
        .header("cookie", state.split(';').next().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(location(&landing), "/app");
    let session = set_cookie(landing.headers(), "session_token").unwrap();
    assert!(session.ends_with("; Secure"), "{session}");
}
