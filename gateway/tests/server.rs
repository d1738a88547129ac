//! The server skeleton: start-up event, health/ready/metrics, checkpoints,
//! fail-closed readiness, and an orderly stop on SIGTERM.

mod common;

use std::time::Duration;

use common::spawn_app_with;
use events::checkpoint::open_checkpoint;
use events::merkle::{leaf_hash, CompactRange};
use events::note::Verifier;
use events::{Actor, Draft};

async fn wait_for<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    testkit::wait_for(what, Duration::from_secs(15), check).await
}

#[tokio::test]
async fn serves_health_ready_metrics_and_records_its_start_without_secrets() {
    let mut app = spawn_app_with(|env| env.set("RACK_TOKEN", "super-secret-rack-token")).await;
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
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
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
    let all: Vec<String> = sqlx::query_scalar("SELECT convert_from(canonical, 'UTF8') FROM events")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert!(all
        .iter()
        .all(|e| !e.contains("super-secret-rack-token") && !e.contains("test-app-secret-key")));
    app.stop().await;
}

#[tokio::test]
async fn checkpoints_are_signed_every_n_events_and_verify() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let mut app = spawn_app_with(|env| {
        env.set("CHECKPOINT_EVERY_EVENTS", "10");
        env.set("CHECKPOINT_EVERY_SECONDS", "3600");
    })
    .await;
    for n in 0..35 {
        app.state
            .appender
            .append(Draft::new(
                "test.event",
                Actor::system("t"),
                serde_json::json!({ "n": n }),
            ))
            .await
            .unwrap();
    }
    let pool = app.pool.clone();
    wait_for("three checkpoints", || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM checkpoints")
                .fetch_one(&pool)
                .await
                .unwrap()
                >= 3
        }
    })
    .await;
    let verifier = Verifier::from_vkey(&app.vkey).unwrap();
    let rows: Vec<(i64, String)> =
        sqlx::query_as("SELECT size, note FROM checkpoints ORDER BY size")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let events: Vec<(Vec<u8>, String)> =
        sqlx::query_as("SELECT canonical, hash FROM events ORDER BY seq")
            .fetch_all(&app.pool)
            .await
            .unwrap();
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
    let recorded = app.events_of("checkpoint.created").await;
    assert_eq!(recorded.len(), rows.len());
    assert_eq!(recorded[0]["data"]["note"], rows[0].1);
    app.stop().await;
}

#[tokio::test]
async fn checkpoints_follow_time_while_events_arrive_and_one_replica_signs() {
    let mut first = spawn_app_with(|env| {
        env.set("CHECKPOINT_EVERY_EVENTS", "100000");
        env.set("CHECKPOINT_EVERY_SECONDS", "1");
    })
    .await;
    // A second replica on the same database and key.
    let settings = gateway::settings::Settings::from_env(&first.env).unwrap();
    let second = gateway::startup::Application::build(settings)
        .await
        .unwrap();
    let second_state = second.state().clone();
    let (stop2, stopped2) = tokio::sync::oneshot::channel::<()>();
    let second_task = tokio::spawn(second.run_until_stopped(async move {
        let _ = stopped2.await;
    }));
    for n in 0..6 {
        let target = if n % 2 == 0 {
            &first.state
        } else {
            &second_state
        };
        target
            .appender
            .append(Draft::new(
                "test.event",
                Actor::system("t"),
                serde_json::json!({ "n": n }),
            ))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let pool = first.pool.clone();
    wait_for("time-based checkpoints", || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM checkpoints")
                .fetch_one(&pool)
                .await
                .unwrap()
                >= 2
        }
    })
    .await;
    use std::sync::atomic::Ordering;
    let leaders = [&first.state, &second_state]
        .iter()
        .filter(|s| s.checkpoints.leader.load(Ordering::Relaxed))
        .count();
    assert_eq!(leaders, 1, "exactly one replica signs");
    // Quiet chain: no new checkpoints once events stop (checkpoints do not beget checkpoints).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let settled: i64 = sqlx::query_scalar("SELECT count(*) FROM checkpoints")
        .fetch_one(&first.pool)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let later: i64 = sqlx::query_scalar("SELECT count(*) FROM checkpoints")
        .fetch_one(&first.pool)
        .await
        .unwrap();
    assert_eq!(settled, later);
    let _ = stop2.send(());
    second_task.await.unwrap().unwrap();
    first.stop().await;
}

#[tokio::test]
async fn ready_is_503_and_appends_fail_fast_while_postgres_is_down() {
    let pg = testkit::PrivatePostgres::start();
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = common::new_key(dir.path());
    let mut env = common::test_env(&pg.url(), &key);
    env.set("AUDIT_APPEND_TIMEOUT_MS", "500");
    let app =
        gateway::startup::Application::build(gateway::settings::Settings::from_env(&env).unwrap())
            .await
            .unwrap();
    let port = app.port();
    let state = app.state().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let ready = format!("http://127.0.0.1:{port}/ready");
    assert_eq!(client.get(&ready).send().await.unwrap().status(), 200);

    pg.stop();
    let started = std::time::Instant::now();
    let result = state
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
            .get(format!("http://127.0.0.1:{port}/health"))
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
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn sigterm_stops_accepting_drains_and_exits_zero() {
    let db = testkit::fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = common::new_key(dir.path());
    let port = testkit::free_port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_rack-gateway-server"))
        .arg("serve")
        .env("DATABASE_URL", &db.url)
        .env("CHECKPOINT_SIGNING_KEY_FILE", &key)
        .env("PORT", port.to_string())
        .env("BIND_ADDRESS", "127.0.0.1")
        .env("RGW_ENV_FILE", "/nonexistent/.env")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = testkit::ChildGuard(child);
    let health = format!("http://127.0.0.1:{port}/health");
    wait_for("the server", || {
        let health = health.clone();
        async move {
            reqwest::get(&health)
                .await
                .map(|r| r.status() == 200)
                .unwrap_or(false)
        }
    })
    .await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let mut status = None;
    for _ in 0..100 {
        if let Some(s) = child.0.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = status.expect("server exits after SIGTERM");
    assert_eq!(status.code(), Some(0));
    assert!(reqwest::get(&health).await.is_err(), "no longer accepting");
    let pool = db.pool().await;
    let started: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE type = 'gateway.started'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(started, 1);
    let mut logs = String::new();
    use std::io::Read;
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    let last = logs
        .lines()
        .rev()
        .find(|l| l.contains("stopped"))
        .expect("a stop log line");
    let line: serde_json::Value = serde_json::from_str(last).expect("logs are JSON lines");
    assert_eq!(line["level"], "INFO");
}
