//! The archive against the local S3 Object Lock peer: every event shipped
//! exactly once under COMPLIANCE retention and verifiable across database and
//! bucket; a bucket without Object Lock never reported healthy; the peer
//! refusing to delete or replace locked versions, and verify-chain naming
//! objects that are missing or unlocked; a truncated or altered database
//! caught against the archive.

use std::time::Duration;

use serde_json::Value;
use sqlx::Executor;

use crate::helpers::{append_test_events, s3, TestApp};

async fn load(app: &TestApp, events: usize, writers: usize) {
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let audit = app.state.appender.clone();
        tasks.push(tokio::spawn(async move {
            append_test_events(
                &audit,
                "load",
                events / writers,
                |n| serde_json::json!({ "writer": writer, "n": n }),
            )
            .await
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

async fn metric(app: &TestApp, name: &str) -> f64 {
    let body = app.metrics().await;
    body.lines()
        .find_map(|line| {
            let (series, value) = line.split_once(' ')?;
            (series == name).then(|| value.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("{name} in /metrics:\n{body}"))
}

#[tokio::test]
async fn every_event_is_shipped_once_under_compliance_lock_and_verifies_across_sources() {
    let endpoint = s3::endpoint();
    let client = s3::client(&endpoint);
    let bucket = s3::bucket(&client, true).await;
    let mut app = TestApp::build()
        .archive_to(&endpoint, &bucket)
        .env("CHECKPOINT_EVERY_EVENTS", "250")
        .env("AUDIT_SEGMENT_MAX_AGE_MS", "500")
        .env("AUDIT_RETENTION_DAYS", "30")
        .spawn()
        .await;
    let started = chrono::Utc::now().timestamp();
    load(&app, 2000, 16).await;
    s3::wait_shipped(&app.pool, Duration::from_secs(90)).await;
    let chain = app.state.chain().to_owned();

    // Every event in exactly one segment, byte-identical to the database.
    let archived = s3::archived(&client, &bucket, &chain).await;
    let lines = s3::archived_lines(&client, &bucket, &archived).await;
    let database = s3::database_lines(&app.pool).await;
    assert!(lines.len() >= 2000, "{} events archived", lines.len());
    assert_eq!(
        lines[..],
        database[..lines.len()],
        "archive = database prefix"
    );
    let (shipped, real) = s3::progress(&app.pool).await;
    assert_eq!(shipped as usize, lines.len());
    assert!(shipped >= real);

    // Each segment ends at a checkpoint, uploaded after it, identical to the database's.
    let db_notes: Vec<(i64, String)> =
        sqlx::query_as("SELECT size, note FROM checkpoints ORDER BY size")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    for (_, last, key) in &archived.segments {
        let note = archived
            .notes
            .get(last)
            .unwrap_or_else(|| panic!("checkpoint for {key}"));
        assert!(
            db_notes
                .iter()
                .any(|(size, n)| *size as u64 == *last && n == note),
            "{key}: its checkpoint is the database's"
        );
    }
    assert_eq!(
        archived.keys,
        vec![format!("rack-gateway/{chain}/keys/rack-gateway-test.vkey")]
    );
    assert_eq!(
        String::from_utf8(s3::get(&client, &bucket, &archived.keys[0]).await)
            .unwrap()
            .trim(),
        app.vkey
    );

    // Every object under COMPLIANCE until now + 30 days, with the SHA-256 the gateway sent.
    let all = s3::keys(&client, &bucket, "").await;
    assert_eq!(
        all.len(),
        archived.segments.len() + archived.notes.len() + 1
    );
    for key in &all {
        let (mode, until, sha) = s3::lock_of(&client, &bucket, key).await;
        assert_eq!(mode.as_deref(), Some("COMPLIANCE"), "{key}");
        let until = until.unwrap_or_else(|| panic!("{key} has a retain-until date"));
        let expected = started + 30 * 86_400;
        assert!(
            (expected - 120..=chrono::Utc::now().timestamp() + 30 * 86_400 + 5).contains(&until),
            "{key}: retain-until {until}, expected about {expected}"
        );
        assert!(
            sha.is_some(),
            "{key} was uploaded with x-amz-checksum-sha256"
        );
    }

    // One archive.shipped per segment, saying what and how it was shipped.
    let shipped_events = app.events_of("archive.shipped").await;
    assert_eq!(shipped_events.len(), archived.segments.len());
    for (event, (first, last, key)) in shipped_events.iter().zip(&archived.segments) {
        let data = &event["data"];
        assert_eq!(data["key"], key.as_str());
        assert_eq!(data["first"], *first);
        assert_eq!(data["last"], *last);
        assert_eq!(data["checkpoint_size"], *last);
        assert_eq!(data["lock_mode"], "COMPLIANCE");
        assert_eq!(data["bucket"], bucket.as_str());
        assert_eq!(data["recovered"], false);
        assert!(data["retain_until"].is_string() && data["sha256"].is_string());
    }

    // The gateway reports healthy WORM archiving and no lag.
    assert_eq!(metric(&app, "rgw_archive_healthy").await, 1.0);
    assert_eq!(metric(&app, "rgw_archive_object_lock").await, 1.0);
    assert_eq!(metric(&app, "rgw_archive_lag_seconds").await, 0.0);
    let ready = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    app.stop().await;

    // verify-chain over both sources: exit 0, every object reported locked.
    let (code, value) = s3::verify_both(&endpoint, &app, &bucket, &["--min-retention-days", "30"]);
    assert_eq!(code, 0, "{value}");
    assert_eq!(value["ok"], true);
    let objects = value["objects"].as_array().unwrap();
    assert_eq!(objects.len(), all.len(), "every object reported: {value}");
    for object in objects {
        assert_eq!(object["lock_mode"], "COMPLIANCE", "{object}");
        assert!(object["retain_until"].is_string(), "{object}");
    }
    let sources = value["sources"].to_string();
    assert!(
        sources.contains("database") && sources.contains(&bucket),
        "{sources}"
    );
    // The archive alone, too (and its published key without --key).
    let (code, value) = s3::verify_bucket(&endpoint, &bucket, &["--min-retention-days", "30"]);
    assert_eq!(code, 0, "{value}");
    assert_eq!(value["keys_trusted"], false);
    assert_eq!(value["head_seq"], lines.len() as u64);
    // A stricter policy than the objects have is a failure naming an object.
    let (code, value) = s3::verify_bucket(
        &endpoint,
        &bucket,
        &["--key", &app.vkey, "--min-retention-days", "31"],
    );
    assert_eq!(code, 1, "{value}");
    assert_eq!(value["check"], 6);
    assert!(
        value["object"].as_str().unwrap().contains(&chain),
        "{value}"
    );
    let (code, value) = s3::verify_bucket(
        &endpoint,
        &bucket,
        &[
            "--key",
            &app.vkey,
            "--lock-mode",
            "GOVERNANCE",
            "--min-retention-days",
            "30",
        ],
    );
    assert_eq!(code, 1, "{value}");
    assert_eq!(value["check"], 6);
}

#[tokio::test]
async fn a_bucket_without_object_lock_is_never_reported_healthy_and_gets_nothing() {
    let endpoint = s3::endpoint();
    let client = s3::client(&endpoint);
    let bucket = s3::bucket(&client, false).await;
    let mut app = TestApp::build()
        .archive_to(&endpoint, &bucket)
        .env("AUDIT_SEGMENT_MAX_AGE_MS", "200")
        .spawn()
        .await;
    load(&app, 20, 2).await;
    let (client_http, ready_url) = (app.client.clone(), app.url("/ready"));
    testkit::wait_for("/ready to refuse", Duration::from_secs(30), || {
        let request = client_http.get(&ready_url).send();
        async move {
            let response = request.await.unwrap();
            response.status() == 503
                && response
                    .text()
                    .await
                    .unwrap()
                    .contains("does not have Object Lock enabled")
        }
    })
    .await;
    assert_eq!(metric(&app, "rgw_archive_object_lock").await, -1.0);
    assert_eq!(metric(&app, "rgw_archive_healthy").await, 0.0);
    assert_eq!(metric(&app, "rgw_archive_fault").await, 1.0);
    assert!(metric(&app, "rgw_archive_lag_seconds").await > 0.0);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        s3::keys(&client, &bucket, "").await.is_empty(),
        "nothing shipped"
    );
    assert!(app.events_of("archive.shipped").await.is_empty());
    app.stop().await;
}

/// Ship a small archive and stop the gateway; returns the app (database kept).
async fn shipped_archive(endpoint: &str, bucket: &str, events: usize) -> TestApp {
    let mut app = TestApp::build()
        .archive_to(endpoint, bucket)
        .env("CHECKPOINT_EVERY_EVENTS", "20")
        .env("AUDIT_SEGMENT_MAX_AGE_MS", "200")
        .spawn()
        .await;
    load(&app, events, 4).await;
    s3::wait_shipped(&app.pool, Duration::from_secs(60)).await;
    app.stop().await;
    app
}

#[tokio::test]
async fn locked_versions_refuse_delete_and_replace_and_verify_chain_names_missing_or_unlocked_objects(
) {
    let endpoint = s3::endpoint();
    let client = s3::client(&endpoint);
    let bucket = s3::bucket(&client, true).await;
    let app = shipped_archive(&endpoint, &bucket, 100).await;
    let chain = app.state.chain().to_owned();
    let archived = s3::archived(&client, &bucket, &chain).await;
    assert!(
        archived.segments.len() >= 4,
        "{} segments",
        archived.segments.len()
    );
    let verify = |extra: &[&str]| {
        let mut args = vec!["--key", app.vkey.as_str()];
        args.extend_from_slice(extra);
        s3::verify_bucket(&endpoint, &bucket, &args)
    };
    assert_eq!(verify(&[]).0, 0);

    // The peer refuses to delete a locked version, or to replace a key conditionally.
    let (_, _, segment) = &archived.segments[1];
    let versions = client
        .list_object_versions()
        .bucket(&bucket)
        .prefix(segment)
        .send()
        .await
        .unwrap();
    let locked = versions.versions()[0].version_id().unwrap().to_owned();
    let original = s3::get(&client, &bucket, segment).await;
    let refused = client
        .delete_object()
        .bucket(&bucket)
        .key(segment)
        .version_id(&locked)
        .send()
        .await
        .expect_err("a locked version cannot be deleted");
    assert_eq!(
        aws_sdk_s3::error::ProvideErrorMetadata::code(&refused),
        Some("AccessDenied"),
        "{refused:?}"
    );
    let refused = client
        .put_object()
        .bucket(&bucket)
        .key(segment)
        .if_none_match("*")
        .body(b"forged\n".to_vec().into())
        .send()
        .await
        .expect_err("a conditional write never replaces a key");
    assert_eq!(
        aws_sdk_s3::error::ProvideErrorMetadata::code(&refused),
        Some("PreconditionFailed")
    );
    let kept = client
        .get_object()
        .bucket(&bucket)
        .key(segment)
        .version_id(&locked)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    assert_eq!(kept.to_vec(), original, "the locked version is intact");

    // An unlocked object where a locked one should be: exit 1, naming it.
    let note_key = format!(
        "rack-gateway/{chain}/checkpoints/{:020}.note",
        archived.segments[2].1
    );
    let unlocked = client
        .put_object()
        .bucket(&bucket)
        .key(&note_key)
        .body(
            archived.notes[&archived.segments[2].1]
                .clone()
                .into_bytes()
                .into(),
        )
        .send()
        .await
        .unwrap();
    let (code, value) = verify(&[]);
    assert_eq!(code, 1, "{value}");
    assert_eq!(value["check"], 6, "{value}");
    assert_eq!(value["object"], note_key.as_str(), "{value}");
    assert!(
        value["message"].as_str().unwrap().contains("not locked"),
        "{value}"
    );
    // An unlocked version may be removed again (it never should have been there).
    client
        .delete_object()
        .bucket(&bucket)
        .key(&note_key)
        .version_id(unlocked.version_id().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(verify(&[]).0, 0);

    // A segment hidden behind a delete marker: missing, named.
    let marker = client
        .delete_object()
        .bucket(&bucket)
        .key(segment)
        .send()
        .await
        .unwrap();
    assert_eq!(marker.delete_marker(), Some(true));
    let (code, value) = verify(&[]);
    assert_eq!(code, 1, "{value}");
    assert_eq!(value["check"], 6, "{value}");
    let first = archived.segments[1].0;
    assert_eq!(
        value["object"],
        format!("rack-gateway/{chain}/segments/{first:020}-*.jsonl"),
        "{value}"
    );
    assert!(
        value["message"].as_str().unwrap().contains("missing"),
        "{value}"
    );
    client
        .delete_object()
        .bucket(&bucket)
        .key(segment)
        .version_id(marker.version_id().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(verify(&[]).0, 0);

    // A checkpoint hidden: missing, named.
    let marker = client
        .delete_object()
        .bucket(&bucket)
        .key(&note_key)
        .send()
        .await
        .unwrap();
    let (code, value) = verify(&[]);
    assert_eq!(code, 1, "{value}");
    assert_eq!(value["check"], 6, "{value}");
    assert_eq!(value["object"], note_key.as_str(), "{value}");
    client
        .delete_object()
        .bucket(&bucket)
        .key(&note_key)
        .version_id(marker.version_id().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(verify(&[]).0, 0);
}

/// Run SQL as an attacker with superuser access would: around the append-only triggers.
async fn tamper(pool: &sqlx::PgPool, statements: &[String]) {
    let mut conn = pool.acquire().await.unwrap();
    conn.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
        .await
        .unwrap();
    conn.execute("ALTER TABLE checkpoints DISABLE TRIGGER checkpoints_append_only")
        .await
        .unwrap();
    for statement in statements {
        conn.execute(statement.as_str()).await.unwrap();
    }
    conn.execute("ALTER TABLE events ENABLE ALWAYS TRIGGER events_append_only")
        .await
        .unwrap();
    conn.execute("ALTER TABLE checkpoints ENABLE ALWAYS TRIGGER checkpoints_append_only")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_truncated_or_altered_database_is_caught_against_the_archive() {
    let endpoint = s3::endpoint();
    let client = s3::client(&endpoint);
    let bucket = s3::bucket(&client, true).await;
    let app = shipped_archive(&endpoint, &bucket, 120).await;
    let chain = app.state.chain().to_owned();
    let archived = s3::archived(&client, &bucket, &chain).await;
    let newest = archived.segments.last().unwrap().1;
    let both = |app: &TestApp| s3::verify_both(&endpoint, app, &bucket, &[]);
    assert_eq!(both(&app).0, 0);

    // An altered event, its hash recomputed (so the database alone links up to it).
    let (canonical, hash): (Vec<u8>, String) =
        sqlx::query_as("SELECT canonical, hash FROM events WHERE seq = 7")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let mut event = events::Event::from_canonical(&canonical, &hash).unwrap();
    event.data = serde_json::json!({"writer": 0, "n": 999_999});
    event.hash = event.computed_hash();
    let set = |canonical: &[u8], hash: &str| {
        format!(
            "UPDATE events SET canonical = decode('{}', 'hex'), hash = '{hash}' WHERE seq = 7",
            hex::encode(canonical)
        )
    };
    tamper(&app.pool, &[set(&event.canonical_bytes(), &event.hash)]).await;
    let (code, value) = both(&app);
    assert_eq!(code, 1, "{value}");
    assert_eq!(value["check"], 4, "{value}");
    assert_eq!(value["seq"], 7, "{value}");
    tamper(&app.pool, &[set(&canonical, &hash)]).await;
    assert_eq!(both(&app).0, 0, "restored");

    // The tail cut below the newest archived checkpoint, with the database's own checkpoints above it.
    let cut = newest - 15;
    tamper(
        &app.pool,
        &[
            format!("DELETE FROM events WHERE seq > {cut}"),
            format!("DELETE FROM checkpoints WHERE size > {cut}"),
        ],
    )
    .await;
    // The database alone cannot tell (its remaining checkpoints all match)...
    let (code, value) = s3::verify_json(
        &endpoint,
        &["--database-url", &app.database_url, "--key", &app.vkey],
    );
    assert_eq!(code, 0, "{value}");
    // ...the archive can.
    let (code, value): (i32, Value) = both(&app);
    assert_eq!(code, 1, "{value}");
    assert_eq!(value["check"], 4, "{value}");
    assert_eq!(value["seq"], cut + 1, "{value}");
    assert!(
        value["message"].as_str().unwrap().contains("truncated"),
        "{value}"
    );
}

#[tokio::test]
async fn a_bucket_that_differs_from_the_database_stops_shipping_with_an_alarm_and_is_never_fixed() {
    let endpoint = s3::endpoint();
    let client = s3::client(&endpoint);
    let bucket = s3::bucket(&client, true).await;
    let first = shipped_archive(&endpoint, &bucket, 60).await;
    let chain = first.state.chain().to_owned();
    let archived = s3::archived(&client, &bucket, &chain).await;
    let (_, _, newest) = archived.segments.last().unwrap().clone();

    // Someone with bucket access writes a new, locked version of the newest segment.
    let mut forged = s3::get(&client, &bucket, &newest).await;
    let at = forged.len() / 2;
    forged[at] = if forged[at] == b'1' { b'2' } else { b'1' };
    client
        .put_object()
        .bucket(&bucket)
        .key(&newest)
        .object_lock_mode(aws_sdk_s3::types::ObjectLockMode::Compliance)
        .object_lock_retain_until_date(aws_smithy_types::DateTime::from_secs(
            chrono::Utc::now().timestamp() + 86_400,
        ))
        .content_md5({
            use base64::Engine;
            use md5::Digest;
            base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&forged))
        })
        .body(forged.into())
        .send()
        .await
        .unwrap();
    let versions_before = client
        .list_object_versions()
        .bucket(&bucket)
        .send()
        .await
        .unwrap()
        .versions()
        .len();

    // The same database, a gateway started again: it compares, alarms, and ships nothing.
    let mut app = first.replica().await;
    let http = app.client.clone();
    let ready_url = app.url("/ready");
    let expected = newest.clone();
    testkit::wait_for(
        "/ready to report the divergence",
        Duration::from_secs(30),
        || {
            let request = http.get(&ready_url).send();
            let expected = expected.clone();
            async move {
                let response = request.await.unwrap();
                response.status() == 503 && response.text().await.unwrap().contains(&expected)
            }
        },
    )
    .await;
    let metrics = app.metrics().await;
    assert!(metrics.contains("rgw_archive_fault 1"), "{metrics}");
    assert!(metrics.contains("rgw_archive_healthy 0"), "{metrics}");
    // New events are still accepted; none of them is shipped, and nothing is rewritten.
    app.append_test_events("t", 30, |n| serde_json::json!({ "n": n }))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let versions_after = client
        .list_object_versions()
        .bucket(&bucket)
        .send()
        .await
        .unwrap()
        .versions()
        .len();
    assert_eq!(versions_before, versions_after, "the gateway wrote nothing");
    app.stop().await;
}

#[tokio::test]
async fn with_two_replicas_one_ships_and_each_segment_is_shipped_once() {
    use std::sync::atomic::Ordering;
    let endpoint = s3::endpoint();
    let client = s3::client(&endpoint);
    let bucket = s3::bucket(&client, true).await;
    let mut first = TestApp::build()
        .archive_to(&endpoint, &bucket)
        .env("CHECKPOINT_EVERY_EVENTS", "50")
        .env("AUDIT_SEGMENT_MAX_AGE_MS", "300")
        .spawn()
        .await;
    let mut second = first.replica().await;
    for n in 0..400 {
        let target = if n % 2 == 0 { &first } else { &second };
        target
            .append_test_events("t", 1, |_| serde_json::json!({ "n": n }))
            .await;
    }
    s3::wait_shipped(&first.pool, Duration::from_secs(60)).await;
    let shippers = [&first.state, &second.state]
        .iter()
        .filter(|s| s.archive.status.leader.load(Ordering::Relaxed))
        .count();
    assert_eq!(shippers, 1, "exactly one replica ships");
    let chain = first.state.chain().to_owned();
    let archived = s3::archived(&client, &bucket, &chain).await;
    let lines = s3::archived_lines(&client, &bucket, &archived).await;
    assert_eq!(
        lines[..],
        s3::database_lines(&first.pool).await[..lines.len()]
    );
    let keys: Vec<String> = sqlx::query_scalar(
        "SELECT body->'data'->>'key' FROM events WHERE type = 'archive.shipped' ORDER BY seq",
    )
    .fetch_all(&first.pool)
    .await
    .unwrap();
    let listed: Vec<String> = archived
        .segments
        .iter()
        .map(|(_, _, k)| k.clone())
        .collect();
    assert_eq!(keys, listed, "one archive.shipped per segment");
    second.stop().await;
    first.stop().await;
}
