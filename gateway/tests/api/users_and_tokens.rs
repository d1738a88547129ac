//! The JSON API for users and API tokens: admins manage, others get the
//! standard denial (403, naming the permission and the role that holds it),
//! every change is an event with the caller as actor, a token's secret is
//! shown once and never stored or recorded, and errors are JSON.

use crate::helpers;
use crate::helpers::sign_in::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn call(
    app: &helpers::TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn users_are_managed_by_admins_only() {
    let stack = stack(|_| {}).await;
    let app = &stack.app;
    let admin = cli_login(app, "admin@example.com").await;
    let admin = admin["token"].as_str().unwrap().to_owned();
    let deployer = cli_login(app, "deployer@example.com").await;
    let deployer = deployer["token"].as_str().unwrap().to_owned();
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
        let (status, body) = call(app, method, path, &deployer, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(
            body,
            json!({"error": format!("permission denied: {permission} requires admin role")})
        );
    }
    assert_eq!(app.event_count().await, before);
    // A user reads their own record.
    let (status, me) = call(
        app,
        M::GET,
        "/api/v1/users/deployer@example.com",
        &deployer,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["role"], "deployer");

    // Admins.
    let (status, list) = call(app, M::GET, "/api/v1/users", &admin, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 4);
    let (status, created) = call(
        app,
        M::POST,
        "/api/v1/users",
        &admin,
        Some(json!({"email": "Alice@Example.com", "role": "deployer", "name": "Alice"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["email"], "alice@example.com");
    assert_eq!(created["name"], "Alice");
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
        let (status, answer) =
            call(app, M::POST, "/api/v1/users", &admin, Some(body.clone())).await;
        assert_eq!(status, want, "{body}");
        assert!(
            answer["error"].as_str().unwrap().contains(text),
            "{body}: {answer}"
        );
    }

    let (status, changed) = call(
        app,
        M::PUT,
        "/api/v1/users/alice@example.com",
        &admin,
        Some(json!({"role": "ops"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(changed["role"], "ops");
    let event = app.events_of("user.role_changed").await.pop().unwrap();
    assert_eq!(event["data"]["previous_role"], "deployer");
    assert_eq!(event["actor"]["email"], "admin@example.com");
    let (status, _) = call(
        app,
        M::GET,
        "/api/v1/users/nobody@example.com",
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, disabled) = call(
        app,
        M::POST,
        "/api/v1/users/deployer@example.com/disable",
        &admin,
        Some(json!({"reason": "left"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(disabled["disabled"], true);
    assert_eq!(disabled["sessions_revoked"], 1);
    assert_eq!(
        app.events_of("user.disabled").await[0]["data"]["reason"],
        "left"
    );
    assert_eq!(info(app, &deployer).await.0, StatusCode::UNAUTHORIZED);
    let (status, again) = call(
        app,
        M::POST,
        "/api/v1/users/deployer@example.com/disable",
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert_projections_rebuild(app).await;
}

#[tokio::test]
async fn api_tokens_show_their_secret_once_and_work_until_revoked() {
    let stack = stack(|_| {}).await;
    let app = &stack.app;
    let admin = cli_login(app, "admin@example.com").await;
    let admin = admin["token"].as_str().unwrap().to_owned();
    let viewer = cli_login(app, "viewer@example.com").await;
    let viewer = viewer["token"].as_str().unwrap().to_owned();
    use reqwest::Method as M;

    let (status, body) = call(
        app,
        M::POST,
        "/api/v1/api-tokens",
        &viewer,
        Some(json!({"name": "ci", "role": "cicd"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["error"],
        "permission denied: gateway:api_token:create requires admin role"
    );
    let (status, body) = call(app, M::GET, "/api/v1/api-tokens", &viewer, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["error"],
        "permission denied: gateway:api_token:read requires admin role"
    );

    let (status, created) = call(
        app,
        M::POST,
        "/api/v1/api-tokens",
        &admin,
        Some(json!({"name": "deploy-bot", "role": "cicd", "user_email": "ops@example.com", "expires_at": "2099-01-01T00:00:00Z"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("rgw_token_") && secret.len() == "rgw_token_".len() + 43);
    assert_eq!(created["name"], "deploy-bot");
    assert_eq!(created["role"], "cicd");
    assert_eq!(created["user_email"], "ops@example.com");
    assert_eq!(created["created_by"], "admin@example.com");
    assert!(created["revoked_at"].is_null());
    let id = created["id"].as_str().unwrap().to_owned();

    // The token authenticates as itself.
    let (status, _, me) = info(app, &secret).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["credential"]["kind"], "api_token");
    assert_eq!(me["credential"]["name"], "deploy-bot");
    assert_eq!(me["credential"]["role"], "cicd");
    assert_eq!(me["rack"]["name"], "default");
    assert_eq!(me["version"]["gateway"], env!("CARGO_PKG_VERSION"));

    // Reads never show the secret (or its hash) again.
    let (status, list) = call(app, M::GET, "/api/v1/api-tokens", &admin, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, one) = call(
        app,
        M::GET,
        &format!("/api/v1/api-tokens/{id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
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

    let (status, body) = call(
        app,
        M::POST,
        "/api/v1/api-tokens",
        &admin,
        Some(json!({"name": "deploy-bot", "role": "cicd"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = call(
        app,
        M::POST,
        "/api/v1/api-tokens",
        &admin,
        Some(json!({"name": "x", "role": "cicd", "expires_at": "2001-01-01T00:00:00Z"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = call(app, M::GET, "/api/v1/api-tokens/not-a-uuid", &admin, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(
        app,
        M::GET,
        &format!("/api/v1/api-tokens/{}", uuid::Uuid::new_v4()),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Revoked: refused from the next call on.
    let (status, body) = call(
        app,
        M::DELETE,
        &format!("/api/v1/api-tokens/{id}"),
        &viewer,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["error"],
        "permission denied: gateway:api_token:delete requires admin role"
    );
    let (status, revoked) = call(
        app,
        M::DELETE,
        &format!("/api/v1/api-tokens/{id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!revoked["revoked_at"].is_null());
    assert_eq!(revoked["revoked_by"], "admin@example.com");
    let (status, headers, _) = info(app, &secret).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_reason(&headers), "revoked");
    let (status, _) = call(
        app,
        M::DELETE,
        &format!("/api/v1/api-tokens/{id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let created = app.events_of("api_token.created").await;
    assert_eq!(created[0]["actor"]["email"], "admin@example.com");
    assert_eq!(app.events_of("api_token.revoked").await.len(), 1);
    assert_no_secrets_in_events(app, &[secret.clone(), admin.clone(), viewer.clone()]).await;
    assert_projections_rebuild(app).await;
}

#[tokio::test]
async fn info_needs_a_credential_and_says_why_not() {
    let stack = stack(|_| {}).await;
    let app = &stack.app;
    let response = app
        .client
        .get(app.url("/api/v1/info"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_reason(response.headers()), "missing_credentials");
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"error": "authentication required"})
    );
    let fake = format!("rgw_sess_{}", "A".repeat(43));
    let (status, headers, _) = info(app, &fake).await;
    assert_eq!(
        (status, error_reason(&headers).as_str()),
        (StatusCode::UNAUTHORIZED, "unknown_token")
    );
    let (status, headers, _) = info(app, "rgw_nonsense").await;
    assert_eq!(
        (status, error_reason(&headers).as_str()),
        (StatusCode::UNAUTHORIZED, "malformed_credentials")
    );
    // Basic with the secret as password works as Bearer does (what the convox CLI sends).
    let login = cli_login(app, "ops@example.com").await;
    let response = app
        .client
        .get(app.url("/api/v1/info"))
        .basic_auth("convox", Some(login["token"].as_str().unwrap()))
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
        .client
        .post(app.url("/api/v1/users"))
        .bearer_auth(login["token"].as_str().unwrap())
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let body: Value = bad.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("JSON"), "{body}");
}
