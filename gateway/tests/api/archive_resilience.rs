//! Shipping survives what production throws at it: an S3 outage (the peer
//! stopped while events keep arriving and requests keep succeeding; after it
//! returns the backlog ships with no gap and no duplicate), and a gateway
//! killed with SIGKILL mid-shipping (after a restart the archive is still
//! contiguous and complete, continued from what the bucket holds).

use std::time::Duration;

use crate::helpers::{s3, ServerProcess, TestApp};

async fn append(app: &TestApp, count: usize, tag: &str) {
    app.append_test_events(
        "resilience",
        count,
        |n| serde_json::json!({ "tag": tag, "n": n }),
    )
    .await
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
    let mut app = TestApp::build()
        .archive_to(&endpoint, &bucket)
        .env("CHECKPOINT_EVERY_EVENTS", "40")
        .env("AUDIT_SEGMENT_MAX_AGE_MS", "300")
        .spawn()
        .await;
    append(&app, 100, "before").await;
    s3::wait_shipped(&app.pool, Duration::from_secs(60)).await;
    let (before, _) = s3::progress(&app.pool).await;

    peer.kill();
    append(&app, 300, "during").await;
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
        let metrics = app.metrics().await;
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
    append(&app, 50, "after").await;
    s3::wait_shipped(&app.pool, Duration::from_secs(90)).await;
    let chain = app.state.chain().to_owned();
    app.stop().await;
    assert_complete(&client, &bucket, &app.pool, &chain).await;
    let (code, value) = s3::verify_both(&endpoint, &app, &bucket, &[]);
    assert_eq!(code, 0, "{value}");
}

#[tokio::test]
async fn a_gateway_killed_mid_shipping_resumes_from_the_bucket_contiguous_and_complete() {
    let endpoint = s3::endpoint();
    let client = s3::client(&endpoint);
    let bucket = s3::bucket(&client, true).await;
    // A backlog: 1500 events with a checkpoint every 20, written before archiving is on.
    let mut app = TestApp::build()
        .env("CHECKPOINT_EVERY_EVENTS", "20")
        .spawn()
        .await;
    append(&app, 1500, "backlog").await;
    testkit::wait_for(
        "checkpoints over the backlog",
        Duration::from_secs(60),
        || async { app.checkpointed_size().await >= 1500 },
    )
    .await;
    app.stop().await;
    let chain = app.state.chain().to_owned();

    let archive = s3::archive_settings(&endpoint, &bucket);
    let mut settings = vec![
        ("LOG_LEVEL", "info,sqlx=warn"),
        ("CHECKPOINT_EVERY_EVENTS", "20"),
        ("AUDIT_SEGMENT_MAX_AGE_MS", "300"),
    ];
    settings.extend(archive.iter().map(|(k, v)| (*k, v.as_str())));
    let serve = || ServerProcess::resume(&app.database_url, &app.key_file, &settings);

    // Kill it (SIGKILL) while it works through the backlog, three times.
    for round in 0..3 {
        let mut server = serve();
        let (start, _) = s3::progress(&app.pool).await;
        let pool = app.pool.clone();
        testkit::wait_for("some segments shipped", Duration::from_secs(60), || {
            let pool = pool.clone();
            async move { s3::progress(&pool).await.0 >= start + 60 }
        })
        .await;
        server.kill();
        let (shipped, real) = s3::progress(&app.pool).await;
        assert!(
            shipped < real,
            "round {round}: killed mid-shipping ({shipped} of {real})"
        );
    }

    // Restart: it continues from what the bucket holds, to the end.
    let mut server = serve();
    s3::wait_shipped(&app.pool, Duration::from_secs(120)).await;
    // Stop it the orderly way (SIGTERM): a segment of bookkeeping may still be on its way
    // (a count-boundary checkpoint), and a stop lets the shipper finish and record it.
    let exited = server.terminate(Duration::from_secs(30)).await;
    assert_eq!(exited.code(), Some(0), "the gateway stops on SIGTERM");
    assert_complete(&client, &bucket, &app.pool, &chain).await;
    let (code, value) = s3::verify_both(&endpoint, &app, &bucket, &[]);
    assert_eq!(code, 0, "{value}");
}
