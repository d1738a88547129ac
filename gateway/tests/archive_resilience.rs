//! Shipping survives what production throws at it: an S3 outage (the peer
//! stopped while events keep arriving and requests keep succeeding; after it
//! returns the backlog ships with no gap and no duplicate), and a gateway
//! killed with SIGKILL mid-shipping (after a restart the archive is still
//! contiguous and complete, continued from what the bucket holds).

mod archive_support;
mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use archive_support as s3;
use common::spawn_app_with;
use events::{Actor, Draft};

async fn append(audit: &events::store::Appender, count: usize, tag: &str) {
    for n in 0..count {
        audit
            .append(Draft::new(
                "test.event",
                Actor::system("resilience"),
                serde_json::json!({ "tag": tag, "n": n }),
            ))
            .await
            .expect("appends keep succeeding");
    }
}

/// Every archived event exactly once, in order, equal to the database, up to its newest checkpoint.
async fn assert_complete(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    pool: &sqlx::PgPool,
    chain: &str,
) {
    let archived = s3::archived(client, bucket, chain).await;
    let lines = s3::archived_lines(client, bucket, &archived).await;
    let database = s3::database_lines(pool).await;
    assert_eq!(
        lines[..],
        database[..lines.len()],
        "no gap, no duplicate, nothing altered"
    );
    let (shipped, real) = s3::progress(pool).await;
    assert!(
        lines.len() as i64 >= real,
        "every event shipped: {} < {real}",
        lines.len()
    );
    assert_eq!(shipped as usize, lines.len());
    // Exactly one archive.shipped per segment key.
    let keys: Vec<String> = sqlx::query_scalar(
        "SELECT body->'data'->>'key' FROM events WHERE type = 'archive.shipped' ORDER BY seq",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let listed: Vec<&String> = archived.segments.iter().map(|(_, _, k)| k).collect();
    let mut unique = keys.clone();
    unique.dedup();
    assert_eq!(
        unique.len(),
        keys.len(),
        "no segment recorded twice: {keys:?}"
    );
    assert_eq!(keys.iter().collect::<Vec<_>>(), listed);
}

#[tokio::test]
async fn an_s3_outage_delays_shipping_but_not_requests_and_the_backlog_ships_without_gap_or_duplicate(
) {
    let mut peer = s3::OwnPeer::start().await;
    let endpoint = peer.endpoint();
    let client = s3::client(&endpoint);
    let bucket = s3::bucket(&client, true).await;
    let mut app = spawn_app_with(|env| {
        s3::archive_env(env, &endpoint, &bucket);
        env.set("CHECKPOINT_EVERY_EVENTS", "40");
        env.set("AUDIT_SEGMENT_MAX_AGE_MS", "300");
    })
    .await;
    append(&app.state.appender, 100, "before").await;
    s3::wait_shipped(&app.pool, Duration::from_secs(60)).await;
    let (before, _) = s3::progress(&app.pool).await;

    peer.kill();
    append(&app.state.appender, 300, "during").await;
    // Requests are served and the gateway stays ready: the archive lags, nothing is refused.
    let health = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    // The shipper notices the outage once its upload (with the SDK's own retries) fails;
    // wait for that, bounded, rather than for a fixed time.
    let metric = |metrics: &str, name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    let mut seen = (0.0, 0.0);
    for _ in 0..300 {
        let metrics = app
            .client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        seen = (
            metric(&metrics, "rgw_archive_lag_seconds "),
            metric(&metrics, "rgw_archive_upload_errors_total "),
        );
        if seen.0 >= 1.0 && seen.1 >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (lag, errors) = seen;
    assert!(lag >= 1.0, "the lag shows the outage: {lag}");
    assert!(errors >= 1.0, "failed attempts are counted");
    let ready = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());
    assert_eq!(
        s3::progress(&app.pool).await.0,
        before,
        "nothing shipped while S3 is down"
    );

    peer.restart().await;
    append(&app.state.appender, 50, "after").await;
    s3::wait_shipped(&app.pool, Duration::from_secs(90)).await;
    let chain = app.state.chain().to_owned();
    app.stop().await;
    assert_complete(&client, &bucket, &app.pool, &chain).await;
    let (code, value) = s3::verify_json(
        &endpoint,
        &[
            "--database-url",
            &app.db.url,
            "--s3",
            &format!("s3://{bucket}/rack-gateway"),
            "--s3-path-style",
            "--key",
            &app.vkey,
        ],
    );
    assert_eq!(code, 0, "{value}");
}

fn serve(app_env: &[(String, String)]) -> testkit::ChildGuard {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rack-gateway-server"));
    command
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RGW_ENV_FILE", "/nonexistent/.env")
        .env("LOG_LEVEL", "info,sqlx=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (key, value) in app_env {
        command.env(key, value);
    }
    testkit::ChildGuard(command.spawn().expect("start rack-gateway-server"))
}

#[tokio::test]
async fn a_gateway_killed_mid_shipping_resumes_from_the_bucket_contiguous_and_complete() {
    let endpoint = s3::endpoint();
    let client = s3::client(&endpoint);
    let bucket = s3::bucket(&client, true).await;
    // A backlog: 1500 events with a checkpoint every 20, written before archiving is on.
    let mut app = spawn_app_with(|env| {
        env.set("CHECKPOINT_EVERY_EVENTS", "20");
    })
    .await;
    append(&app.state.appender, 1500, "backlog").await;
    let pool = app.pool.clone();
    s3::wait_for(
        "checkpoints over the backlog",
        Duration::from_secs(60),
        || {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>("SELECT coalesce(max(size), 0) FROM checkpoints")
                    .fetch_one(&pool)
                    .await
                    .unwrap()
                    >= 1500
            }
        },
    )
    .await;
    app.stop().await;
    let chain = app.state.chain().to_owned();

    let env: Vec<(String, String)> = [
        ("DATABASE_URL", app.db.url.clone()),
        ("PORT", "0".into()),
        ("BIND_ADDRESS", "127.0.0.1".into()),
        (
            "CHECKPOINT_SIGNING_KEY_FILE",
            app.key_file.display().to_string(),
        ),
        ("CHECKPOINT_EVERY_EVENTS", "20".into()),
        ("AUDIT_SEGMENT_MAX_AGE_MS", "300".into()),
        ("AUDIT_S3_BUCKET", bucket.clone()),
        ("AUDIT_S3_ENDPOINT_URL", endpoint.clone()),
        ("AUDIT_S3_REGION", s3::REGION.into()),
        ("AWS_ACCESS_KEY_ID", s3::ACCESS_KEY.into()),
        ("AWS_SECRET_ACCESS_KEY", s3::SECRET_KEY.into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();

    // Kill it (SIGKILL) while it works through the backlog, three times.
    for round in 0..3 {
        let child = serve(&env);
        let (start, _) = s3::progress(&app.pool).await;
        let pool = app.pool.clone();
        s3::wait_for("some segments shipped", Duration::from_secs(60), || {
            let pool = pool.clone();
            async move { s3::progress(&pool).await.0 >= start + 60 }
        })
        .await;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        drop(child);
        let (shipped, real) = s3::progress(&app.pool).await;
        assert!(
            shipped < real,
            "round {round}: killed mid-shipping ({shipped} of {real})"
        );
    }

    // Restart: it continues from what the bucket holds, to the end.
    let mut child = serve(&env);
    s3::wait_shipped(&app.pool, Duration::from_secs(120)).await;
    // Stop it the orderly way (SIGTERM): a segment of bookkeeping may still be on its way
    // (a count-boundary checkpoint), and a stop lets the shipper finish and record it.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let mut exited = None;
    for _ in 0..300 {
        if let Some(status) = child.0.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        exited.expect("the gateway stops on SIGTERM").code(),
        Some(0)
    );
    assert_complete(&client, &bucket, &app.pool, &chain).await;
    let (code, value) = s3::verify_json(
        &endpoint,
        &[
            "--database-url",
            &app.db.url,
            "--s3",
            &format!("s3://{bucket}/rack-gateway"),
            "--s3-path-style",
            "--key",
            &app.vkey,
        ],
    );
    assert_eq!(code, 0, "{value}");
}
