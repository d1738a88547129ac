//! `audit-bench`'s verification pass over a database a gateway signed: the
//! gateway publishes its verifier key in `gateway.started` and signs
//! checkpoints with it, so the bench verifies with the keys the chain
//! published (as `verify-chain` does without `--key`) or with `--key`, and
//! still refuses a checkpoint no such key signed.

use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use events::checkpoint::Checkpoint;
use events::merkle::{leaf_hash, CompactRange};
use events::note::Signer;
use events::store::{self, Appender, AppenderConfig, AppenderMetrics, NoHook};
use events::{Actor, Draft};
use serde_json::json;
use sqlx::PgPool;

const BENCH: &str = env!("CARGO_BIN_EXE_audit-bench");

/// Events the bench appends on top of the signed chain.
const BENCH_EVENTS: u64 = 40;

struct SignedChain {
    db: testkit::TestDatabase,
    pool: PgPool,
    chain: String,
    vkey: String,
}

/// A chain as a gateway leaves it: `gateway.started` with its verifier key,
/// `n` more events, and checkpoints signed with that key at `sizes`.
async fn signed_chain(n: u64, sizes: &[u64]) -> SignedChain {
    let db = testkit::fresh_database().await;
    let pool = db.pool().await;
    store::migrate(&pool).await.unwrap();
    let chain = store::ensure_chain_id(&pool).await.unwrap();
    let (skey, vkey) = events::note::generate_key("rack-gateway-test").unwrap();
    let signer = Signer::from_skey(&skey).unwrap();
    let (writer, _task) = Appender::spawn(
        store::connect_options(&db.url).unwrap(),
        AppenderConfig {
            chain: chain.clone(),
            instance: "gateway-test".into(),
            append_timeout: Duration::from_secs(30),
        },
        Arc::new(NoHook),
        AppenderMetrics::default(),
    );
    writer
        .append(Draft::new(
            "gateway.started",
            Actor::system("gateway"),
            json!({ "checkpoint_key": "rack-gateway-test", "checkpoint_vkey": vkey }),
        ))
        .await
        .unwrap();
    for i in 0..n {
        writer
            .append(Draft::new(
                "test.event",
                Actor::system("gateway"),
                json!({ "i": i }),
            ))
            .await
            .unwrap();
    }
    let signed = SignedChain {
        db,
        pool,
        chain,
        vkey,
    };
    for &size in sizes {
        signed.add_checkpoint(size, &signer).await;
    }
    signed
}

impl SignedChain {
    async fn add_checkpoint(&self, size: u64, signer: &Signer) {
        let rows: Vec<(Vec<u8>, String)> =
            sqlx::query_as("SELECT canonical, hash FROM events ORDER BY seq LIMIT $1")
                .bind(size as i64)
                .fetch_all(&self.pool)
                .await
                .unwrap();
        let mut tree = CompactRange::new();
        for (canonical, _) in &rows {
            tree.push(leaf_hash(canonical));
        }
        let note = Checkpoint {
            origin: Checkpoint::origin_for_chain(&self.chain),
            size,
            root: tree.root(),
            head: rows[size as usize - 1].1.clone(),
        }
        .sign(signer)
        .unwrap();
        sqlx::query("INSERT INTO checkpoints (chain, size, note) VALUES ($1, $2, $3)")
            .bind(&self.chain)
            .bind(size as i64)
            .bind(note)
            .execute(&self.pool)
            .await
            .unwrap();
    }

    fn bench(&self, extra: &[&str]) -> Output {
        let events = BENCH_EVENTS.to_string();
        let mut args = vec![
            "--database-url",
            self.db.url.as_str(),
            "--events",
            &events,
            "--writers",
            "4",
        ];
        args.extend_from_slice(extra);
        std::process::Command::new(BENCH)
            .args(&args)
            .output()
            .unwrap()
    }
}

fn verify_line(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "audit-bench failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find(|l| l.starts_with("verify: "))
        .unwrap_or_else(|| panic!("no verify line in: {stdout}"))
        .to_owned()
}

#[tokio::test]
async fn verifies_a_gateway_signed_chain_with_the_keys_it_published() {
    let chain = signed_chain(11, &[5, 11]).await;
    let line = verify_line(&chain.bench(&[]));
    // 1 gateway.started + 11 events before, then the bench's own.
    let total = 1 + 11 + BENCH_EVENTS;
    assert!(
        line.contains(&format!("({total} events in ")),
        "every event verified: {line}"
    );
    assert!(line.contains("2 checkpoints"), "{line}");
    assert!(line.contains("keys published by the chain"), "{line}");
}

#[tokio::test]
async fn a_key_given_with_key_is_used_instead() {
    let chain = signed_chain(8, &[7]).await;
    let line = verify_line(&chain.bench(&["--key", &chain.vkey]));
    assert!(line.contains("1 checkpoints"), "{line}");
    assert!(line.contains("keys given with --key"), "{line}");

    let (_, stranger) = events::note::generate_key("someone-else").unwrap();
    let out = chain.bench(&["--key", &stranger]);
    assert!(
        !out.status.success(),
        "a key that signed nothing is refused"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("verification failed"), "{stderr}");
}

#[tokio::test]
async fn a_checkpoint_no_published_key_signed_still_fails() {
    let chain = signed_chain(11, &[6]).await;
    let (skey, _) = events::note::generate_key("not-published").unwrap();
    chain
        .add_checkpoint(9, &Signer::from_skey(&skey).unwrap())
        .await;
    let out = chain.bench(&[]);
    assert!(!out.status.success(), "an unpublished signer is refused");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("verification failed") && stderr.contains("check 3"),
        "{stderr}"
    );
}
