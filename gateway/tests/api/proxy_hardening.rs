//! What a security review of the proxy found, each tried as an attacker
//! would: forms the rack reads but the gateway would not, a query standing in
//! for the exec `Command` header, a rack read before its audit, browsers
//! riding a cached credential, and tokens stronger than their owners.

use serde_json::json;
use tools::mock_rack::SEED_APP;

use crate::helpers::{request_id, requester, Rack, Role, TestApp, UPGRADE};

/// A form the rack would parse is never forwarded unread: a `Content-Type`
/// Go reads as a form but we cannot read the same way is refused, and so
/// are two `Content-Type` headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_the_rack_would_read_is_never_forwarded_unread() {
    let rack = Rack::start().await;
    let app = TestApp::build().rack(&rack.url()).spawn().await;
    let deployer = app.token(Role::Deployer).await;
    let body = b"env=A%3D1%0ASTOLEN%3D2";
    let cases: [(&[(&str, &str)], u16); 3] = [
        // Go trims the no-break space (Unicode whitespace) and reads a form.
        (
            &[("Content-Type", "application/x-www-form-urlencoded\u{a0}")],
            415,
        ),
        // Go lower-cases U+0130 to `i`: a form to the rack.
        (
            &[("Content-Type", "appl\u{130}cation/x-www-form-urlencoded")],
            415,
        ),
        (
            &[
                ("Content-Type", "text/plain"),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            400,
        ),
    ];
    for (headers, status) in cases {
        let before = rack.recorded().len();
        let response = app
            .proxy(&deployer)
            .raw("POST", "/apps/myapp/releases", headers, body)
            .await;
        assert_eq!(response.status, status, "{headers:?}: {}", response.head);
        assert_eq!(
            rack.recorded().len(),
            before,
            "{headers:?} reached the rack"
        );
    }
    // Read as Go reads it: case, spaces and parameters do not hide the form.
    let response = app
        .proxy(&deployer)
        .raw(
            "POST",
            "/apps/myapp/releases",
            &[(
                "Content-Type",
                "Application/X-WWW-Form-URLEncoded ; charset",
            )],
            body,
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.head);
    let id = response.header("x-request-id").expect("request id");
    let events = app.proxy_events_for(&id).await;
    assert_eq!(events[0].2["permission"], "convox:env:set", "{events:?}");
    assert_eq!(events[0].2["env_change"], json!({"keys": ["A", "STOLEN"]}));
}

/// A websocket is forwarded without its query: the exec command recorded and
/// judged is the `Command` header the rack runs, never a query `command`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_command_does_not_stand_in_for_the_exec_header() {
    let rack = Rack::start().await;
    let app = TestApp::build().rack(&rack.url()).spawn().await;
    let ops = app.token(Role::Ops).await;
    let pid = web_pid(&rack);
    let text = app
        .proxy(&ops)
        .websocket_text(
            &format!("/apps/myapp/processes/{pid}/exec?command=ls"),
            &[("Command", "echo from-header")],
        )
        .await;
    assert!(text.contains("from-header"), "{text}");
    let request = app
        .proxy_events()
        .await
        .into_iter()
        .rfind(|(_, t, d)| {
            t == "proxy.request" && d["route"] == "GET /apps/{app}/processes/{pid}/exec"
        })
        .expect("the exec's proxy.request");
    assert_eq!(request.2["command"], "echo from-header", "{request:?}");
    // Nor can a harmless query hide an admin-only header from the policy.
    let request = app.proxy(&ops).websocket_request(
        &format!("/apps/myapp/processes/{pid}/exec?command=ls"),
        &[("Command", "rails console")],
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let mut said = String::new();
    while let Some(Ok(message)) = futures::StreamExt::next(&mut socket).await {
        if let tokio_tungstenite::tungstenite::Message::Text(t) = message {
            said.push_str(&t);
        }
    }
    assert!(said.contains("require admin role"), "{said}");
}

/// The env pre-read is a rack call: it happens only once `proxy.request` is
/// committed, so with the chain unable to commit the rack sees nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_env_read_reaches_the_rack_before_its_audit() {
    let rack = Rack::start().await;
    let app = TestApp::build()
        .rack(&rack.url())
        .env("AUDIT_APPEND_TIMEOUT_MS", "500")
        .spawn()
        .await;
    let deployer = app.token(Role::Deployer).await;
    // Warm the credential path so only the append is left to fail.
    assert_eq!(app.proxy(&deployer).get("/apps").await.status(), 200);
    let before = rack.recorded().len();
    let mut lock = app.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE events IN EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let response = app
        .proxy(&deployer)
        .post_form("/apps/myapp/releases", &[("env", "A=2")])
        .await;
    assert_eq!(response.status(), 503);
    lock.rollback().await.unwrap();
    let reached: Vec<String> = rack.recorded()[before..]
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        reached.is_empty(),
        "the rack saw {reached:?} before its audit"
    );
}

/// No Basic challenge (a browser would cache the credential), and a
/// browser's cross-site request to a websocket or a state-changing route is
/// refused and recorded; the CLI's own `Origin` (its host) still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_cannot_ride_a_cached_credential() {
    let rack = Rack::start().await;
    let app = TestApp::build().rack(&rack.url()).spawn().await;
    let admin = app.token(Role::Admin).await;
    let response = app.proxy_with(None).get("/apps").await;
    assert_eq!(response.status(), 401);
    assert!(response.headers().get("www-authenticate").is_none());

    let before = rack.recorded().len();
    type Call<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);
    let refused: [Call; 4] = [
        (
            "POST",
            "/apps/myapp/services/web/restart",
            vec![("Origin", "https://evil.example")],
        ),
        (
            "DELETE",
            "/apps/myapp/processes/p-1",
            vec![("Sec-Fetch-Site", "cross-site")],
        ),
        (
            "POST",
            "/apps/myapp/services/web/restart",
            vec![("Origin", "null")],
        ),
        (
            "GET",
            "/apps/myapp/logs",
            [UPGRADE.to_vec(), vec![("Origin", "https://evil.example")]].concat(),
        ),
    ];
    for (method, path, headers) in &refused {
        let response = app.proxy(&admin).raw(method, path, headers, b"").await;
        assert_eq!(response.status, 403, "{method} {path} {headers:?}");
        let body = String::from_utf8_lossy(&response.body);
        assert!(body.contains("not for pages in a browser"), "{body}");
        let id = response.header("x-request-id").unwrap();
        let events = app.proxy_events_for(&id).await;
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].2["decision"], "deny");
        assert_eq!(events[0].2["error"], "browser_request");
    }
    assert_eq!(
        rack.recorded().len(),
        before,
        "a browser request reached the rack"
    );

    // Reads are not state-changing; the CLI's websocket Origin is its own host.
    let read = app
        .proxy(&admin)
        .raw("GET", "/apps", &[("Origin", "https://evil.example")], b"")
        .await;
    assert_eq!(read.status, 200);
    let host = app.address.trim_start_matches("http://").to_owned();
    let origin = format!("https://{host}");
    let text = app
        .proxy(&admin)
        .websocket_text(
            "/apps/myapp/logs",
            &[("Origin", &origin), ("Follow", "false")],
        )
        .await;
    assert!(!text.is_empty());
}

/// A token owned by a person acts with the lower of its role and the
/// owner's current role; a disabled owner's token stops at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_never_stronger_than_its_owner_now_is() {
    let rack = Rack::start().await;
    let app = TestApp::build().rack(&rack.url()).spawn().await;
    let by = requester();
    let users = |email: &'static str, role: &'static str| {
        let app = &app;
        let by = &by;
        async move {
            gateway::accounts::users::add(&app.pool, &app.state.appender, by, email, role, None)
                .await
                .unwrap();
        }
    };
    users("owner@example.com", "admin").await;
    users("ci-owner@example.com", "deployer").await;
    users("auditor@example.com", "auditor").await;
    let admin_token = app
        .create_token("owned-admin", Role::Admin, Some("owner@example.com"), None)
        .await
        .secret;
    let cicd_token = app
        .create_token("owned-cicd", Role::Cicd, Some("ci-owner@example.com"), None)
        .await
        .secret;
    let auditors_token = app
        .create_token(
            "owned-deployer",
            Role::Deployer,
            Some("auditor@example.com"),
            None,
        )
        .await
        .secret;
    let restart = |secret: String| {
        let app = &app;
        async move {
            app.proxy(&secret)
                .request(reqwest::Method::POST, "/apps/myapp/services/web/restart")
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(restart(admin_token.clone()).await.status(), 200);
    assert_eq!(app.proxy(&cicd_token).get("/apps").await.status(), 200);

    for (email, role) in [
        ("owner@example.com", "viewer"),
        ("ci-owner@example.com", "viewer"),
    ] {
        gateway::accounts::users::set_role(&app.pool, &app.state.appender, &by, email, role)
            .await
            .unwrap();
    }
    // The admin token now acts as a viewer: reads pass, a restart does not.
    assert_eq!(app.proxy(&admin_token).get("/apps").await.status(), 200);
    let response = restart(admin_token.clone()).await;
    assert_eq!(response.status(), 403);
    let id = request_id(&response);
    let text = response.text().await.unwrap();
    assert!(text.contains("requires ops role"), "{text}");
    let events = app.proxy_events_for(&id).await;
    assert_eq!(events[0].2["decision"], "deny");
    // Its API calls too: creating a token needs admin.
    let api = app
        .client
        .get(app.url("/api/v1/api-tokens"))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 403);
    // Roles that are not ordered: both must hold each permission. A deployer
    // token of an auditor reads nothing from the rack (the auditor holds no
    // `convox:*`); a cicd token of a viewer keeps what both hold.
    let response = app.proxy(&auditors_token).get("/apps").await;
    assert_eq!(response.status(), 403);
    assert_eq!(app.proxy(&cicd_token).get("/apps").await.status(), 200);

    gateway::accounts::users::disable(
        &app.pool,
        &app.state.appender,
        &by,
        "owner@example.com",
        None,
    )
    .await
    .unwrap();
    let response = app.proxy(&admin_token).get("/apps").await;
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["x-error-reason"], "user_disabled");
}

fn web_pid(rack: &Rack) -> String {
    rack.app(SEED_APP)
        .expect("seed app")
        .processes
        .iter()
        .find(|p| p.name == "web")
        .expect("web process")
        .id
        .clone()
}

/// A web session the proxy finds idle is refused and revoked, as on the API path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_web_sessions_seen_by_the_proxy_are_revoked() {
    let rack = Rack::start().await;
    let app = TestApp::build()
        .rack(&rack.url())
        .sign_in()
        .env("SESSION_TIMEOUT_MINUTES", "5")
        .spawn()
        .await;
    let session = app.signed_in_on_the_web(Role::Ops).await.token;
    assert_eq!(app.proxy(&session).get("/apps").await.status(), 200);
    sqlx::query("UPDATE session_activity SET last_seen_at = now() - interval '6 minutes'")
        .execute(&app.pool)
        .await
        .unwrap();
    let response = app.proxy(&session).get("/apps").await;
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["x-error-reason"], "idle_timeout");
    let revoked = app.events_of("session.revoked").await;
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert_eq!(revoked[0]["data"]["reason"], "idle_timeout");
    let response = app.proxy(&session).get("/apps").await;
    assert_eq!(response.headers()["x-error-reason"], "revoked");
    app.assert_projections_rebuild().await;
}

/// Shell syntax cannot hide an admin-only command from the proxy's policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_syntax_through_the_proxy_is_admin_only() {
    let rack = Rack::start().await;
    let app = TestApp::build().rack(&rack.url()).spawn().await;
    let ops = app.token(Role::Ops).await;
    let admin = app.token(Role::Admin).await;
    let pid = web_pid(&rack);
    let exec = format!("/apps/myapp/processes/{pid}/exec");
    let said = app
        .proxy(&ops)
        .websocket_text(&exec, &[("Command", "cat /etc/hosts | sh")])
        .await;
    assert!(said.contains("shell syntax"), "{said}");
    let said = app
        .proxy(&ops)
        .websocket_text(&exec, &[("Command", "rake db:drop")])
        .await;
    assert!(said.contains("ADMIN_ONLY_COMMANDS"), "{said}");
    let said = app
        .proxy(&admin)
        .websocket_text(&exec, &[("Command", "echo hi; echo there")])
        .await;
    assert!(said.contains("hi"), "{said}");
}

/// Open an exec / followed logs websocket and read until it closes; the close code and reason.
async fn read_until_closed(
    app: &TestApp,
    secret: &str,
    path: &str,
    headers: &[(&str, &str)],
    opened: tokio::sync::oneshot::Sender<()>,
) -> (Option<u16>, String, std::time::Duration) {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let request = app.proxy(secret).websocket_request(path, headers);
    let (mut socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade");
    assert_eq!(response.status(), 101);
    let _ = opened.send(());
    let started = std::time::Instant::now();
    let read = async {
        while let Some(message) = socket.next().await {
            match message {
                Ok(Message::Close(frame)) => {
                    return frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                }
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    };
    let closed = tokio::time::timeout(std::time::Duration::from_secs(30), read)
        .await
        .expect("the gateway closed it in time");
    let (code, reason) = match closed {
        Some((code, reason)) => (Some(code), reason),
        None => (None, String::new()),
    };
    (code, reason, started.elapsed())
}

/// A revoked session, a disabled user, a revoked token or a lowered role
/// closes an open exec or followed log stream within seconds, with 1008,
/// and its proxy.response says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_streams_are_reauthorised_and_closed_with_1008() {
    let rack = Rack::start().await;
    let app = TestApp::build()
        .rack(&rack.url())
        .sign_in()
        .env("STREAM_REAUTHORIZE_SECONDS", "1")
        .spawn()
        .await;
    let by = requester();
    let pid = web_pid(&rack);
    let exec = format!("/apps/myapp/processes/{pid}/exec");

    // Each case: a credential, the stream it opens, and what takes its right away.
    let session = app.signed_in(Role::Ops).await;
    let ops_email = crate::helpers::person(Role::Ops);
    let deployer = crate::helpers::person(Role::Deployer);
    let token = app.token(Role::Ops).await;
    let owned = app
        .create_token("owned-by-deployer", Role::Deployer, Some(&deployer), None)
        .await;

    type Revoke<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>>;
    type Case<'a> = (
        &'a str,
        String,
        String,
        Vec<(&'a str, &'a str)>,
        Revoke<'a>,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "session revoked during exec",
            session.token.clone(),
            exec.clone(),
            vec![("Command", "sleep 20")],
            Box::pin(async {
                let id = session.id.clone().unwrap();
                gateway::auth::sessions::revoke(
                    &app.pool,
                    &app.state.appender,
                    &by,
                    &ops_email,
                    &id,
                )
                .await
                .map(|_| ())
                .unwrap_or_else(|e| panic!("revoke: {e}"));
            }),
            "revoked",
        ),
        (
            "token revoked during followed logs",
            token.clone(),
            "/apps/myapp/logs".to_owned(),
            vec![],
            Box::pin(async {
                let id: String = sqlx::query_scalar(
                    "SELECT id::text FROM api_tokens WHERE revoked_at IS NULL AND name LIKE 't-ops-%'",
                )
                .fetch_one(&app.pool)
                .await
                .unwrap();
                gateway::accounts::api_tokens::revoke(
                    &app.pool,
                    &app.state.appender,
                    &by,
                    &id,
                    None,
                )
                .await
                .unwrap();
            }),
            "revoked",
        ),
        (
            "owner's role lowered during exec",
            owned.secret.clone(),
            exec.clone(),
            vec![("Command", "sleep 20")],
            Box::pin(async {
                gateway::accounts::users::set_role(
                    &app.pool,
                    &app.state.appender,
                    &by,
                    &deployer,
                    "viewer",
                )
                .await
                .unwrap();
            }),
            "no longer allowed",
        ),
        (
            "user disabled during followed logs",
            app.signed_in(Role::Ops).await.token,
            "/apps/myapp/logs".to_owned(),
            vec![],
            Box::pin(async {
                gateway::accounts::users::disable(
                    &app.pool,
                    &app.state.appender,
                    &by,
                    &ops_email,
                    None,
                )
                .await
                .unwrap();
            }),
            "",
        ),
    ];
    for (seen, (what, secret, path, headers, revoke, reason)) in cases.into_iter().enumerate() {
        let (opened_tx, opened_rx) = tokio::sync::oneshot::channel();
        let reader = read_until_closed(&app, &secret, &path, &headers, opened_tx);
        let revoker = async {
            opened_rx.await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            revoke.await;
        };
        let ((code, said, lasted), ()) = futures::join!(reader, revoker);
        assert_eq!(code, Some(1008), "{what}: closed with {code:?} {said:?}");
        assert!(said.contains(reason), "{what}: {said:?}");
        assert!(
            lasted < std::time::Duration::from_secs(8),
            "{what}: open for {lasted:?}"
        );
        // The end is recorded, with why.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let recorded = loop {
            let ends: Vec<_> = app
                .proxy_events()
                .await
                .into_iter()
                .filter(|(_, t, d)| t == "proxy.response" && d["closed_by"] == "reauthorization")
                .collect();
            if ends.len() == seen + 1 {
                break ends[seen].2.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{what}: no proxy.response: {ends:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        assert_eq!(recorded["status"], 101, "{what}");
        assert!(
            recorded["closed_reason"]
                .as_str()
                .is_some_and(|r| r.contains(reason)),
            "{what}: {recorded}"
        );
    }
}

/// A rack that never answers: the client gets 504 within the quick-call
/// bound, and the chain holds the request and its failed response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_rack_gets_a_504_with_its_proxy_response() {
    // Accepts connections and reads, never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hung = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let app = TestApp::build()
        .rack(&hung)
        .env("RACK_RESPONSE_TIMEOUT_SECONDS", "1")
        .spawn()
        .await;
    let admin = app.token(Role::Admin).await;
    let started = std::time::Instant::now();
    let response = app.proxy(&admin).get("/apps").await;
    assert_eq!(response.status(), 504);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let id = request_id(&response);
    let events = app.proxy_events_for(&id).await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].2["decision"], "allow");
    assert_eq!(events[1].1, "proxy.response");
    assert_eq!(events[1].2["status"], 504);
    assert_eq!(events[1].2["upstream_error"]["code"], "rack_timeout");
}

/// A websocket with no frame either way is closed after the idle bound, and recorded so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_websockets_are_closed() {
    let rack = Rack::start().await;
    let app = TestApp::build()
        .rack(&rack.url())
        .env("WEBSOCKET_IDLE_TIMEOUT_SECONDS", "1")
        .spawn()
        .await;
    let ops = app.token(Role::Ops).await;
    let pid = web_pid(&rack);
    let (tx, _rx) = tokio::sync::oneshot::channel();
    let (code, reason, lasted) = read_until_closed(
        &app,
        &ops,
        &format!("/apps/myapp/processes/{pid}/exec"),
        &[("Command", "sleep 20")],
        tx,
    )
    .await;
    assert_eq!(code, Some(1001), "{reason}");
    assert!(lasted < std::time::Duration::from_secs(5), "{lasted:?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let ended = app
            .proxy_events()
            .await
            .into_iter()
            .any(|(_, t, d)| t == "proxy.response" && d["closed_by"] == "idle_timeout");
        if ended {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no idle_timeout proxy.response"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A flood of anonymous CLI login starts from one client: it is refused past
/// its rate with no event per request (one aggregate per minute), and
/// authenticated proxy calls during the flood all pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_flood_neither_fills_the_chain_nor_starves_authenticated_calls() {
    use futures::StreamExt;
    let rack = Rack::start().await;
    let app = TestApp::build()
        .rack(&rack.url())
        .sign_in()
        .env("AUTH_RATE_LIMIT_PER_SECOND", "10")
        .env("AUTH_RATE_LIMIT_BURST", "20")
        .spawn()
        .await;
    let admin = app.token(Role::Admin).await;
    let started = std::time::Instant::now();
    let flood = futures::stream::iter(0..600)
        .map(|_| {
            let app = &app;
            async move {
                app.client
                    .post(app.url("/api/v1/auth/cli/start"))
                    .json(&json!({"cli_secret_sha256": "ab".repeat(32), "device_name": "flood"}))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<u16>>();
    let authenticated = async {
        let mut statuses = Vec::new();
        for _ in 0..40 {
            statuses.push(app.proxy(&admin).get("/apps").await.status().as_u16());
        }
        statuses
    };
    let (flood, authenticated) = futures::join!(flood, authenticated);
    let elapsed = started.elapsed().as_secs_f64();
    assert!(authenticated.iter().all(|s| *s == 200), "{authenticated:?}");
    let refused = flood.iter().filter(|s| **s == 429).count();
    assert!(refused > 0, "the flood was not limited: {flood:?}");
    // Burst 20, then 10 a second (the defaults, set here as the test gateway raises them):
    // that many starts at most were recorded.
    let started_events = app.events_of("auth.login.started").await.len() as f64;
    assert!(
        started_events <= 20.0 + 10.0 * (elapsed + 1.0),
        "{started_events} login starts recorded in {elapsed:.1}s"
    );
    let aggregates = app.events_of("rate_limit.exceeded").await;
    assert!(
        aggregates.len() <= 1 + (elapsed / 60.0) as usize,
        "{aggregates:?}"
    );
}

/// A client body that stops sending: a form the proxy reads gets 408, a
/// streamed upload is cut off; both within `CLIENT_BODY_TIMEOUT_SECONDS`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_body_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rack = Rack::start().await;
    let app = TestApp::build()
        .rack(&rack.url())
        .env("CLIENT_BODY_TIMEOUT_SECONDS", "1")
        .spawn()
        .await;
    let deployer = app.token(Role::Deployer).await;
    let authorization = crate::helpers::basic(&deployer);
    let host = app.address.trim_start_matches("http://").to_owned();
    for (path, content_type, status) in [
        (
            "/apps/myapp/releases",
            "application/x-www-form-urlencoded",
            408,
        ),
        (
            "/apps/myapp/objects/tmp/stalled.tgz",
            "application/octet-stream",
            400,
        ),
    ] {
        let mut stream = tokio::net::TcpStream::connect(&host).await.unwrap();
        let head = format!(
            "POST {}{path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {authorization}\r\n\
             Content-Type: {content_type}\r\nContent-Length: 1000\r\nConnection: close\r\n\r\nenv=A%3D1",
            crate::helpers::PREFIX
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let started = std::time::Instant::now();
        let mut answer = Vec::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_end(&mut answer),
        )
        .await
        .expect("answered in time")
        .unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{path}: {answer}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(6),
            "{path}"
        );
    }
    // The cut-off upload was recorded as ended by the client's body.
    let responses: Vec<_> = app
        .proxy_events()
        .await
        .into_iter()
        .filter(|(_, t, d)| t == "proxy.response" && d["status"] == 400)
        .collect();
    assert_eq!(responses.len(), 1, "{responses:?}");
}
