//! The fault suite (issue 14), kept lean so `./scripts/test` stays bounded:
//! the gateway killed with SIGKILL under 64-connection load, three times.
//! Afterwards the chain verifies, every request the mock rack received has
//! its committed `proxy.request`, and every request a client saw answered
//! has both its `proxy.request` and its `proxy.response` (acknowledged
//! appends are never lost).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::helpers::{basic, s3, Rack, ServerProcess, APP_SECRET_KEY, PREFIX, RACK_TOKEN};

const CONNECTIONS: usize = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_three_times_loses_nothing_acknowledged() {
    let rack = Rack::start().await;
    let rack_url = rack.url();
    let settings = [
        ("RACK_HOST", rack_url.as_str()),
        ("RACK_TOKEN", RACK_TOKEN),
        ("APP_SECRET_KEY", APP_SECRET_KEY),
        ("PROXY_AUTH_FAILURE_LIMIT", "1000"),
        ("REQUEST_LOG", "off"),
        ("LOG_LEVEL", "warn"),
    ];
    // The first process owns the test database: it is kept (killed) to the end.
    let mut first = ServerProcess::start(&settings).await;
    let (database_url, key_file) = (first.database_url.clone(), first.key_file.clone());
    let authorization = basic(&first.token("load", "admin"));
    let mut later: Option<ServerProcess> = None;
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();

    for round in 0..3 {
        let server = later.as_mut().unwrap_or(&mut first);
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(CONNECTIONS)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let url = format!("{}{PREFIX}/apps", server.address);
        let load: Vec<_> = (0..CONNECTIONS)
            .map(|_| {
                let (client, url, authorization, acknowledged) = (
                    client.clone(),
                    url.clone(),
                    authorization.clone(),
                    acknowledged.clone(),
                );
                tokio::spawn(async move {
                    loop {
                        let Ok(response) = client
                            .get(&url)
                            .header("authorization", &authorization)
                            .send()
                            .await
                        else {
                            return; // the gateway is gone
                        };
                        let id = response
                            .headers()
                            .get("x-request-id")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                        // Acknowledged: the whole answer arrived.
                        if response.status() == 200 && response.bytes().await.is_ok() {
                            if let Some(id) = id {
                                acknowledged.lock().unwrap().push(id);
                            }
                        }
                    }
                })
            })
            .collect();
        let before = acknowledged.lock().unwrap().len();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        server.kill();
        for task in load {
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .expect("the load stops once the gateway is gone")
                .unwrap();
        }
        let during = acknowledged.lock().unwrap().len() - before;
        assert!(
            during > 0,
            "round {round}: no request was answered before the kill"
        );
        let server = later.insert(ServerProcess::resume(&database_url, &key_file, &settings));
        let ready = async {
            loop {
                if let Ok(r) = reqwest::get(format!("{}/ready", server.address)).await {
                    if r.status() == 200 {
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), ready)
            .await
            .unwrap_or_else(|_| panic!("round {round}: no restart: {}", server.stderr()));
    }
    if let Some(server) = later.as_mut() {
        server.kill();
    }

    let pool = sqlx::PgPool::connect(&database_url).await.unwrap();
    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT type, body->'data'->>'request_id', body->'data'->>'decision' FROM events \
         WHERE type IN ('proxy.request', 'proxy.response')",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let allowed: HashSet<&str> = rows
        .iter()
        .filter(|(t, _, d)| t == "proxy.request" && d.as_deref() == Some("allow"))
        .map(|(_, id, _)| id.as_str())
        .collect();
    let answered: HashSet<&str> = rows
        .iter()
        .filter(|(t, _, _)| t == "proxy.response")
        .map(|(_, id, _)| id.as_str())
        .collect();
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 3 * 10,
        "too little load: {}",
        acknowledged.len()
    );
    for id in &acknowledged {
        assert!(
            allowed.contains(id.as_str()),
            "answered {id} has no proxy.request"
        );
        assert!(
            answered.contains(id.as_str()),
            "answered {id} has no proxy.response"
        );
    }
    let reached: Vec<String> = rack
        .recorded()
        .into_iter()
        .filter_map(|r| r.request_id)
        .collect();
    assert!(!reached.is_empty());
    for id in &reached {
        assert!(
            allowed.contains(id.as_str()),
            "the rack received {id}, which the chain does not hold"
        );
    }
    let (code, report) = s3::verify_json(&s3::endpoint(), &["--database-url", &database_url]);
    assert_eq!(code, 0, "verify-chain after three kills: {report}");
}
