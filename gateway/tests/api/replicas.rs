//! Two gateway processes on one database under concurrent load through
//! both (issue 14's fault suite): one gapless chain, one checkpoint signer,
//! every acknowledged request recorded with its answer, every request the
//! rack saw recorded before it, and `verify-chain` passes.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::helpers::{basic, s3, Rack, ServerProcess, APP_SECRET_KEY, PREFIX, RACK_TOKEN};

const CONNECTIONS_EACH: usize = 24;

async fn wait_ready(server: &ServerProcess) {
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
        .unwrap_or_else(|_| panic!("the replica did not become ready: {}", server.stderr()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_under_load_keep_one_gapless_chain() {
    let rack = Rack::start().await;
    let rack_url = rack.url();
    let settings = [
        ("RACK_HOST", rack_url.as_str()),
        ("RACK_TOKEN", RACK_TOKEN),
        ("APP_SECRET_KEY", APP_SECRET_KEY),
        ("PROXY_AUTH_FAILURE_LIMIT", "1000"),
        ("REQUEST_LOG", "off"),
        ("LOG_LEVEL", "warn"),
        // Checkpoints while the load runs, so both replicas compete to sign.
        ("CHECKPOINT_EVERY_EVENTS", "50"),
        ("CHECKPOINT_EVERY_SECONDS", "1"),
    ];
    let first = ServerProcess::start(&settings).await;
    let second = ServerProcess::resume(&first.database_url, &first.key_file, &settings);
    wait_ready(&second).await;
    let authorization = basic(&first.token("load", "admin"));

    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(2 * CONNECTIONS_EACH)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let load: Vec<_> = [&first.address, &second.address]
        .into_iter()
        .flat_map(|address| {
            std::iter::repeat_n(format!("{address}{PREFIX}/apps"), CONNECTIONS_EACH)
        })
        .map(|url| {
            let (client, authorization, acknowledged) =
                (client.clone(), authorization.clone(), acknowledged.clone());
            tokio::spawn(async move {
                let mut failures = Vec::new();
                while tokio::time::Instant::now() < deadline {
                    let response = client
                        .get(&url)
                        .header("authorization", &authorization)
                        .send()
                        .await
                        .expect("both replicas stay up");
                    let status = response.status().as_u16();
                    let id = response
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    if status == 200 && response.bytes().await.is_ok() {
                        acknowledged.lock().unwrap().extend(id);
                    } else {
                        failures.push(status);
                    }
                }
                failures
            })
        })
        .collect();
    for task in load {
        let failures = task.await.unwrap();
        assert!(failures.is_empty(), "refused under load: {failures:?}");
    }

    let pool = first.pool().await;
    let (count, max, min): (i64, i64, i64) =
        sqlx::query_as("SELECT count(*), max(seq), min(seq) FROM events")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((min, max), (1, count), "one gapless chain");
    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT type, body->'data'->>'request_id', body->'source'->>'instance' FROM events \
         WHERE type IN ('proxy.request', 'proxy.response')",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let requested: HashSet<&str> = rows
        .iter()
        .filter(|(t, _, _)| t == "proxy.request")
        .map(|(_, id, _)| id.as_str())
        .collect();
    let answered: HashSet<&str> = rows
        .iter()
        .filter(|(t, _, _)| t == "proxy.response")
        .map(|(_, id, _)| id.as_str())
        .collect();
    let instances: HashSet<&str> = rows.iter().filter_map(|(_, _, i)| i.as_deref()).collect();
    assert_eq!(instances.len(), 2, "both replicas served: {instances:?}");
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 2 * 10,
        "too little load: {}",
        acknowledged.len()
    );
    for id in &acknowledged {
        assert!(
            requested.contains(id.as_str()),
            "answered {id} has no proxy.request"
        );
        assert!(
            answered.contains(id.as_str()),
            "answered {id} has no proxy.response"
        );
    }
    for seen in rack.recorded() {
        let id = seen.request_id.expect("the rack saw a request id");
        assert!(
            requested.contains(id.as_str()),
            "the rack received {id} unrecorded"
        );
    }
    // One signer: every checkpoint was made by the same replica.
    let signers: Vec<Option<String>> = sqlx::query_scalar(
        "SELECT DISTINCT body->'source'->>'instance' FROM events WHERE type = 'checkpoint.created'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(signers.len(), 1, "checkpoints signed by {signers:?}");

    let (code, report) = s3::verify_json(&s3::endpoint(), &["--database-url", &first.database_url]);
    assert_eq!(code, 0, "verify-chain over two replicas' chain: {report}");
}
