//! Sessions after sign-in: logout, admin revoke, disable, the web idle
//! timeout, CSRF on cookie-authenticated changes, and the cookies themselves.
//! Every ending is a `session.revoked` event, and the next call is 401.

use gateway::auth::principal::{authenticate, SessionRules};
use gateway::auth::AuthFailure;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{error_reason, location, set_cookie, Rack, Role, TestApp};

fn rules() -> SessionRules {
    SessionRules {
        web_idle_timeout: std::time::Duration::from_secs(300),
    }
}

#[tokio::test]
async fn logout_ends_the_session_for_every_later_call() {
    let app = TestApp::build().sign_in().spawn().await;
    let deployer = app.signed_in(Role::Deployer).await;
    let token = deployer.token.as_str();
    assert_eq!(app.as_(token).info().await.status, StatusCode::OK);

    let out = app.as_(token).logout().await;
    assert_eq!(out.status, StatusCode::OK);
    assert_eq!(out.body, json!({"status": "logged_out"}));

    let refused = app.as_(token).info().await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.reason(), "revoked");
    assert_eq!(refused.body, json!({"error": "token revoked"}));
    // The rack proxy asks the same question, and gets the same answer.
    assert_eq!(
        authenticate(&app.pool, rules(), token).await,
        Err(AuthFailure::Revoked)
    );
    let revoked = app.events_of("session.revoked").await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["data"]["reason"], "logout");
    assert_eq!(
        revoked[0]["data"]["session_id"],
        deployer.id.clone().unwrap()
    );
    assert_eq!(revoked[0]["actor"]["email"], "deployer@example.com");
    let logout = app.events_of("auth.logout").await;
    assert_eq!(logout.len(), 1);
    assert_eq!(logout[0]["data"]["channel"], "cli");

    // Logging out twice, or without credentials, is refused.
    let again = app.as_(token).logout().await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    let none = app.anonymous().logout().await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(none.reason(), "missing_credentials");
    app.assert_no_secrets_in_events(&[token.to_owned()]).await;
    app.assert_projections_rebuild().await;
}

#[tokio::test]
async fn admins_revoke_sessions_and_disabling_a_user_ends_theirs() {
    // A rack behind the proxy, so the refusals below are shown where they matter most.
    let rack = Rack::start().await;
    let app = TestApp::build().rack(&rack.url()).sign_in().spawn().await;
    let proxy = |token: &str| {
        let (app, token) = (&app, token.to_owned());
        async move {
            let response = app.proxy(&token).get("/apps").await;
            (response.status(), error_reason(response.headers()))
        }
    };
    let admin_session = app.signed_in(Role::Admin).await;
    let admin = app.as_(&admin_session.token);
    let viewer_1 = app.signed_in(Role::Viewer).await;
    let viewer_2 = app.signed_in_on_the_web(Role::Viewer).await;
    let ops = app.signed_in(Role::Ops).await;
    let ops_session_id = ops.id.clone().unwrap();

    // A user reads their own sessions, not someone else's.
    let own = app
        .as_(&viewer_1.token)
        .sessions_of("viewer@example.com")
        .await;
    assert_eq!(own.status, StatusCode::OK);
    let own = own.body;
    assert_eq!(own.as_array().unwrap().len(), 2);
    assert!(
        !own.to_string().contains("token"),
        "no secret or hash: {own}"
    );
    let other = app
        .as_(&viewer_1.token)
        .sessions_of("ops@example.com")
        .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    assert_eq!(
        other.body["error"],
        "permission denied: gateway:user:read requires admin role"
    );
    // ...and cannot revoke anything.
    let denied = app
        .as_(&viewer_1.token)
        .revoke_session("ops@example.com", &ops_session_id)
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(
        denied.body["error"],
        "permission denied: gateway:user:update requires admin role"
    );
    assert_eq!(app.as_(&ops.token).info().await.status, StatusCode::OK);
    assert_eq!(proxy(&ops.token).await.0, StatusCode::OK);
    assert_eq!(proxy(&viewer_1.token).await.0, StatusCode::OK);

    // The admin revokes one session: the next call with it is refused.
    let revoked = admin
        .revoke_session("ops@example.com", &ops_session_id)
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert_eq!(revoked.body["revoke_reason"], "admin");
    assert_eq!(revoked.body["revoked_by"], "admin@example.com");
    let refused = app.as_(&ops.token).info().await;
    assert_eq!(
        (refused.status, refused.reason().as_str()),
        (StatusCode::UNAUTHORIZED, "revoked")
    );
    assert_eq!(
        authenticate(&app.pool, rules(), &ops.token).await,
        Err(AuthFailure::Revoked)
    );
    assert_eq!(
        proxy(&ops.token).await,
        (StatusCode::UNAUTHORIZED, "revoked".to_owned()),
        "the rack proxy refuses the revoked session on the next call"
    );
    let twice = admin
        .revoke_session("ops@example.com", &ops_session_id)
        .await;
    assert_eq!(twice.status, StatusCode::CONFLICT);

    // Disabling the viewer ends both of their sessions at once.
    let disabled = admin.disable_user("viewer@example.com").await;
    assert_eq!(disabled.status, StatusCode::OK);
    assert_eq!(disabled.body["disabled"], true);
    assert_eq!(disabled.body["sessions_revoked"], 2);
    for token in [&viewer_1.token, &viewer_2.token] {
        assert_eq!(app.as_(token).info().await.status, StatusCode::UNAUTHORIZED);
        assert!(authenticate(&app.pool, rules(), token).await.is_err());
        assert_eq!(
            proxy(token).await.0,
            StatusCode::UNAUTHORIZED,
            "the rack proxy refuses the disabled user's sessions"
        );
    }
    let page = app.with_cookie(&viewer_2.token).page("/app").await;
    assert_eq!(location(&page), "/app/login");

    // revoke_all for a user with live sessions.
    let deployer_a = app.signed_in(Role::Deployer).await;
    let deployer_b = app.signed_in(Role::Deployer).await;
    let all = admin.revoke_all_sessions("deployer@example.com").await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.body, json!({"revoked": 2}));
    for session in [&deployer_a, &deployer_b] {
        assert_eq!(
            app.as_(&session.token).info().await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let listed = admin.sessions_of("deployer@example.com").await.body;
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
    app.assert_no_secrets_in_events(&[admin_session.token.clone(), viewer_2.token.clone()])
        .await;
    app.assert_projections_rebuild().await;
}

#[tokio::test]
async fn an_idle_web_session_is_refused_and_revoked() {
    let app = TestApp::build()
        .sign_in()
        .env("SESSION_TIMEOUT_MINUTES", "5")
        .spawn()
        .await;
    let session = app.signed_in_on_the_web(Role::Ops).await.token;
    let page = app.with_cookie(&session).page("/app").await;
    assert_eq!(page.status(), StatusCode::OK);
    // Six minutes pass without use.
    sqlx::query("UPDATE session_activity SET last_seen_at = now() - interval '6 minutes'")
        .execute(&app.pool)
        .await
        .unwrap();
    let refused = app.as_(&session).info().await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.reason(), "idle_timeout");
    let revoked = app.events_of("session.revoked").await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["data"]["reason"], "idle_timeout");
    assert_eq!(revoked[0]["actor"]["kind"], "system");
    let page = app.with_cookie(&session).page("/app").await;
    assert_eq!(location(&page), "/app/login");
    // CLI sessions have no idle timeout.
    let cli = app.signed_in(Role::Ops).await;
    assert_eq!(app.as_(&cli.token).info().await.status, StatusCode::OK);
    app.assert_projections_rebuild().await;
}

#[tokio::test]
async fn cookie_authenticated_changes_need_the_csrf_token() {
    let app = TestApp::build().sign_in().spawn().await;
    let session = app.signed_in_on_the_web(Role::Admin).await.token;
    let browser = app.with_cookie(&session);
    let new_user = json!({"email": "new@example.com", "role": "viewer"});
    let before = app.event_count().await;

    // Reads with the cookie alone are fine.
    assert_eq!(browser.users().await.status, StatusCode::OK);

    for token in [
        None,
        Some("bm90IHRoZSB0b2tlbg=="),
        Some(app.csrf_token("rgw_sess_other").as_str()),
    ] {
        let caller = match token {
            Some(token) => app.with_cookie(&session).csrf(token),
            None => app.with_cookie(&session),
        };
        let refused = caller.create_user(new_user.clone()).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{token:?}");
        assert_eq!(refused.reason(), "csrf_failed");
        assert!(refused.body["error"].as_str().unwrap().contains("CSRF"));
    }
    let created: i64 = app.event_count().await - before;
    assert_eq!(created, 0, "a refused change writes nothing");

    let accepted = app
        .with_cookie(&session)
        .csrf(&app.csrf_token(&session))
        .create_user(new_user)
        .await;
    assert_eq!(accepted.status, StatusCode::CREATED);
    // A Bearer credential is not sent by browsers on their own: no CSRF token needed.
    let bearer = app
        .as_(&session)
        .update_user("new@example.com", json!({"role": "ops"}))
        .await;
    assert_eq!(bearer.status, StatusCode::OK);

    // The /app page carries the token for its sign-out form.
    let html = browser.page("/app").await.text().await.unwrap();
    // (HTML-escaped: minijinja writes '/' as &#x2f;.)
    let html = html.replace("&#x2f;", "/");
    assert!(html.contains(&app.csrf_token(&session)), "{html}");

    // Logout without the token: POST is refused, GET only asks.
    let post = browser.web_logout(None).await;
    assert_eq!(post.status(), StatusCode::FORBIDDEN);
    let get = browser.page("/api/v1/auth/web/logout").await;
    assert_eq!(get.status(), StatusCode::OK);
    assert!(get.text().await.unwrap().contains("Sign out?"));
    assert_eq!(
        app.as_(&session).info().await.status,
        StatusCode::OK,
        "still signed in"
    );

    // The form's POST signs out and clears the cookie.
    let out = browser.web_logout(Some(&app.csrf_token(&session))).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&out), "/app/login");
    let cleared = set_cookie(out.headers(), "session_token").unwrap();
    assert!(
        cleared.starts_with("session_token=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    assert_eq!(
        app.as_(&session).info().await.status,
        StatusCode::UNAUTHORIZED
    );
    let logout = app.events_of("auth.logout").await;
    assert_eq!(logout.len(), 1);
    assert_eq!(logout[0]["data"]["channel"], "web");
    app.assert_no_secrets_in_events(&[session.clone(), app.csrf_token(&session)])
        .await;
    app.assert_projections_rebuild().await;
}

#[tokio::test]
async fn cookies_are_httponly_lax_and_secure_on_https() {
    let app = TestApp::build().sign_in().spawn().await;
    let login = app.web_login("viewer@example.com", None).await;
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
    let app = TestApp::build()
        .provider(|provider| {
            provider.redirect_uris = vec![format!("{public}/api/v1/auth/web/callback")];
        })
        .env("PUBLIC_URL", public)
        .spawn()
        .await;
    let start = app.web_login_start().await;
    let state = set_cookie(start.headers(), "rgw_login_state").unwrap();
    assert!(state.ends_with("; Secure"), "{state}");
    let callback = app
        .provider_redirect(&location(&start), "viewer@example.com", None)
        .await;
    assert_eq!(callback.host_str(), Some("gateway.example.test"));
    let landing = app
        .client
        .get(app.on_app(&callback))
        .header("cookie", state.split(';').next().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(location(&landing), "/app");
    let session = set_cookie(landing.headers(), "session_token").unwrap();
    assert!(session.ends_with("; Secure"), "{session}");
}
