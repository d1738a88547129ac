//! The Postgres store against a real server: one gapless chain from many
//! writers and processes, append-only enforced by the database, fail-closed
//! appends, and projection rejections that consume no seq.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use events::store::{
    self, AppendError, Appender, AppenderConfig, AppenderMetrics, HookRejection, NoHook, TxHook,
};
use events::{Actor, Draft, Event, GENESIS_PREV};
use futures::TryStreamExt;
use serde_json::json;
use sqlx::{Executor, PgConnection, PgPool};

async fn migrated(url: &str) -> (PgPool, String) {
    let pool = store::connect_pool(url, 4).await.expect("pool");
    store::migrate(&pool).await.expect("migrate");
    let chain = store::ensure_chain_id(&pool).await.expect("chain id");
    (pool, chain)
}

fn appender(
    url: &str,
    chain: &str,
    instance: &str,
    hook: Arc<dyn TxHook>,
    timeout: Duration,
) -> Appender {
    let (appender, _task) = Appender::spawn(
        store::connect_options(url).expect("url"),
        AppenderConfig {
            chain: chain.to_owned(),
            instance: instance.to_owned(),
            append_timeout: timeout,
        },
        hook,
        AppenderMetrics::default(),
    );
    appender
}

fn draft(n: u64) -> Draft {
    Draft::new("test.event", Actor::system("tester"), json!({ "n": n }))
}

/// Reads the whole chain back and checks seq 1..N, links and hashes.
async fn assert_gapless(pool: &PgPool, chain: &str, expected: u64) {
    let rows: Vec<_> = store::stream_rows(pool, chain, 1, None)
        .try_collect()
        .await
        .expect("read chain");
    assert_eq!(rows.len() as u64, expected, "event count");
    let mut prev = GENESIS_PREV.to_owned();
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.seq, i as i64 + 1, "gapless seq");
        let event = Event::from_canonical(&row.canonical, &row.hash).expect("strict parse");
        assert_eq!(event.seq, row.seq as u64);
        assert_eq!(event.prev, prev, "prev links at seq {}", row.seq);
        assert_eq!(event.computed_hash(), row.hash, "hash at seq {}", row.seq);
        prev = row.hash.clone();
    }
}

#[tokio::test]
async fn appends_form_one_linked_chain_and_fill_the_instance() {
    let db = testkit::fresh_database().await;
    let (pool, chain) = migrated(&db.url).await;
    let appender = appender(
        &db.url,
        &chain,
        "instance-a",
        Arc::new(NoHook),
        Duration::from_secs(2),
    );
    for n in 0..10 {
        let event = appender.append(draft(n)).await.expect("append");
        assert_eq!(event.seq, n + 1);
        assert_eq!(event.source.instance.as_deref(), Some("instance-a"));
    }
    let many = appender
        .append_all((0..5).map(draft).collect())
        .await
        .expect("append_all");
    assert_eq!(
        many.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![11, 12, 13, 14, 15]
    );
    assert_gapless(&pool, &chain, 15).await;
    assert_eq!(store::head(&pool, &chain).await.unwrap().unwrap().0, 15);
    // The jsonb copy is the same event, for search.
    let kind: String =
        sqlx::query_scalar("SELECT body->'actor'->>'kind' FROM events WHERE seq = 3")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(kind, "system");
}

#[tokio::test]
async fn two_instances_of_concurrent_writers_make_one_gapless_chain() {
    // The full-size load (2 × 32 × 5,000, then verify-chain) is verify-chain/tests/database.rs.
    const INSTANCES: usize = 2;
    const WRITERS: usize = 16;
    const PER_WRITER: u64 = 500;
    let db = testkit::fresh_database().await;
    let (pool, chain) = migrated(&db.url).await;
    let appenders: Vec<Appender> = (0..INSTANCES)
        .map(|i| {
            appender(
                &db.url,
                &chain,
                &format!("instance-{i}"),
                Arc::new(NoHook),
                Duration::from_secs(30),
            )
        })
        .collect();
    let mut tasks = Vec::new();
    for (i, instance) in appenders.iter().enumerate() {
        for w in 0..WRITERS {
            let appender = instance.clone();
            tasks.push(tokio::spawn(async move {
                let mut last = 0;
                for n in 0..PER_WRITER {
                    let event = appender
                        .append(Draft::new(
                            "test.event",
                            Actor::system(format!("writer-{i}-{w}")),
                            json!({ "n": n }),
                        ))
                        .await
                        .expect("append");
                    assert!(event.seq > last, "a writer's own events are ordered");
                    last = event.seq;
                }
            }));
        }
    }
    for task in tasks {
        task.await.expect("writer task");
    }
    let total = INSTANCES as u64 * WRITERS as u64 * PER_WRITER;
    assert_gapless(&pool, &chain, total).await;
    let batches: u64 = appenders.iter().map(|a| a.metrics().appends()).sum();
    assert_eq!(batches, total, "every committed event was counted once");
}

#[tokio::test]
async fn the_database_refuses_update_delete_and_truncate() {
    let db = testkit::fresh_database().await;
    let (pool, chain) = migrated(&db.url).await;
    let appender = appender(
        &db.url,
        &chain,
        "a",
        Arc::new(NoHook),
        Duration::from_secs(2),
    );
    appender.append(draft(1)).await.unwrap();
    sqlx::query("INSERT INTO checkpoints (chain, size, note) VALUES ($1, 1, 'note')")
        .bind(&chain)
        .execute(&pool)
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    // Even a superuser session in replica mode, which skips ordinary triggers.
    conn.execute("SET session_replication_role = replica")
        .await
        .unwrap();
    for statement in [
        "UPDATE events SET hash = repeat('0', 64)",
        "UPDATE events SET type = 'x' WHERE false",
        "DELETE FROM events",
        "DELETE FROM events WHERE seq = 1",
        "TRUNCATE events",
        "UPDATE checkpoints SET note = 'forged'",
        "DELETE FROM checkpoints",
        "TRUNCATE checkpoints",
        "UPDATE chain_meta SET chain = 'other'",
        "DELETE FROM chain_meta",
    ] {
        let error = conn
            .execute(statement)
            .await
            .expect_err(&format!("{statement} must fail"));
        assert!(
            error.to_string().contains("append-only"),
            "{statement}: unexpected error {error}"
        );
    }
    assert_gapless(&pool, &chain, 1).await;
}

/// Rejects events whose data says so, like a projection refusing a duplicate.
struct RejectingHook;

#[async_trait]
impl TxHook for RejectingHook {
    fn affects(&self, event_type: &str) -> bool {
        event_type == "test.guarded"
    }
    async fn apply(&self, conn: &mut PgConnection, event: &Event) -> Result<(), store::HookError> {
        conn.execute("CREATE TABLE IF NOT EXISTS hook_effects (seq bigint)")
            .await?;
        sqlx::query("INSERT INTO hook_effects VALUES ($1)")
            .bind(event.seq as i64)
            .execute(&mut *conn)
            .await?;
        if event.data["reject"] == json!(true) {
            return Err(HookRejection(format!("rejected n={}", event.data["n"])).into());
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_rejected_job_consumes_no_seq_and_leaves_no_effect() {
    let db = testkit::fresh_database().await;
    let (pool, chain) = migrated(&db.url).await;
    let appender = appender(
        &db.url,
        &chain,
        "a",
        Arc::new(RejectingHook),
        Duration::from_secs(2),
    );
    let guarded = |n: u64, reject: bool| {
        Draft::new(
            "test.guarded",
            Actor::system("t"),
            json!({ "n": n, "reject": reject }),
        )
    };
    // Concurrent so they share batches.
    let results = futures::future::join_all((0..20u64).map(|n| {
        let appender = appender.clone();
        async move { appender.append(guarded(n, n % 3 == 0)).await }
    }))
    .await;
    let accepted = results.iter().filter(|r| r.is_ok()).count() as u64;
    for (n, result) in results.iter().enumerate() {
        if n % 3 == 0 {
            assert_eq!(
                result.as_ref().unwrap_err(),
                &AppendError::Rejected(format!("rejected n={n}"))
            );
        }
    }
    // An atomic group with one bad member commits nothing.
    let group = appender
        .append_all(vec![
            guarded(100, false),
            guarded(101, true),
            guarded(102, false),
        ])
        .await;
    assert!(matches!(group, Err(AppendError::Rejected(_))));
    assert_gapless(&pool, &chain, accepted).await;
    let effects: i64 = sqlx::query_scalar("SELECT count(*) FROM hook_effects")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        effects as u64, accepted,
        "rejected jobs left no projection rows"
    );
}

#[tokio::test]
async fn invalid_drafts_are_refused_before_queueing() {
    let db = testkit::fresh_database().await;
    let (pool, chain) = migrated(&db.url).await;
    let appender = appender(
        &db.url,
        &chain,
        "a",
        Arc::new(NoHook),
        Duration::from_secs(2),
    );
    let float = Draft::new("test.event", Actor::system("t"), json!({ "latency": 0.5 }));
    assert!(matches!(
        appender.append(float).await,
        Err(AppendError::Invalid(_))
    ));
    assert_gapless(&pool, &chain, 0).await;
}

#[tokio::test]
async fn appends_fail_within_the_timeout_when_postgres_is_stopped_and_resume_after() {
    let pg = testkit::PrivatePostgres::start();
    let (pool, chain) = migrated(&pg.url()).await;
    // Long enough for an append on a loaded machine while Postgres is up.
    let timeout = Duration::from_secs(2);
    let appender = appender(&pg.url(), &chain, "a", Arc::new(NoHook), timeout);
    appender.append(draft(1)).await.expect("append while up");
    assert!(appender.is_healthy());
    pool.close().await;

    pg.stop();
    for n in 2..5 {
        let started = Instant::now();
        let result = appender.append(draft(n)).await;
        let elapsed = started.elapsed();
        assert!(
            matches!(
                result,
                Err(AppendError::Timeout(_)) | Err(AppendError::Unavailable(_))
            ),
            "append with Postgres down must fail, got {result:?}"
        );
        // Behaviour, not speed: the caller is answered by its deadline (plus scheduling slack), never left hanging.
        assert!(
            elapsed < timeout + Duration::from_secs(10),
            "answered after {elapsed:?}"
        );
    }
    assert!(!appender.is_healthy());

    pg.start_again();
    let mut resumed = None;
    for _ in 0..50 {
        if let Ok(event) = appender.append(draft(99)).await {
            resumed = Some(event);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let event = resumed.expect("appends resume once Postgres is back");
    assert_eq!(
        event.seq, 2,
        "nothing refused was written: the chain continues at 2"
    );
    assert!(appender.is_healthy());
    let pool = store::connect_pool(&pg.url(), 2).await.unwrap();
    assert_gapless(&pool, &chain, 2).await;
}

#[tokio::test]
async fn a_stuck_chain_head_times_out_instead_of_hanging() {
    let db = testkit::fresh_database().await;
    let (pool, chain) = migrated(&db.url).await;
    let appender = appender(
        &db.url,
        &chain,
        "a",
        Arc::new(NoHook),
        // Long enough for the first append on a loaded machine; the point is
        // that a held lock ends in a timeout, not how quickly.
        Duration::from_secs(3),
    );
    appender.append(draft(1)).await.unwrap();
    // Another session holds the head lock (a slow or wedged writer elsewhere).
    let mut blocker = pool.begin().await.unwrap();
    let key: i64 = sqlx::query_scalar("SELECT ('x' || substr(encode(sha256(convert_to('rack-gateway/chain-head/' || $1, 'UTF8')), 'hex'), 1, 16))::bit(64)::bigint")
        .bind(&chain)
        .fetch_one(&mut *blocker)
        .await
        .unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(key)
        .execute(&mut *blocker)
        .await
        .unwrap();
    // Bounded here only so that a hang fails the test instead of stalling it.
    let result = tokio::time::timeout(Duration::from_secs(120), appender.append(draft(2)))
        .await
        .expect("the append waited for the lock instead of timing out");
    assert!(matches!(result, Err(AppendError::Timeout(_))), "{result:?}");
    blocker.rollback().await.unwrap();
    let event = appender
        .append(draft(3))
        .await
        .expect("append after the lock is released");
    assert_eq!(event.seq, 2);
    assert_gapless(&pool, &chain, 2).await;
}

#[tokio::test]
async fn a_commit_that_times_out_but_lands_is_recorded_as_refused() {
    let db = testkit::fresh_database().await;
    let (pool, chain) = migrated(&db.url).await;
    // A commit-time trigger that outlasts the append timeout: COMMIT is in
    // flight when the caller gives up, and the server completes it anyway.
    pool.execute(
        "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.type = 'test.slow' THEN PERFORM pg_sleep(1.5); END IF; RETURN NULL; END $$",
    )
    .await
    .unwrap();
    pool.execute(
        "CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON events DEFERRABLE INITIALLY DEFERRED \
         FOR EACH ROW EXECUTE FUNCTION slow_commit()",
    )
    .await
    .unwrap();
    let appender = appender(
        &db.url,
        &chain,
        "a",
        Arc::new(NoHook),
        Duration::from_millis(500),
    );
    let slow = Draft::new("test.slow", Actor::system("t"), json!({}));
    assert!(matches!(
        appender.append(slow).await,
        Err(AppendError::Timeout(_))
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let next = appender
        .append(draft(1))
        .await
        .expect("append after the slow commit");
    assert_eq!(next.seq, 3, "the in-doubt note takes seq 2");
    let note: serde_json::Value = sqlx::query_scalar("SELECT body FROM events WHERE seq = 2")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(note["type"], "audit.append_in_doubt");
    assert_eq!(note["data"]["committed_but_refused"][0]["seq"], 1);
    assert_eq!(
        note["data"]["committed_but_refused"][0]["type"],
        "test.slow"
    );
    assert_gapless(&pool, &chain, 3).await;
}
