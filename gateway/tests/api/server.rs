//! The server skeleton: start-up event, health/ready/metrics, checkpoints,
//! fail-closed readiness, and an orderly stop on SIGTERM.

use std::time::Duration;

use events::checkpoint::open_checkpoint;
use events::merkle::{leaf_hash, CompactRange};
use events::note::Verifier;
use events::{Actor, Draft};

use crate::helpers::{ServerProcess, TestApp};

async fn wait_for<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    testkit::wait_for(what, Duration::from_secs(15), check).await
}

#[tokio::test]
async fn serves_health_ready_metrics_and_records_its_start_without_secrets() {
    let mut app = TestApp::build()
        .env("RACK_TOKEN", "super-secret-rack-token")
        .spawn()
        .await;
    let health: serde_json::Value = app
        .client
        .get(app.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    let ready = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let metrics = app.metrics().await;
    for name in [
        "rgw_audit_appends_total",
        "rgw_audit_batch_events_bucket",
        "rgw_audit_append_latency_seconds_bucket",
        "rgw_audit_chain_head",
        "rgw_checkpoint_age_seconds",
    ] {
        assert!(metrics.contains(name), "metrics lack {name}:\n{metrics}");
    }
    let started = app.events_of("gateway.started").await;
    assert_eq!(started.len(), 1);
    let data = &started[0]["data"];
    assert_eq!(data["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(data["settings_fingerprint"].as_str().unwrap().len(), 64);
    assert_eq!(data["instance"], started[0]["source"]["instance"]);
    let all = app.canonical_events().await;
    assert!(all
        .iter()
        .all(|e| !e.contains("super-secret-rack-token") && !e.contains("test-app-secret-key")));
    app.stop().await;
}

#[tokio::test]
async fn checkpoints_are_signed_every_n_events_and_verify() {
    let mut app = TestApp::build()
        .env("CHECKPOINT_EVERY_EVENTS", "10")
        .env("CHECKPOINT_EVERY_SECONDS", "3600")
        .spawn()
        .await;
    app.append_test_events("t", 35, |n| serde_json::json!({ "n": n }))
        .await;
    wait_for("three checkpoints", || async {
        app.checkpoint_count().await >= 3
    })
    .await;
    let verifier = Verifier::from_vkey(&app.vkey).unwrap();
    // One snapshot: checkpoints keep coming (their own events count towards the next one), and
    // a checkpoint's row and its `checkpoint.created` event commit together.
    let mut snapshot = app.pool.begin().await.unwrap();
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut *snapshot)
        .await
        .unwrap();
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT size, note FROM checkpoints ORDER BY size")
            .fetch_all(&mut *snapshot)
            .await
            .unwrap();
    let events: Vec<(Vec<u8>, String)> =
        sqlx::query_as("SELECT canonical, hash FROM events ORDER BY seq")
            .fetch_all(&mut *snapshot)
            .await
            .unwrap();
    let recorded: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT body FROM events WHERE type = 'checkpoint.created' ORDER BY seq",
    )
    .fetch_all(&mut *snapshot)
    .await
    .unwrap();
    snapshot.commit().await.unwrap();
    let chain = app.state.chain().to_owned();
    for (size, note) in &rows {
        let opened =
            open_checkpoint(note, std::slice::from_ref(&verifier)).expect("signature verifies");
        assert_eq!(opened.checkpoint.size as i64, *size);
        assert_eq!(opened.checkpoint.origin, format!("rack-gateway/{chain}"));
        let mut tree = CompactRange::new();
        for (canonical, _) in &events[..*size as usize] {
            tree.push(leaf_hash(canonical));
        }
        assert_eq!(opened.checkpoint.root, tree.root(), "root at {size}");
        assert_eq!(
            opened.checkpoint.head,
            events[*size as usize - 1].1,
            "head at {size}"
        );
    }
    // Each checkpoint is itself an event.
    assert_eq!(recorded.len(), rows.len());
    assert_eq!(recorded[0]["data"]["note"], rows[0].1);
    app.stop().await;
}

#[tokio::test]
async fn checkpoints_follow_time_while_events_arrive_and_one_replica_signs() {
    let mut first = TestApp::build()
        .env("CHECKPOINT_EVERY_EVENTS", "100000")
        .env("CHECKPOINT_EVERY_SECONDS", "1")
        .spawn()
        .await;
    // A second replica on the same database and key.
    let mut second = first.replica().await;
    for n in 0..6 {
        let target = if n % 2 == 0 { &first } else { &second };
        target
            .append_test_events("t", 1, |_| serde_json::json!({ "n": n }))
            .await;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    wait_for("time-based checkpoints", || async {
        first.checkpoint_count().await >= 2
    })
    .await;
    use std::sync::atomic::Ordering;
    let leaders = [&first.state, &second.state]
        .iter()
        .filter(|s| s.checkpoints.leader.load(Ordering::Relaxed))
        .count();
    assert_eq!(leaders, 1, "exactly one replica signs");
    // Quiet chain: no new checkpoints once events stop (checkpoints do not beget checkpoints).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let settled = first.checkpoint_count().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let later = first.checkpoint_count().await;
    assert_eq!(settled, later);
    second.stop().await;
    first.stop().await;
}

#[tokio::test]
async fn ready_is_503_and_appends_fail_fast_while_postgres_is_down() {
    let pg = testkit::PrivatePostgres::start();
    let mut app = TestApp::build()
        .database(pg.url())
        .env("AUDIT_APPEND_TIMEOUT_MS", "500")
        .spawn()
        .await;
    let client = app.client.clone();
    let ready = app.url("/ready");
    assert_eq!(client.get(&ready).send().await.unwrap().status(), 200);

    pg.stop();
    let started = std::time::Instant::now();
    let result = app
        .state
        .appender
        .append(Draft::new(
            "test.event",
            Actor::system("t"),
            serde_json::json!({}),
        ))
        .await;
    assert!(result.is_err(), "append must fail with Postgres down");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "failed after {:?}",
        started.elapsed()
    );
    let response = client.get(&ready).send().await.unwrap();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["problems"].to_string().contains("database"), "{body}");
    assert_eq!(
        client
            .get(app.url("/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    pg.start_again();
    let probe = client.clone();
    wait_for("ready again", || {
        let probe = probe.clone();
        let ready = ready.clone();
        async move {
            probe
                .get(&ready)
                .send()
                .await
                .map(|r| r.status() == 200)
                .unwrap_or(false)
        }
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn sigterm_stops_accepting_drains_and_exits_zero() {
    let mut server = ServerProcess::start(&[]).await;
    let health = format!("{}/health", server.address);
    let status = server.terminate(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "server exits after SIGTERM");
    assert!(reqwest::get(&health).await.is_err(), "no longer accepting");
    let pool = server.pool().await;
    let started: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE type = 'gateway.started'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(started, 1);
    let logs = server.stderr();
    let last = logs
        .lines()
        .rev()
        .find(|l| l.contains("stopped"))
        .expect("a stop log line");
    let line: serde_json::Value = serde_json::from_str(last).expect("logs are JSON lines");
    assert_eq!(line["level"], "INFO");
}
