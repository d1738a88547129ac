//! audit-bench: append N events from C concurrent writers spread over P
//! independent store instances (as P gateway replicas would), then print
//! throughput, append latency (p50/p99), group-commit batch sizes, and the
//! verify rate over the result. Figures are printed, never asserted.
//!
//! The verification pass is `verify-chain`'s over the whole chain, with the
//! keys given (`--key`) or else the keys the chain published, so it also
//! runs against a live gateway's database, whose checkpoints the gateway signed.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use events::store::{self, Appender, AppenderConfig, AppenderMetrics, BatchStats, NoHook};
use events::{Actor, Draft, Source};
use hdrhistogram::Histogram;
use sqlx::{Connection, Executor, PgConnection};
use verify_chain::database::DatabaseSource;

#[derive(Debug, Parser)]
#[command(
    name = "audit-bench",
    about = "Benchmark the audit chain's group-commit appender and verification"
)]
struct Cli {
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Events to append in total.
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    /// Concurrent writer tasks.
    #[arg(long, default_value_t = 64)]
    writers: u64,
    /// Independent store instances (each its own appender and connection).
    #[arg(long, default_value_t = 1)]
    instances: u64,
    /// Run in a new database created next to DATABASE_URL's, dropped afterwards.
    #[arg(long)]
    fresh: bool,
    /// Skip the verification pass.
    #[arg(long)]
    no_verify: bool,
    /// A verifier key (`name+hexid+base64`, or a file holding one) to check
    /// checkpoints with, instead of the keys the chain published. Repeatable.
    #[arg(long = "key", value_name = "VKEY")]
    keys: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    anyhow::ensure!(
        cli.writers > 0 && cli.instances > 0 && cli.events > 0,
        "events, writers and instances must be positive"
    );
    let (url, cleanup) = if cli.fresh {
        fresh_database(&cli.database_url).await?
    } else {
        (cli.database_url.clone(), None)
    };
    let result = bench(&cli, &url).await;
    if let Some((admin, name)) = cleanup {
        let mut conn = PgConnection::connect(&admin).await?;
        conn.execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str())
            .await?;
    }
    result
}

async fn fresh_database(url: &str) -> anyhow::Result<(String, Option<(String, String)>)> {
    let name = format!("audit_bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(url).await.context("connect")?;
    conn.execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
        .await?;
    let mut fresh = url::Url::parse(url)?;
    fresh.set_path(&format!("/{name}"));
    Ok((fresh.to_string(), Some((url.to_owned(), name))))
}

async fn bench(cli: &Cli, url: &str) -> anyhow::Result<()> {
    let pool = store::connect_pool(url, 4).await?;
    store::migrate(&pool).await?;
    let chain = store::ensure_chain_id(&pool).await?;
    let start_head = store::head(&pool, &chain).await?.map(|h| h.0).unwrap_or(0);
    let instances: Vec<(Appender, AppenderMetrics)> = (0..cli.instances)
        .map(|i| {
            let metrics = AppenderMetrics::default();
            let (appender, _task) = Appender::spawn(
                store::connect_options(url).expect("validated above"),
                AppenderConfig {
                    chain: chain.clone(),
                    instance: format!("audit-bench-{i}"),
                    append_timeout: Duration::from_secs(30),
                },
                Arc::new(NoHook),
                metrics.clone(),
            );
            (appender, metrics)
        })
        .collect();

    println!(
        "audit-bench: {} events, {} writers, {} instance(s), chain {chain} (head before: {start_head})",
        cli.events, cli.writers, cli.instances
    );
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..cli.writers {
        let appender = instances[(w % cli.instances) as usize].0.clone();
        // Spread the remainder so exactly `events` are appended.
        let count = cli.events / cli.writers + u64::from(w < cli.events % cli.writers);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Histogram::<u64>::new(3).expect("histogram");
            for n in 0..count {
                let draft = Draft::new(
                    "bench.event",
                    Actor::system(format!("writer-{w}")),
                    serde_json::json!({ "writer": w, "n": n, "path": "/apps/myapp/processes", "status": 200 }),
                )
                .with_source(Source {
                    ip: Some("127.0.0.1".into()),
                    user_agent: Some("audit-bench".into()),
                    request_id: Some(uuid::Uuid::new_v4().to_string()),
                    instance: None,
                });
                let t = Instant::now();
                appender.append(draft).await?;
                latencies.record(t.elapsed().as_micros() as u64).ok();
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Histogram::<u64>::new(3)?;
    for task in tasks {
        latencies.add(task.await??)?;
    }
    let elapsed = started.elapsed();
    println!(
        "append: {:.0} events/s ({} events in {:.2}s); latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        cli.events as f64 / elapsed.as_secs_f64(),
        cli.events,
        elapsed.as_secs_f64(),
        latencies.value_at_quantile(0.50) as f64 / 1000.0,
        latencies.value_at_quantile(0.99) as f64 / 1000.0,
        latencies.max() as f64 / 1000.0,
    );
    for (i, (_, metrics)) in instances.iter().enumerate() {
        print_batches(i, metrics.batch_stats());
    }

    if !cli.no_verify {
        verify(cli, url, &chain).await?;
    }
    Ok(())
}

/// The verification pass: the whole chain, as `verify-chain --database-url` checks it.
async fn verify(cli: &Cli, url: &str, chain: &str) -> anyhow::Result<()> {
    let trusted = verify_chain::parse_keys(&cli.keys)?;
    let source = DatabaseSource::connect(url, Some(chain.to_owned())).await?;
    let (keys, keys_trusted) = source.keys(trusted).await?;
    let t = Instant::now();
    let summary = match source.verify(keys, false).await? {
        Ok(summary) => summary,
        Err((failure, _)) => anyhow::bail!("verification failed: {failure}"),
    };
    let secs = t.elapsed().as_secs_f64();
    println!(
        "verify: {:.0} events/s ({} events in {secs:.2}s, whole chain; {} checkpoints, keys {})",
        summary.events as f64 / secs,
        summary.events,
        summary.checkpoints,
        if keys_trusted {
            "given with --key"
        } else {
            "published by the chain"
        }
    );
    Ok(())
}

fn print_batches(instance: usize, stats: &BatchStats) {
    let batches = stats.batches.load(Ordering::Relaxed).max(1);
    let events = stats.events.load(Ordering::Relaxed);
    let buckets: Vec<String> = BatchStats::BUCKETS
        .iter()
        .zip(&stats.by_size)
        .map(|(label, n)| format!("{label}:{}", n.load(Ordering::Relaxed)))
        .collect();
    println!(
        "instance {instance}: {batches} commits, mean batch {:.1} events, largest {}; batches by size {}",
        events as f64 / batches as f64,
        stats.largest.load(Ordering::Relaxed),
        buckets.join(" ")
    );
}
