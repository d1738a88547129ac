//! The JSON API for users and API tokens: admins manage, others get the
//! standard denial (403, naming the permission and the role that holds it),
//! every change is an event with the caller as actor, a token's secret is
//! shown once and never stored or recorded, and errors are JSON.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{error_reason, Role, TestApp};

#[tokio::test]
async fn users_are_managed_by_admins_only() {
    let app = TestApp::build().sign_in().spawn().await;
    let admin = app.signed_in(Role::Admin).await;
    let admin = app.as_(&admin.token);
    let deployer = app.signed_in(Role::Deployer).await;
    let as_deployer = app.as_(&deployer.token);
    use reqwest::Method as M;

    // Non-admins: the standard denial, and nothing written.
    let before = app.event_count().await;
    let denials = [
        (M::GET, "/api/v1/users", None, "gateway:user:read"),
        (
            M::GET,
            "/api/v1/users/ops@example.com",
            None,
            "gateway:user:read",
        ),
        (
            M::POST,
            "/api/v1/users",
            Some(json!({"email": "x@example.com", "role": "viewer"})),
            "gateway:user:create",
        ),
        (
            M::PUT,
            "/api/v1/users/ops@example.com",
            Some(json!({"role": "admin"})),
            "gateway:user:update",
        ),
        (
            M::POST,
            "/api/v1/users/ops@example.com/disable",
            None,
            "gateway:user:update",
        ),
    ];
    for (method, path, body, permission) in denials {
        let denied = as_deployer.call(method, path, body).await;
        assert_eq!(denied.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(
            denied.body,
            json!({"error": format!("permission denied: {permission} requires admin role")})
        );
    }
    assert_eq!(app.event_count().await, before);
    // A user reads their own record.
    let me = as_deployer.user("deployer@example.com").await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["role"], "deployer");

    // Admins.
    let list = admin.users().await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body.as_array().unwrap().len(), 4);
    let created = admin
        .create_user(json!({"email": "Alice@Example.com", "role": "deployer", "name": "Alice"}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.body["email"], "alice@example.com");
    assert_eq!(created.body["name"], "Alice");
    let event = app.events_of("user.created").await.pop().unwrap();
    assert_eq!(event["actor"]["kind"], "user");
    assert_eq!(event["actor"]["email"], "admin@example.com");
    assert_eq!(event["data"]["email"], "alice@example.com");

    let refusals = [
        (
            json!({"email": "alice@example.com", "role": "viewer"}),
            StatusCode::CONFLICT,
            "already exists",
        ),
        (
            json!({"email": "bob@example.com", "role": "root"}),
            StatusCode::BAD_REQUEST,
            "unknown role",
        ),
        (
            json!({"email": "bob@example.com", "role": "cicd"}),
            StatusCode::BAD_REQUEST,
            "API tokens only",
        ),
        (
            json!({"email": "not-an-email", "role": "viewer"}),
            StatusCode::BAD_REQUEST,
            "not an email",
        ),
        (
            json!({"role": "viewer"}),
            StatusCode::BAD_REQUEST,
            "invalid JSON body",
        ),
    ];
    for (body, want, text) in refusals {
        let answer = admin.create_user(body.clone()).await;
        assert_eq!(answer.status, want, "{body}");
        assert!(
            answer.body["error"].as_str().unwrap().contains(text),
            "{body}: {}",
            answer.body
        );
    }

    let changed = admin
        .update_user("alice@example.com", json!({"role": "ops"}))
        .await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_eq!(changed.body["role"], "ops");
    let event = app.events_of("user.role_changed").await.pop().unwrap();
    assert_eq!(event["data"]["previous_role"], "deployer");
    assert_eq!(event["actor"]["email"], "admin@example.com");
    let nobody = admin.user("nobody@example.com").await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND);

    let disabled = admin
        .disable_user_because("deployer@example.com", "left")
        .await;
    assert_eq!(disabled.status, StatusCode::OK);
    assert_eq!(disabled.body["disabled"], true);
    assert_eq!(disabled.body["sessions_revoked"], 1);
    assert_eq!(
        app.events_of("user.disabled").await[0]["data"]["reason"],
        "left"
    );
    assert_eq!(as_deployer.info().await.status, StatusCode::UNAUTHORIZED);
    let again = admin.disable_user("deployer@example.com").await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    app.assert_projections_rebuild().await;
}

#[tokio::test]
async fn api_tokens_show_their_secret_once_and_work_until_revoked() {
    let app = TestApp::build().sign_in().spawn().await;
    let admin_session = app.signed_in(Role::Admin).await;
    let admin = app.as_(&admin_session.token);
    let viewer_session = app.signed_in(Role::Viewer).await;
    let viewer = app.as_(&viewer_session.token);

    let denied = viewer
        .create_api_token(json!({"name": "ci", "role": "cicd"}))
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(
        denied.body["error"],
        "permission denied: gateway:api_token:create requires admin role"
    );
    let denied = viewer.api_tokens().await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(
        denied.body["error"],
        "permission denied: gateway:api_token:read requires admin role"
    );

    let created = admin
        .create_api_token(json!({"name": "deploy-bot", "role": "cicd", "user_email": "ops@example.com", "expires_at": "2099-01-01T00:00:00Z"}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let created = created.body;
    let secret = created["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("rgw_token_") && secret.len() == "rgw_token_".len() + 43);
    assert_eq!(created["name"], "deploy-bot");
    assert_eq!(created["role"], "cicd");
    assert_eq!(created["user_email"], "ops@example.com");
    assert_eq!(created["created_by"], "admin@example.com");
    assert!(created["revoked_at"].is_null());
    let id = created["id"].as_str().unwrap().to_owned();

    // The token authenticates as itself.
    let me = app.as_(&secret).info().await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["credential"]["kind"], "api_token");
    assert_eq!(me.body["credential"]["name"], "deploy-bot");
    assert_eq!(me.body["credential"]["role"], "cicd");
    assert_eq!(me.body["rack"]["name"], "default");
    assert_eq!(me.body["version"]["gateway"], env!("CARGO_PKG_VERSION"));

    // Reads never show the secret (or its hash) again.
    let list = admin.api_tokens().await;
    assert_eq!(list.status, StatusCode::OK);
    let list = list.body;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let one = admin.api_token(&id).await;
    assert_eq!(one.status, StatusCode::OK);
    let one = one.body;
    for shown in [&list[0], &one] {
        assert!(
            shown.get("token").is_none() && shown.get("token_sha256").is_none(),
            "{shown}"
        );
        assert_eq!(shown["id"], id.as_str());
    }
    let text = format!("{list}{one}");
    assert!(
        !text.contains(&secret) && !text.contains(&gateway::auth::secrets::sha256_hex(&secret))
    );

    let taken = admin
        .create_api_token(json!({"name": "deploy-bot", "role": "cicd"}))
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.body);
    let past = admin
        .create_api_token(
            json!({"name": "x", "role": "cicd", "expires_at": "2001-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(past.status, StatusCode::BAD_REQUEST, "{}", past.body);
    assert_eq!(
        admin.api_token("not-a-uuid").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        admin
            .api_token(&uuid::Uuid::new_v4().to_string())
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // Revoked: refused from the next call on.
    let denied = viewer.revoke_api_token(&id).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(
        denied.body["error"],
        "permission denied: gateway:api_token:delete requires admin role"
    );
    let revoked = admin.revoke_api_token(&id).await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert!(!revoked.body["revoked_at"].is_null());
    assert_eq!(revoked.body["revoked_by"], "admin@example.com");
    let refused = app.as_(&secret).info().await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.reason(), "revoked");
    assert_eq!(
        admin.revoke_api_token(&id).await.status,
        StatusCode::CONFLICT
    );

    let created = app.events_of("api_token.created").await;
    assert_eq!(created[0]["actor"]["email"], "admin@example.com");
    assert_eq!(app.events_of("api_token.revoked").await.len(), 1);
    app.assert_no_secrets_in_events(&[secret, admin_session.token, viewer_session.token])
        .await;
    app.assert_projections_rebuild().await;
}

#[tokio::test]
async fn info_needs_a_credential_and_says_why_not() {
    let app = TestApp::build().sign_in().spawn().await;
    let response = app.anonymous().page("/api/v1/info").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_reason(response.headers()), "missing_credentials");
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"error": "authentication required"})
    );
    let fake = format!("rgw_sess_{}", "A".repeat(43));
    let unknown = app.as_(&fake).info().await;
    assert_eq!(
        (unknown.status, unknown.reason().as_str()),
        (StatusCode::UNAUTHORIZED, "unknown_token")
    );
    let malformed = app.as_("rgw_nonsense").info().await;
    assert_eq!(
        (malformed.status, malformed.reason().as_str()),
        (StatusCode::UNAUTHORIZED, "malformed_credentials")
    );
    // Basic with the secret as password works as Bearer does (what the convox CLI sends).
    let ops = app.signed_in(Role::Ops).await;
    let response = app
        .anonymous()
        .request(Method::GET, "/api/v1/info")
        .basic_auth("convox", Some(&ops.token))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let me: Value = response.json().await.unwrap();
    assert_eq!(
        me["user"],
        json!({"email": "ops@example.com", "name": null, "role": "ops"})
    );
    assert_eq!(me["credential"]["kind"], "session");
    // JSON errors for bad bodies too.
    let bad = app
        .as_(&ops.token)
        .request(Method::POST, "/api/v1/users")
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let body: Value = bad.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("JSON"), "{body}");
}
