//! The proxy's audit guarantees: `proxy.request` is committed before anything
//! reaches the rack, `proxy.response` after, under concurrent load; nothing
//! says allow for a request the rack did not get unless its response records
//! the failure; when the chain cannot commit, nothing is forwarded (503).

use std::collections::HashMap;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tools::mock_rack::SEED_APP;

use crate::helpers::{basic, request_id, Rack, Role, TestApp, PREFIX, RACK_TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_the_rack_saw_was_recorded_before_and_after_under_load() {
    let rack = Rack::start().await;
    let app = TestApp::build().rack(&rack.url()).spawn().await;
    let viewer = app.token(Role::Viewer).await;
    let ops = app.token(Role::Ops).await;
    let deployer = app.token(Role::Deployer).await;

    const REQUESTS: usize = 300;
    let client = app.client.clone();
    let results: Vec<(u16, String)> = futures::stream::iter(0..REQUESTS)
        .map(|i| {
            let client = client.clone();
            let (method, path, secret, body): (&str, String, &String, Option<String>) = match i % 10
            {
                0 | 1 => ("GET", "/apps".into(), &viewer, None),
                2 => ("GET", "/apps/myapp/processes".into(), &ops, None),
                3 => ("GET", "/system".into(), &viewer, None),
                4 => (
                    "POST",
                    format!("/apps/myapp/objects/tmp/load-{i}.tgz"),
                    &deployer,
                    Some(format!("object {i}")),
                ),
                5 => (
                    "POST",
                    "/apps/myapp/releases".into(),
                    &deployer,
                    Some(format!("env=A%3D{i}")),
                ),
                6 => ("GET", "/apps/myapp/releases".into(), &viewer, None), // denied
                7 => ("GET", "/apps/myapp/nope".into(), &ops, None),        // unknown
                8 => ("GET", "/machines".into(), &ops, None),               // probe
                _ => (
                    "GET",
                    "/apps/myapp/objects/tmp/missing".into(),
                    &deployer,
                    None,
                ), // relayed as a stream
            };
            let url = app.url(&format!("{PREFIX}{path}"));
            let authorization = basic(secret);
            async move {
                let mut request = client
                    .request(method.parse().unwrap(), url)
                    .header("Authorization", authorization);
                if let Some(body) = body {
                    let content_type = if path.contains("releases") {
                        "application/x-www-form-urlencoded"
                    } else {
                        "application/octet-stream"
                    };
                    request = request.header("Content-Type", content_type).body(body);
                }
                let response = request.send().await.expect("send");
                let status = response.status().as_u16();
                let id = request_id(&response);
                let _ = response.bytes().await;
                (status, id)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    // A few websockets alongside.
    for _ in 0..4 {
        let text = app
            .proxy(&ops)
            .websocket_text(
                "/apps/myapp/logs",
                &[("follow", "false"), ("prefix", "true")],
            )
            .await;
        assert!(text.contains("service/web/"), "{text}");
    }
    let statuses: HashMap<u16, usize> = results.iter().fold(HashMap::new(), |mut m, (s, _)| {
        *m.entry(*s).or_default() += 1;
        m
    });
    assert_eq!(statuses.get(&403), Some(&30), "{statuses:?}");
    assert_eq!(statuses.get(&404), Some(&60), "{statuses:?}"); // unknown routes, probes
                                                               // The mock has no object download; its 405 is relayed as a stream like any download.
    assert_eq!(statuses.get(&405), Some(&30), "{statuses:?}");
    assert_eq!(statuses.get(&200), Some(&180), "{statuses:?}");

    testkit::wait_for(
        "every stream recorded its end",
        Duration::from_secs(15),
        || async {
            let events = app.proxy_events().await;
            let allowed = events
                .iter()
                .filter(|(_, t, d)| t == "proxy.request" && d["decision"] == "allow")
                .count();
            let responses = events
                .iter()
                .filter(|(_, t, _)| t == "proxy.response")
                .count();
            allowed == responses
        },
    )
    .await;

    let events = app.proxy_events().await;
    let mut requests: HashMap<String, (i64, Value)> = HashMap::new();
    let mut responses: HashMap<String, (i64, Value)> = HashMap::new();
    for (seq, event_type, data) in &events {
        let id = data["request_id"].as_str().unwrap_or_default().to_owned();
        let map = match event_type.as_str() {
            "proxy.request" => &mut requests,
            "proxy.response" => &mut responses,
            _ => continue,
        };
        assert!(
            map.insert(id.clone(), (*seq, data.clone())).is_none(),
            "two {event_type} for {id}"
        );
    }
    let recorded = rack.recorded();
    assert!(recorded.len() >= 180 + 4, "{}", recorded.len());
    for seen in &recorded {
        let id = seen
            .request_id
            .clone()
            .unwrap_or_else(|| panic!("no request id: {seen:?}"));
        let (request_seq, request) = requests
            .get(&id)
            .unwrap_or_else(|| panic!("the rack saw {seen:?} but the chain has no proxy.request"));
        assert_eq!(request["decision"], "allow", "{seen:?}");
        let (response_seq, _) = responses
            .get(&id)
            .unwrap_or_else(|| panic!("no proxy.response for {seen:?}"));
        assert!(request_seq < response_seq, "{seen:?}");
    }
    let seen_ids: std::collections::HashSet<String> = recorded
        .iter()
        .filter_map(|r| r.request_id.clone())
        .collect();
    for (id, (_, request)) in &requests {
        match request["decision"].as_str() {
            Some("allow") => {
                let (_, response) = responses.get(id).expect("an allow has a response");
                assert!(
                    seen_ids.contains(id) || response.get("upstream_error").is_some(),
                    "allowed but never sent, and no failure recorded: {request}"
                );
            }
            Some("deny") => {
                assert!(
                    !seen_ids.contains(id),
                    "a denied request reached the rack: {request}"
                );
                assert!(
                    !responses.contains_key(id),
                    "a denial has no response event"
                );
            }
            other => panic!("decision {other:?}"),
        }
    }
    // Every answer the client got is in the chain, with its id.
    for (status, id) in &results {
        if *status == 404 && !requests.contains_key(id) {
            // The CLI's probe: answered by the gateway, no event by design.
            continue;
        }
        assert!(requests.contains_key(id), "{status} {id} unrecorded");
    }
    // Integers only: latency and sizes.
    for (_, response) in responses.values() {
        assert!(response["latency_us"].is_u64(), "{response}");
        assert!(response["bytes_out"].is_u64(), "{response}");
    }
    let streamed = responses
        .values()
        .filter(|(_, r)| r["kind"] == "stream")
        .count();
    assert_eq!(streamed, 30, "object fetches are relayed as streams");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_changes_are_recorded_as_keys_never_values() {
    let rack = Rack::start().await;
    let app = TestApp::build().rack(&rack.url()).spawn().await;
    let deployer = app.token(Role::Deployer).await;
    // The seed app's env is `A=1`.
    let response = app
        .proxy(&deployer)
        .post_form(
            "/apps/myapp/releases",
            &[(
                "env",
                "A=changed-value-1234\nDB_PASSWORD=hunter2-value-5678",
            )],
        )
        .await;
    assert_eq!(response.status(), 200);
    let id = request_id(&response);
    let events = app.proxy_events_for(&id).await;
    let request = &events[0].2;
    assert_eq!(request["permission"], "convox:env:set");
    assert_eq!(request["env_change"], json!({"keys": ["A", "DB_PASSWORD"]}));
    // The diff is read after proxy.request committed, so it is on the response.
    assert_eq!(events[1].1, "proxy.response");
    assert_eq!(
        events[1].2["env_change"],
        json!({"added": ["DB_PASSWORD"], "removed": [], "changed": ["A"]})
    );
    assert_eq!(
        request["params"]["form"]["env"],
        json!({"keys": ["A", "DB_PASSWORD"]})
    );
    // The current env was read from the rack first, under the same request id.
    let reads: Vec<_> = rack
        .recorded()
        .into_iter()
        .filter(|r| r.request_id.as_deref() == Some(id.as_str()))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        reads,
        [
            "GET /apps/myapp/releases".to_owned(),
            "GET /apps/myapp/releases/RSEEDMYAPP1".to_owned(),
            "POST /apps/myapp/releases".to_owned(),
        ]
    );
    for text in app.canonical_events().await {
        for value in [
            "changed-value-1234",
            "hunter2-value-5678",
            RACK_TOKEN,
            &deployer,
        ] {
            assert!(!text.contains(value), "{value} in the chain");
        }
    }
    assert!(rack
        .app(SEED_APP)
        .unwrap()
        .latest_release()
        .unwrap()
        .env
        .contains("hunter2-value-5678"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_rack_is_recorded_as_an_upstream_failure() {
    // A port nothing listens on.
    let dead = format!("http://127.0.0.1:{}", testkit::free_port());
    let app = TestApp::build()
        .rack(&dead)
        .env("RACK_CONNECT_TIMEOUT_MS", "2000")
        .spawn()
        .await;
    let admin = app.token(Role::Admin).await;
    let response = app.proxy(&admin).get("/apps").await;
    assert_eq!(response.status(), 502);
    let id = request_id(&response);
    let body = response.text().await.unwrap();
    assert_eq!(
        body,
        format!("the rack could not be reached (request id {id})\n")
    );
    let events = app.proxy_events_for(&id).await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].2["decision"], "allow");
    assert_eq!(events[1].1, "proxy.response");
    assert_eq!(events[1].2["status"], 502);
    assert_eq!(events[1].2["upstream_error"]["code"], "rack_unreachable");
    assert!(
        events[1].2["upstream_error"]["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("connect")),
        "{events:?}"
    );

    // An env change whose current env cannot be read is not sent.
    let response = app
        .proxy(&admin)
        .post_form("/apps/myapp/releases", &[("env", "X=1")])
        .await;
    assert_eq!(response.status(), 502);
    let id = request_id(&response);
    let events = app.proxy_events_for(&id).await;
    assert_eq!(events[0].2["env_change"]["keys"], json!(["X"]));
    assert_eq!(events[1].2["upstream_error"]["code"], "env_unreadable");
    assert_eq!(events[1].2["env_change"]["keys"], json!(["X"]));
    assert!(events[1].2["env_change"]["error"].is_string(), "{events:?}");

    // Websockets too.
    let request = app.proxy(&admin).websocket_request("/apps/myapp/logs", &[]);
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 502)
        }
        other => panic!("expected a 502 handshake failure, got {other:?}"),
    }
    let last = app.proxy_events().await.pop().unwrap();
    assert_eq!(last.1, "proxy.response");
    assert_eq!(last.2["upstream_error"]["code"], "rack_unreachable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_chain_cannot_commit_nothing_is_forwarded() {
    let rack = Rack::start().await;
    let app = TestApp::build()
        .rack(&rack.url())
        .env("AUDIT_APPEND_TIMEOUT_MS", "500")
        .spawn()
        .await;
    let admin = app.token(Role::Admin).await;
    let get = || {
        app.proxy(&admin)
            .request(reqwest::Method::GET, "/apps")
            .send()
    };
    assert_eq!(get().await.unwrap().status(), 200);
    let before = rack.recorded().len();

    // Hold the events table: reads (credentials) still work, appends cannot commit.
    let mut lock = app.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE events IN EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let response = get().await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    let body = response.text().await.unwrap();
    assert!(
        body.starts_with("the gateway cannot record this request right now"),
        "{body}"
    );
    // A denial cannot be recorded either: 503 as well.
    let response = app.proxy(&admin).delete("/apps/myapp").await;
    assert_eq!(response.status(), 503);
    let text = app.proxy(&admin).websocket_status("/apps/myapp/logs").await;
    assert_eq!(text, 503);
    lock.rollback().await.unwrap();

    assert_eq!(rack.recorded().len(), before, "nothing reached the rack");
    testkit::wait_for("the appender recovers", Duration::from_secs(10), || async {
        get().await.map(|r| r.status() == 200).unwrap_or(false)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_postgres_stopped_calls_get_503_and_the_rack_gets_nothing() {
    let postgres = testkit::PrivatePostgres::start();
    let rack = Rack::start().await;
    let mut app = TestApp::build()
        .rack(&rack.url())
        .database(postgres.url())
        .env("AUDIT_APPEND_TIMEOUT_MS", "1000")
        .spawn()
        .await;
    let pool = app.state.pool.clone();
    let admin = app
        .create_token("admin", Role::Admin, None, None)
        .await
        .secret;
    let get = |path: &'static str| app.proxy(&admin).request(reqwest::Method::GET, path).send();
    assert_eq!(get("/apps").await.unwrap().status(), 200);
    let before = rack.recorded().len();

    postgres.stop();
    for path in ["/apps", "/system", "/apps/myapp/processes"] {
        let response = get(path).await.unwrap();
        assert_eq!(response.status(), 503, "{path}");
        let body = response.text().await.unwrap();
        assert!(
            !body.contains("127.0.0.1") && !body.contains("postgres"),
            "{body}"
        );
    }
    assert_eq!(
        app.proxy(&admin).websocket_status("/apps/myapp/logs").await,
        503
    );
    assert_eq!(rack.recorded().len(), before, "nothing reached the rack");

    postgres.start_again();
    testkit::wait_for("service resumes", Duration::from_secs(30), || async {
        get("/apps")
            .await
            .map(|r| r.status() == 200)
            .unwrap_or(false)
    })
    .await;
    // Every request the rack saw is in the chain.
    let recorded: Vec<String> = sqlx::query_scalar(
        "SELECT body->'data'->>'request_id' FROM events WHERE type = 'proxy.request'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for seen in rack.recorded() {
        assert!(
            recorded.contains(&seen.request_id.clone().unwrap()),
            "{seen:?}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_closes_open_websockets_after_the_grace_and_records_their_end() {
    let rack = Rack::start().await;
    let mut app = TestApp::build().rack(&rack.url()).spawn().await;
    let ops = app.token(Role::Ops).await;
    let pid = rack.app(SEED_APP).unwrap().processes[0].id.clone();
    // `cat` waits for stdin that never comes: the session stays open.
    let request = app.proxy(&ops).websocket_request(
        &format!("/apps/myapp/processes/{pid}/exec"),
        &[("command", "cat")],
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade");
    socket
        .send(tokio_tungstenite::tungstenite::Message::text(
            "still here\n",
        ))
        .await
        .unwrap();
    let echoed = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("echo in time");
    assert!(
        matches!(echoed, Some(Ok(tokio_tungstenite::tungstenite::Message::Text(ref t))) if t.as_str() == "still here\n")
    );
    let client = tokio::spawn(async move {
        let mut close = None;
        while let Some(Ok(message)) = socket.next().await {
            if let tokio_tungstenite::tungstenite::Message::Close(frame) = message {
                close = frame;
                break;
            }
        }
        close
    });

    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(30), app.stop())
        .await
        .expect("stopped in time");
    // The session had the drain grace (10 s) to end by itself, then was closed.
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "{:?}",
        started.elapsed()
    );
    let close = tokio::time::timeout(Duration::from_secs(5), client)
        .await
        .expect("client saw the close")
        .unwrap()
        .expect("a close frame");
    assert_eq!(u16::from(close.code), 1001);
    let (_, _, response) = app
        .proxy_events()
        .await
        .into_iter()
        .rfind(|(_, t, _)| t == "proxy.response")
        .expect("the session's proxy.response was committed before the stop finished");
    assert_eq!(response["kind"], "websocket");
    assert_eq!(response["closed_by"], "gateway_shutdown");
    assert_eq!(response["frames_in"], 1);
    assert_eq!(response["bytes_in"], 11);
    assert!(response["duration_us"].as_u64().unwrap() >= 9_000_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_before_the_answer_still_leaves_a_response_event() {
    // A "rack" that reads requests and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let app = TestApp::build()
        .rack(&format!("http://127.0.0.1:{port}"))
        .spawn()
        .await;
    let admin = basic(&app.token(Role::Admin).await);
    let mut client = tokio::net::TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap();
    use tokio::io::AsyncWriteExt;
    client
        .write_all(
            format!("GET {PREFIX}/apps HTTP/1.1\r\nHost: gw\r\nAuthorization: {admin}\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    testkit::wait_for(
        "the request is recorded",
        Duration::from_secs(5),
        || async {
            app.proxy_events()
                .await
                .iter()
                .any(|(_, t, _)| t == "proxy.request")
        },
    )
    .await;
    drop(client);
    testkit::wait_for("its end is recorded", Duration::from_secs(10), || async {
        app.proxy_events()
            .await
            .iter()
            .any(|(_, t, _)| t == "proxy.response")
    })
    .await;
    let events = app.proxy_events().await;
    let response = &events
        .iter()
        .find(|(_, t, _)| t == "proxy.response")
        .unwrap()
        .2;
    assert_eq!(response["status"], 499, "{response}");
    assert_eq!(response["closed_by"], "abandoned", "{response}");
    assert_eq!(response["request_id"], events[0].2["request_id"]);
    silent.abort();
}
