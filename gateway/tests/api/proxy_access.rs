//! Who may do what through the rack proxy, over real HTTP against a mock rack
//! that records everything it receives: the role × route matrix, path tricks,
//! credentials, the cookie refusal, the failed-authentication rate limit, and
//! the headers the rack sees.

use std::time::Duration;

use serde_json::Value;
use tools::mock_rack::{SEED_APP, SEED_RELEASE};

use crate::helpers::{
    basic, request_id, requester, Rack, Role, TestApp, PREFIX, RACK_TOKEN, UPGRADE,
};

/// What a call should come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Forwarded: the rack saw it (with our request id) and answered this status.
    Rack(u16),
    /// Refused by RBAC or policy: 403, a deny event, never forwarded.
    Denied,
    /// No such route: 404, a deny event, never forwarded.
    Unknown,
    /// The CLI's pre-websocket probe: 404 from the gateway, no event, never forwarded.
    Probe,
}

use Expect::*;

struct Call {
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    websocket: bool,
    /// Per role, in [`Role::ALL`] order: viewer, ops, deployer, cicd, admin, auditor.
    expect: [Expect; 6],
}

fn call(method: &'static str, path: impl Into<String>, expect: [Expect; 6]) -> Call {
    Call {
        method,
        path: path.into(),
        headers: Vec::new(),
        body: Vec::new(),
        websocket: false,
        expect,
    }
}

impl Call {
    fn form(mut self, body: &str) -> Call {
        self.headers
            .push(("Content-Type", "application/x-www-form-urlencoded".into()));
        self.body = body.as_bytes().to_vec();
        self
    }

    fn header(mut self, name: &'static str, value: &str) -> Call {
        self.headers.push((name, value.into()));
        self
    }

    fn raw_body(mut self, body: &[u8]) -> Call {
        self.headers
            .push(("Content-Type", "application/octet-stream".into()));
        self.body = body.to_vec();
        self
    }

    fn websocket(mut self) -> Call {
        self.websocket = true;
        self
    }
}

const OK: Expect = Rack(200);
const WS: Expect = Rack(101);

fn matrix(pid: &str, worker_pid: &str) -> Vec<Call> {
    vec![
        // apps
        call("GET", "/apps", [OK, OK, OK, OK, OK, Denied]),
        call("GET", "/apps/myapp", [OK, OK, OK, OK, OK, Denied]),
        call(
            "POST",
            "/apps",
            [Denied, Denied, Denied, Denied, OK, Denied],
        )
        .form("name=made-by-admin"),
        // Destructive: refused by policy even for admin.
        call("DELETE", "/apps/myapp", [Denied; 6]),
        call(
            "PUT",
            "/apps/myapp",
            [Denied, Denied, OK, Denied, OK, Denied],
        )
        .form("lock=false"),
        // processes
        call("GET", "/apps/myapp/processes", [OK, OK, OK, OK, OK, Denied]),
        call(
            "GET",
            format!("/apps/myapp/processes/{pid}"),
            [OK, OK, OK, OK, OK, Denied],
        ),
        call(
            "POST",
            "/apps/myapp/services/jobs/processes",
            [Denied, OK, OK, Denied, OK, Denied],
        )
        .header("Command", "sleep 3600"),
        // `run` into web/worker is refused for everyone, admins too.
        call("POST", "/apps/myapp/services/web/processes", [Denied; 6])
            .header("Command", "sleep 3600"),
        call(
            "POST",
            "/apps/myapp/services/web/restart",
            [Denied, OK, OK, Denied, OK, Denied],
        ),
        call(
            "GET",
            format!("/apps/myapp/processes/{pid}/exec"),
            [Denied, WS, WS, Denied, WS, Denied],
        )
        .header("Command", "uptime")
        .websocket(),
        // Admin-only commands.
        call(
            "GET",
            format!("/apps/myapp/processes/{pid}/exec"),
            [Denied, Denied, Denied, Denied, WS, Denied],
        )
        .header("Command", "bundle exec rails console")
        .websocket(),
        // Stopping a process is not "destructive"; ops and up may.
        call(
            "DELETE",
            format!("/apps/myapp/processes/{worker_pid}"),
            [Denied, Rack(404), Rack(404), Denied, Rack(404), Denied],
        ),
        // releases and env
        call(
            "GET",
            "/apps/myapp/releases",
            [Denied, OK, OK, Denied, OK, Denied],
        ),
        call(
            "GET",
            format!("/apps/myapp/releases/{SEED_RELEASE}"),
            [Denied, OK, OK, Denied, OK, Denied],
        ),
        call(
            "POST",
            "/apps/myapp/releases",
            [Denied, Denied, OK, Denied, OK, Denied],
        )
        .form("env=A%3D1%0AB%3D2"),
        // An env change in the query string is still an env change.
        call(
            "POST",
            "/apps/myapp/releases?env=A%3D3",
            [Denied, Denied, OK, Denied, OK, Denied],
        ),
        call(
            "POST",
            format!("/apps/myapp/releases/{SEED_RELEASE}/promote"),
            [Denied, Denied, OK, Denied, OK, Denied],
        )
        .form("force=true"),
        // builds and objects
        call(
            "GET",
            "/apps/myapp/builds",
            [OK, OK, OK, Denied, OK, Denied],
        ),
        call(
            "POST",
            "/apps/myapp/objects/tmp/matrix.tgz",
            [Denied, Denied, OK, Denied, OK, Denied],
        )
        .raw_body(b"not really a tarball"),
        // logs
        call("GET", "/apps/myapp/logs", [WS, WS, WS, Denied, WS, Denied])
            .header("Follow", "false")
            .websocket(),
        // rack
        call("GET", "/system", [OK, OK, OK, OK, OK, Denied]),
        call("PUT", "/system", [Denied; 6]).form("version=3.20.0"),
        call("PUT", "/system", [Denied; 6]).form("parameters=node_type%3Dt3.large"),
        call("GET", "/instances", [OK, OK, OK, OK, OK, Denied]),
        call("GET", "/system/logs", [WS, WS, WS, Denied, WS, Denied]).websocket(),
        // refused rack-level resources (the mock has no such routes; the gateway never asks)
        call("GET", "/registries", [Denied; 6]),
        call("POST", "/system/jwt/token", [Denied; 6]).form("role=admin&durationInHour=8"),
        call("DELETE", "/instances/i-1", [Denied; 6]),
        // Admin may read certificates and resources (the mock answers 404: it has no such routes).
        call(
            "GET",
            "/certificates",
            [Denied, Denied, Denied, Denied, Rack(404), Denied],
        ),
        // unknown routes
        call("GET", "/apps/myapp/secrets", [Unknown; 6]),
        call("PATCH", "/apps/myapp", [Unknown; 6]),
        call("GET", "/", [Unknown; 6]),
        // the CLI's probes before websockets
        call(
            "GET",
            "/machines",
            [Probe, Probe, Probe, Probe, Probe, Denied],
        ),
        call("GET", "/racks", [Probe, Probe, Probe, Probe, Probe, Denied]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_gets_what_it_may_and_nothing_else() {
    let rack = Rack::start().await;
    let app = TestApp::build().rack(&rack.url()).spawn().await;
    let tokens = app.tokens_for_every_role().await;
    rack.add_service("jobs");
    let state = rack.app(SEED_APP).expect("seed app");
    let pid = state
        .processes
        .iter()
        .find(|p| p.name == "web")
        .expect("web process")
        .id
        .clone();
    let worker_pid = state
        .processes
        .iter()
        .find(|p| p.name == "worker")
        .expect("worker process")
        .id
        .clone();

    let mut checked = 0;
    for call in matrix(&pid, &worker_pid) {
        for (i, (role, secret)) in tokens.iter().enumerate() {
            let expect = call.expect[i];
            // The worker process stops on the first allowed DELETE; later ones get the rack's 404.
            let expect = match (expect, call.method, call.path.contains(&worker_pid)) {
                (Rack(404), "DELETE", true) if *role == Role::Ops => OK,
                _ => expect,
            };
            let mut headers: Vec<(&str, &str)> =
                call.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            if call.websocket {
                headers.extend(UPGRADE);
            }
            let response = app
                .proxy(secret)
                .raw(call.method, &call.path, &headers, &call.body)
                .await;
            let what = format!("{role} {} {}", call.method, call.path);
            let request_id = response
                .header("x-request-id")
                .unwrap_or_else(|| panic!("{what}: no X-Request-Id: {}", response.head));
            let events = app.proxy_events_for(&request_id).await;
            match expect {
                Rack(status) => {
                    assert_eq!(response.status, status, "{what}: {response:?}");
                    assert!(rack.saw(&request_id), "{what}: the rack never got it");
                    let request = &events.first().expect("proxy.request").2;
                    assert_eq!(events[0].1, "proxy.request", "{what}");
                    assert_eq!(request["decision"], "allow", "{what}");
                    assert!(request["route"].as_str().is_some(), "{what}");
                    if status != 101 {
                        assert_eq!(events.len(), 2, "{what}: {events:?}");
                        assert_eq!(events[1].1, "proxy.response", "{what}");
                        assert_eq!(events[1].2["status"], status, "{what}");
                    }
                }
                Denied | Unknown => {
                    let status = if expect == Denied { 403 } else { 404 };
                    // A refused exec session is told in-band (so the CLI can show why and
                    // exit non-zero): 101, then `ERROR: <reason>`; nothing is connected upstream.
                    let in_band =
                        call.websocket && expect == Denied && call.path.ends_with("/exec");
                    let answered = if in_band { 101 } else { status };
                    assert_eq!(response.status, answered, "{what}: {response:?}");
                    assert!(!rack.saw(&request_id), "{what} reached the rack");
                    assert_eq!(events.len(), 1, "{what}: {events:?}");
                    let (_, event_type, data) = &events[0];
                    assert_eq!(event_type, "proxy.request", "{what}");
                    assert_eq!(data["decision"], "deny", "{what}");
                    assert_eq!(data["status"], status, "{what}");
                    if in_band {
                        assert_eq!(data["delivered"], "websocket_error_frame", "{what}");
                    }
                    let body = String::from_utf8_lossy(&response.body);
                    if expect == Denied && !in_band {
                        let permission = data["permission"].as_str().expect("permission recorded");
                        assert!(
                            body.contains(permission) || body.contains("policy"),
                            "{what}: {body}"
                        );
                        assert_eq!(data["reason"].as_str(), Some(body.trim()), "{what}");
                    }
                }
                Probe => {
                    assert_eq!(response.status, 404, "{what}: {response:?}");
                    assert!(!rack.saw(&request_id), "{what} reached the rack");
                    assert!(
                        events.is_empty(),
                        "{what}: a probe raises no event: {events:?}"
                    );
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 200, "{checked}");

    // Websocket sessions end (the raw client hung up) and record their response.
    testkit::wait_for(
        "websocket proxy.response events",
        Duration::from_secs(10),
        || async {
            let events = app.proxy_events().await;
            let upgrades = events
                .iter()
                .filter(|(_, t, d)| {
                    t == "proxy.request" && d["websocket"] == true && d["decision"] == "allow"
                })
                .count();
            let ends = events
                .iter()
                .filter(|(_, t, d)| t == "proxy.response" && d["kind"] == "websocket")
                .count();
            upgrades > 0 && upgrades == ends
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_denials_name_the_permission_and_the_lowest_role() {
    let rack = Rack::start().await;
    let app = TestApp::build().rack(&rack.url()).spawn().await;
    let viewer = app.token(Role::Viewer).await;
    let response = app
        .proxy(&viewer)
        .post_form("/apps/myapp/releases", &[("env", "A=1")])
        .await;
    assert_eq!(response.status(), 403);
    let id = request_id(&response);
    assert_eq!(
        response.text().await.unwrap(),
        "permission denied: convox:env:set requires deployer role\n"
    );
    let events = app.proxy_events_for(&id).await;
    assert_eq!(events[0].2["permission"], "convox:env:set");
    // JSON when asked for.
    let response = app
        .proxy(&viewer)
        .request(reqwest::Method::DELETE, "/apps/myapp")
        .header("Accept", "application/json")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["error"],
        "permission denied: convox:app:delete requires admin role"
    );
}

/// Requests that try to reach a route the role lacks by dressing the path up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_tricks_never_reach_a_route_the_role_lacks() {
    let rack = Rack::start().await;
    let app = TestApp::build().rack(&rack.url()).spawn().await;
    let viewer_token = app.token(Role::Viewer).await;
    let viewer = app.proxy(&viewer_token);
    // A viewer may read apps and system, not releases (env values) nor delete anything.
    let tricks: &[(&str, &str, u16)] = &[
        ("GET", "/apps/../apps/myapp/releases", 400),
        ("GET", "/apps/myapp/processes/../releases", 400),
        ("GET", "/apps/myapp/processes/%2e%2e/releases", 400),
        ("GET", "/apps/myapp/processes/.%2E/releases", 400),
        ("GET", "/apps/myapp%2freleases", 400),
        ("GET", "/apps/myapp%2Freleases", 400),
        ("GET", "/apps/myapp/releases%2f", 400),
        ("GET", "/apps/myapp//releases", 400),
        ("GET", "/apps/myapp/releases/", 400),
        ("GET", "///apps/myapp/releases", 400),
        ("GET", "/apps/myapp./releases", 400),
        ("GET", "/apps/myapp/releases.", 400),
        ("GET", "/apps/myapp/releases;x=1", 400),
        ("GET", "/apps/myapp/%252e%252e/releases", 400),
        ("GET", "/apps/myapp\\..\\releases", 400),
        ("GET", "/apps/myapp/%5c../releases", 400),
        ("GET", "/apps/myapp/%e2%80%a4%e2%80%a4/releases", 400),
        // Encoded ordinary letters decode to the real route, which the viewer lacks.
        ("GET", "/apps/myapp/%72eleases", 403),
        // The CLI's leading '//' (RACK_URL with a trailing slash) folds to the real route.
        ("GET", "//apps/myapp/releases", 403),
        ("GET", "/APPS/myapp/releases", 404),
        ("DELETE", "/apps/myapp/", 400),
    ];
    let mut ids = Vec::new();
    for (method, path, status) in tricks {
        let response = viewer.raw(method, path, &[], b"").await;
        assert_eq!(response.status, *status, "{method} {path}: {response:?}");
        let id = response.header("x-request-id").expect("request id");
        let events = app.proxy_events_for(&id).await;
        assert_eq!(events.len(), 1, "{method} {path}: {events:?}");
        assert_eq!(events[0].2["decision"], "deny", "{method} {path}");
        assert_eq!(events[0].2["status"], *status, "{method} {path}");
        ids.push(id);
    }
    // Method overrides: the real method decides and is what the rack gets.
    let response = viewer
        .raw(
            "POST",
            "/apps",
            &[
                ("X-HTTP-Method-Override", "GET"),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            b"name=sneaky",
        )
        .await;
    assert_eq!(response.status, 403, "{response:?}");
    let admin_token = app.token(Role::Admin).await;
    let admin = app.proxy(&admin_token);
    for header in [
        "X-HTTP-Method-Override",
        "X-HTTP-Method",
        "X-Method-Override",
    ] {
        let response = admin
            .raw("GET", "/apps/myapp", &[(header, "DELETE")], b"")
            .await;
        assert_eq!(response.status, 200, "{header}: {response:?}");
    }
    assert!(rack.app(SEED_APP).is_some(), "no override deleted the app");
    // A websocket upgrade on a plain route, and a plain request on a websocket route.
    let response = admin.raw("GET", "/apps", &UPGRADE, b"").await;
    assert_eq!(response.status, 400, "{response:?}");
    let response = admin.raw("GET", "/apps/myapp/logs", &[], b"").await;
    assert_eq!(response.status, 400, "{response:?}");

    for recorded in rack.recorded() {
        assert!(
            !recorded.path.contains("releases")
                && recorded.method != "DELETE"
                && !recorded.websocket,
            "a trick reached the rack: {recorded:?}"
        );
        assert!(
            !ids.contains(&recorded.request_id.clone().unwrap_or_default()),
            "{recorded:?}"
        );
    }
    // Only the admin's three GET /apps/myapp reached it.
    let reached: Vec<_> = rack
        .recorded()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    assert_eq!(
        reached,
        vec![("GET".to_owned(), "/apps/myapp".to_owned()); 3]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_get_401_with_a_reason_and_are_recorded() {
    let rack = Rack::start().await;
    let app = TestApp::build().rack(&rack.url()).sign_in().spawn().await;
    let by = requester();

    let unknown = gateway::auth::secrets::generate(gateway::auth::secrets::SecretKind::ApiToken)
        .unwrap()
        .secret;
    let revoked = app.create_token("to-revoke", Role::Admin, None, None).await;
    gateway::accounts::api_tokens::revoke(
        &app.pool,
        &app.state.appender,
        &by,
        &revoked.token.id.to_string(),
        None,
    )
    .await
    .unwrap();
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let expiring = app
        .create_token("expiring", Role::Admin, None, Some(&soon))
        .await;
    let session = app.signed_in(Role::Deployer).await.token;
    gateway::accounts::users::add(
        &app.pool,
        &app.state.appender,
        &by,
        "owner@example.com",
        "admin",
        None,
    )
    .await
    .unwrap();
    let owned = app
        .create_token("owned", Role::Admin, Some("owner@example.com"), None)
        .await;
    // Both work before the owner is disabled.
    for secret in [&session, &owned.secret] {
        let r = app.proxy(secret).get("/apps").await;
        assert_eq!(r.status(), 200);
    }
    gateway::accounts::users::disable(
        &app.pool,
        &app.state.appender,
        &by,
        "deployer@example.com",
        None,
    )
    .await
    .unwrap();
    gateway::accounts::users::disable(
        &app.pool,
        &app.state.appender,
        &by,
        "owner@example.com",
        None,
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let seen_before = rack.recorded().len();
    let cases: Vec<(String, Option<String>, &str)> = vec![
        ("none".into(), None, "missing_credentials"),
        ("unknown".into(), Some(basic(&unknown)), "unknown_token"),
        ("not ours".into(), Some(basic("hunter2")), "unknown_token"),
        (
            "bearer unknown".into(),
            Some(format!("Bearer {unknown}")),
            "unknown_token",
        ),
        (
            "garbage".into(),
            Some("Basic !!!".into()),
            "malformed_credentials",
        ),
        ("revoked".into(), Some(basic(&revoked.secret)), "revoked"),
        ("expired".into(), Some(basic(&expiring.secret)), "expired"),
        (
            "session of a disabled user".into(),
            Some(basic(&session)),
            "revoked",
        ),
        (
            "token of a disabled owner".into(),
            Some(basic(&owned.secret)),
            "user_disabled",
        ),
        (
            "the rack's own password".into(),
            Some(basic(RACK_TOKEN)),
            "unknown_token",
        ),
    ];
    for (what, authorization, reason) in cases {
        let response = app.proxy_with(authorization.as_deref()).get("/apps").await;
        assert_eq!(response.status(), 401, "{what}");
        assert_eq!(response.headers()["x-error-reason"], reason, "{what}");
        assert!(
            response.headers().get("www-authenticate").is_none(),
            "{what}: no Basic challenge"
        );
        let id = request_id(&response);
        let events = app.proxy_events_for(&id).await;
        assert_eq!(events.len(), 1, "{what}: {events:?}");
        assert_eq!(events[0].2["decision"], "deny", "{what}");
        assert_eq!(events[0].2["error"], reason, "{what}");
        assert_eq!(events[0].2["status"], 401, "{what}");
    }

    // A browser session cookie is refused even with a good token.
    let admin = app.token(Role::Admin).await;
    let response = app
        .proxy(&admin)
        .request(reqwest::Method::GET, "/apps")
        .header("Cookie", "theme=dark; session_token=abc")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["x-error-reason"], "cookie_not_allowed");
    assert_eq!(
        response.text().await.unwrap(),
        "browser session cookies are not permitted for CLI routes\n"
    );
    // Other cookies are harmless (and dropped before the rack).
    let response = app
        .proxy(&admin)
        .request(reqwest::Method::GET, "/apps")
        .header("Cookie", "theme=dark")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        rack.recorded().len(),
        seen_before + 1,
        "no refused call reached the rack"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentication_is_rate_limited_per_address_with_one_event_per_window() {
    let rack = Rack::start().await;
    let app = TestApp::build()
        .rack(&rack.url())
        .env("PROXY_AUTH_FAILURE_LIMIT", "3")
        .env("PROXY_AUTH_FAILURE_WINDOW_SECONDS", "4")
        // Our loopback "proxy" may say who the client is.
        .env("TRUSTED_PROXY_CIDRS", "127.0.0.1/32")
        .spawn()
        .await;
    let good = basic(&app.token(Role::Viewer).await);
    let bad = basic("not-a-token");
    let get = |auth: String, from: &'static str| {
        let request = app
            .proxy_with(Some(&auth))
            .request(reqwest::Method::GET, "/apps")
            .header("X-Forwarded-For", from);
        async move { request.send().await.expect("send").status().as_u16() }
    };
    // Start just after a window boundary so the burst stays in one window.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let into_window = now.as_millis() % 4000;
    tokio::time::sleep(Duration::from_millis((4000 - into_window as u64) + 100)).await;

    for _ in 0..3 {
        assert_eq!(get(bad.clone(), "203.0.113.7").await, 401);
    }
    for _ in 0..20 {
        assert_eq!(get(bad.clone(), "203.0.113.7").await, 429);
    }
    // A valid credential from the same address is never refused for others' failures
    // (issue 14: a 256-bit token cannot be guessed, so there is nothing to confirm)...
    assert_eq!(get(good.clone(), "203.0.113.7").await, 200);
    // ...and another address is not affected.
    assert_eq!(get(good.clone(), "198.51.100.9").await, 200);
    assert_eq!(get(bad.clone(), "198.51.100.9").await, 401);

    // Only the three failures were recorded one by one.
    let denials = app
        .proxy_events()
        .await
        .into_iter()
        .filter(|(_, t, d)| t == "proxy.request" && d["status"] == 401)
        .count();
    assert_eq!(denials, 4);

    testkit::wait_for(
        "one rate_limit.exceeded event",
        Duration::from_secs(10),
        || async {
            app.proxy_events()
                .await
                .iter()
                .any(|(_, t, _)| t == "rate_limit.exceeded")
        },
    )
    .await;
    let exceeded: Vec<Value> = app
        .proxy_events()
        .await
        .into_iter()
        .filter(|(_, t, _)| t == "rate_limit.exceeded")
        .map(|(_, _, d)| d)
        .collect();
    assert_eq!(exceeded.len(), 1, "{exceeded:?}");
    assert_eq!(exceeded[0]["address"], "203.0.113.7");
    assert_eq!(exceeded[0]["refused"], 20);
    assert_eq!(exceeded[0]["failures"], 3);
    assert_eq!(exceeded[0]["limit"], 3);
    assert_eq!(exceeded[0]["window_seconds"], 4);

    // The next window starts fresh, and a second flood is a second event.
    assert_eq!(get(good.clone(), "203.0.113.7").await, 200);
    for _ in 0..3 {
        assert_eq!(get(bad.clone(), "203.0.113.7").await, 401);
    }
    assert_eq!(get(bad.clone(), "203.0.113.7").await, 429);
    let mut app = app;
    app.stop().await; // records the window still open
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE type = 'rate_limit.exceeded'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(count, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rack_sees_our_request_id_and_actor_never_the_clients() {
    let rack = Rack::start().await;
    let app = TestApp::build().rack(&rack.url()).sign_in().spawn().await;
    let session = app.signed_in(Role::Deployer).await.token;
    let response = app
        .proxy(&session)
        .request(reqwest::Method::GET, "/apps")
        .header("X-Request-Id", "client-chosen-id")
        .header("Convox-Actor", "someone-else@example.com")
        .header("X-Convox-Actor", "someone-else@example.com")
        .header("Version", "dev")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let id = request_id(&response);
    assert_ne!(id, "client-chosen-id");
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    let seen = rack.recorded().pop().expect("recorded");
    assert_eq!(seen.request_id.as_deref(), Some(id.as_str()));
    assert_eq!(seen.actor.as_deref(), Some("deployer@example.com"));
    assert_eq!(seen.x_convox_actor, None);
    assert_eq!(seen.auth, tools::mock_rack::AuthOutcome::Ok);
    // The same, in the --record file.
    let from_file = rack.recorded_file().pop().expect("record file line");
    assert_eq!(from_file.request_id.as_deref(), Some(id.as_str()));
    let events = app.proxy_events_for(&id).await;
    assert_eq!(events[0].2["client_request_id"], "client-chosen-id");

    // A token without an owner acts as token:<name>.
    let response = app.proxy(&app.token(Role::Viewer).await).get("/apps").await;
    assert_eq!(response.status(), 200);
    let seen = rack.recorded().pop().expect("recorded");
    assert!(
        seen.actor
            .as_deref()
            .is_some_and(|a| a.starts_with("token:t-viewer-")),
        "{seen:?}"
    );
    // The bare prefix and the prefix with a slash are the proxy's (404, recorded).
    for target in ["", "/"] {
        let response = app.proxy(&session).raw("GET", target, &[], b"").await;
        assert_eq!(response.status, 404, "{PREFIX}{target}: {response:?}");
    }
}
