//! `verify-chain --database-url` against real databases: a clean chain
//! verifies (exit 0), and every tampering an attacker with database access
//! could try makes it exit 1 naming the check and the seq.

use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use events::checkpoint::Checkpoint;
use events::merkle::{leaf_hash, CompactRange};
use events::note::Signer;
use events::store::{self, Appender, AppenderConfig, AppenderMetrics, NoHook};
use events::{Actor, Draft, Event};
use serde_json::{json, Value};
use sqlx::{Executor, PgPool};

const VERIFY: &str = env!("CARGO_BIN_EXE_verify-chain");

struct Fixture {
    db: testkit::TestDatabase,
    pool: PgPool,
    chain: String,
    signer: Signer,
    vkey: String,
}

fn appender(url: &str, chain: &str, instance: &str) -> Appender {
    Appender::spawn(
        store::connect_options(url).unwrap(),
        AppenderConfig {
            chain: chain.into(),
            instance: instance.into(),
            append_timeout: Duration::from_secs(30),
        },
        Arc::new(NoHook),
        AppenderMetrics::default(),
    )
    .0
}

/// A chain of `n` events with signed checkpoints at each size in `checkpoint_sizes`.
async fn fixture(n: u64, checkpoint_sizes: &[u64]) -> Fixture {
    let db = testkit::fresh_database().await;
    let pool = db.pool().await;
    store::migrate(&pool).await.unwrap();
    let chain = store::ensure_chain_id(&pool).await.unwrap();
    let writer = appender(&db.url, &chain, "fixture");
    for i in 0..n {
        writer
            .append(Draft::new(
                "test.event",
                Actor::system("fixture"),
                json!({ "i": i }),
            ))
            .await
            .unwrap();
    }
    let (skey, vkey) = events::note::generate_key("test-auditor-key").unwrap();
    let signer = Signer::from_skey(&skey).unwrap();
    let fixture = Fixture {
        db,
        pool,
        chain,
        signer,
        vkey,
    };
    for size in checkpoint_sizes {
        let note = fixture.sign_checkpoint(*size).await;
        sqlx::query("INSERT INTO checkpoints (chain, size, note) VALUES ($1, $2, $3)")
            .bind(&fixture.chain)
            .bind(*size as i64)
            .bind(note)
            .execute(&fixture.pool)
            .await
            .unwrap();
    }
    fixture
}

impl Fixture {
    async fn rows(&self) -> Vec<(Vec<u8>, String)> {
        sqlx::query_as("SELECT canonical, hash FROM events ORDER BY seq")
            .fetch_all(&self.pool)
            .await
            .unwrap()
    }

    async fn sign_checkpoint(&self, size: u64) -> String {
        let rows = self.rows().await;
        let mut tree = CompactRange::new();
        for (canonical, _) in &rows[..size as usize] {
            tree.push(leaf_hash(canonical));
        }
        Checkpoint {
            origin: Checkpoint::origin_for_chain(&self.chain),
            size,
            root: tree.root(),
            head: rows[size as usize - 1].1.clone(),
        }
        .sign(&self.signer)
        .unwrap()
    }

    fn verify(&self, extra: &[&str]) -> Output {
        let mut args = vec!["--database-url", self.db.url.as_str()];
        args.extend_from_slice(extra);
        std::process::Command::new(VERIFY)
            .args(&args)
            .output()
            .unwrap()
    }

    fn verify_json(&self) -> (i32, Value) {
        let out = self.verify(&["--json", "--key", &self.vkey]);
        let text = String::from_utf8_lossy(&out.stdout);
        let value = serde_json::from_str(text.trim())
            .unwrap_or_else(|e| panic!("--json output is one JSON object ({e}): {text}"));
        (out.status.code().unwrap_or(-1), value)
    }

    /// Run SQL as an attacker with superuser access would: around the append-only triggers.
    async fn tamper(&self, statements: &[String]) {
        let mut conn = self.pool.acquire().await.unwrap();
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

    async fn event(&self, seq: i64) -> Event {
        let (canonical, hash): (Vec<u8>, String) =
            sqlx::query_as("SELECT canonical, hash FROM events WHERE seq = $1")
                .bind(seq)
                .fetch_one(&self.pool)
                .await
                .unwrap();
        Event::from_canonical(&canonical, &hash).unwrap()
    }

    /// Replace event `seq` with `event` (bytes and hash as given).
    fn replace(&self, seq: u64, event: &Event) -> String {
        format!(
            "UPDATE events SET canonical = decode('{}', 'hex'), hash = '{}' WHERE seq = {seq}",
            hex::encode(event.canonical_bytes()),
            event.hash
        )
    }
}

fn assert_failure(result: (i32, Value), check: u64, seq: Option<u64>) -> Value {
    let (code, value) = result;
    assert_eq!(code, 1, "exit 1 for an integrity failure: {value}");
    assert_eq!(value["ok"], false, "{value}");
    assert_eq!(value["check"], check, "{value}");
    if let Some(seq) = seq {
        assert_eq!(value["seq"], seq, "{value}");
    }
    for field in ["expected", "found", "message"] {
        assert!(value[field].is_string(), "{field} in {value}");
    }
    value
}

#[tokio::test]
async fn a_clean_chain_verifies_with_a_summary() {
    let f = fixture(40, &[10, 20, 30]).await;
    let (code, value) = f.verify_json();
    assert_eq!(code, 0, "{value}");
    assert_eq!(value["ok"], true);
    assert_eq!(value["events"], 40);
    assert_eq!(value["head_seq"], 40);
    assert_eq!(value["head_hash"], f.rows().await[39].1);
    assert_eq!(value["checkpoint_size"], 30);
    assert_eq!(value["checkpoints"], 3);
    assert_eq!(value["keys_trusted"], true);

    let text = f.verify(&["--key", &f.vkey]);
    assert_eq!(text.status.code(), Some(0));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("verified") && text.contains("newest size 30"),
        "{text}"
    );
}

#[tokio::test]
async fn without_a_key_it_uses_the_published_key_and_says_so() {
    let f = fixture(12, &[10]).await;
    // The gateway publishes its verifier key in gateway.started.
    let writer = appender(&f.db.url, &f.chain, "gw");
    writer
        .append(Draft::new(
            "gateway.started",
            Actor::system("gateway"),
            json!({ "checkpoint_vkey": f.vkey }),
        ))
        .await
        .unwrap();
    let out = f.verify(&[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("NOT independently trusted"));
    let out = f.verify(&["--json"]);
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["keys_trusted"], false);
}

#[tokio::test]
async fn a_changed_byte_is_check_1_at_its_seq() {
    let f = fixture(40, &[10, 20, 30]).await;
    // Flip one character of event 15's payload, keeping its stored hash.
    f.tamper(&["UPDATE events SET canonical = overlay(canonical placing convert_to('9', 'UTF8') from position(convert_to('\"i\":14', 'UTF8') in canonical) + 4 for 1) WHERE seq = 15".into()])
        .await;
    assert_failure(f.verify_json(), 1, Some(15));
}

#[tokio::test]
async fn a_changed_event_with_its_own_hash_recomputed_breaks_the_next_link() {
    let f = fixture(40, &[10, 20, 30]).await;
    let mut e = f.event(15).await;
    e.data = json!({ "i": 999 });
    e.hash = e.computed_hash();
    f.tamper(&[f.replace(15, &e)]).await;
    let v = assert_failure(f.verify_json(), 2, Some(16));
    assert!(v["message"].as_str().unwrap().contains("prev"), "{v}");
}

#[tokio::test]
async fn a_deleted_row_is_a_gap() {
    let f = fixture(40, &[10, 20, 30]).await;
    f.tamper(&["DELETE FROM events WHERE seq = 15".into()])
        .await;
    assert_failure(f.verify_json(), 2, Some(15));
}

#[tokio::test]
async fn two_swapped_rows_are_caught() {
    let f = fixture(40, &[10, 20, 30]).await;
    f.tamper(&[
        "UPDATE events SET seq = 1000000 WHERE seq = 15".into(),
        "UPDATE events SET seq = 15 WHERE seq = 16".into(),
        "UPDATE events SET seq = 16 WHERE seq = 1000000".into(),
    ])
    .await;
    let (code, value) = f.verify_json();
    assert_eq!(code, 1, "{value}");
    assert_eq!(value["seq"], 15, "{value}");
    assert!(value["check"] == 1 || value["check"] == 2, "{value}");
}

#[tokio::test]
async fn a_tail_truncated_below_the_newest_checkpoint_is_check_3() {
    let f = fixture(40, &[10, 20, 30]).await;
    f.tamper(&["DELETE FROM events WHERE seq > 25".into()])
        .await;
    let v = assert_failure(f.verify_json(), 3, Some(26));
    assert!(v["message"].as_str().unwrap().contains("trunc"), "{v}");
}

#[tokio::test]
async fn a_non_json_row_is_check_1() {
    let f = fixture(20, &[10]).await;
    f.tamper(&[
        "UPDATE events SET canonical = convert_to('not json at all', 'UTF8') WHERE seq = 7".into(),
    ])
    .await;
    assert_failure(f.verify_json(), 1, Some(7));
}

#[tokio::test]
async fn a_row_with_wrong_types_or_missing_fields_is_check_1() {
    let f = fixture(20, &[10]).await;
    let e = f.event(8).await;
    let text = String::from_utf8(e.canonical_bytes()).unwrap();
    let broken = text.replace("\"seq\":8", "\"seq\":\"8\"");
    f.tamper(&[format!(
        "UPDATE events SET canonical = convert_to('{}', 'UTF8') WHERE seq = 8",
        broken.replace('\'', "''")
    )])
    .await;
    assert_failure(f.verify_json(), 1, Some(8));
}

#[tokio::test]
async fn a_corrupted_checkpoint_signature_is_check_3() {
    let f = fixture(20, &[10]).await;
    let note: String = sqlx::query_scalar("SELECT note FROM checkpoints WHERE size = 10")
        .fetch_one(&f.pool)
        .await
        .unwrap();
    // Change one base64 character of the signature line.
    let sig_line = note.lines().last().unwrap();
    let last = sig_line.chars().nth(sig_line.len() - 4).unwrap();
    let replacement = if last == 'A' { 'B' } else { 'A' };
    let mut corrupted_line = sig_line.to_owned();
    corrupted_line.replace_range(
        sig_line.len() - 4..sig_line.len() - 3,
        &replacement.to_string(),
    );
    let corrupted = note.replace(sig_line, &corrupted_line);
    f.tamper(&[format!(
        "UPDATE checkpoints SET note = '{}' WHERE size = 10",
        corrupted.replace('\'', "''")
    )])
    .await;
    let v = assert_failure(f.verify_json(), 3, None);
    assert!(
        v["object"].as_str().unwrap().contains("checkpoint 10"),
        "{v}"
    );
}

#[tokio::test]
async fn bad_base64_in_a_note_is_check_3() {
    let f = fixture(20, &[10]).await;
    f.tamper(&[
        "UPDATE checkpoints SET note = regexp_replace(note, '— (\\S+) (\\S+)\\n$', '— \\1 !!!not-base64!!!\n') WHERE size = 10".into(),
    ])
    .await;
    assert_failure(f.verify_json(), 3, None);
}

#[tokio::test]
async fn a_checkpoint_signed_by_an_untrusted_key_is_check_3() {
    let f = fixture(20, &[10]).await;
    let (_, other_vkey) = events::note::generate_key("someone-else").unwrap();
    let out = f.verify(&["--json", "--key", &other_vkey]);
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_failure((out.status.code().unwrap(), value), 3, None);
}

#[tokio::test]
async fn a_consistent_rewrite_of_the_tail_is_caught_by_the_checkpoint() {
    let f = fixture(40, &[10, 20, 30]).await;
    // Rewrite events 22..=40 with new content, re-linking and re-hashing every one.
    let mut prev = f.event(21).await.hash;
    let mut statements = Vec::new();
    for seq in 22..=40 {
        let mut e = f.event(seq).await;
        e.data = json!({ "i": "rewritten" });
        e.prev = prev.clone();
        e.hash = e.computed_hash();
        prev = e.hash.clone();
        statements.push(f.replace(seq as u64, &e));
    }
    f.tamper(&statements).await;
    let v = assert_failure(f.verify_json(), 3, Some(30));
    assert!(v["message"].as_str().unwrap().contains("root"), "{v}");
}

#[tokio::test]
async fn connection_and_usage_errors_exit_2() {
    let port = testkit::free_port();
    let out = std::process::Command::new(VERIFY)
        .args([
            "--database-url",
            &format!("postgres://postgres@127.0.0.1:{port}/x"),
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["ok"], false);
    assert!(value["error"].as_str().unwrap().contains("database"));
    let out = std::process::Command::new(VERIFY).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = std::process::Command::new(VERIFY)
        .args([
            "--database-url",
            "postgres://x@127.0.0.1:1/x",
            "--key",
            "not-a-key",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a verifier key"));
}

/// The load test: 2 store instances × 32 concurrent writers × 5,000
/// events make one gapless chain, and verify-chain proves it.
#[tokio::test]
async fn two_instances_of_32_writers_verify() {
    const INSTANCES: usize = 2;
    const WRITERS: usize = 32;
    const PER_WRITER: u64 = 5_000;
    let f = fixture(0, &[]).await;
    let writers: Vec<Appender> = (0..INSTANCES)
        .map(|i| appender(&f.db.url, &f.chain, &format!("instance-{i}")))
        .collect();
    let mut tasks = Vec::new();
    for (i, writer) in writers.iter().enumerate() {
        for w in 0..WRITERS {
            let writer = writer.clone();
            tasks.push(tokio::spawn(async move {
                for n in 0..PER_WRITER {
                    writer
                        .append(Draft::new(
                            "test.event",
                            Actor::system(format!("writer-{i}-{w}")),
                            json!({ "n": n }),
                        ))
                        .await
                        .expect("append");
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let total = INSTANCES as u64 * WRITERS as u64 * PER_WRITER;
    let size = total - 7;
    let note = f.sign_checkpoint(size).await;
    sqlx::query("INSERT INTO checkpoints (chain, size, note) VALUES ($1, $2, $3)")
        .bind(&f.chain)
        .bind(size as i64)
        .bind(note)
        .execute(&f.pool)
        .await
        .unwrap();
    let (code, value) = f.verify_json();
    assert_eq!(code, 0, "{value}");
    assert_eq!(value["events"], total);
    assert_eq!(value["head_seq"], total);
    assert_eq!(value["checkpoint_size"], size);
}
