//! `proxy-bench`: what the gateway costs per request. Starts a mock rack
//! in-process and `rack-gateway-server serve` as a subprocess (found next to
//! this executable), then sends the same requests at the same concurrency
//! directly to the rack and through the gateway, and prints latency (p50,
//! p99) and throughput for both, and their ratio. Loopback only, bounded.
//!
//! ```text
//! proxy-bench --database-url postgres://postgres@127.0.0.1:55432/proxy_bench \
//!             [--requests 2000] [--concurrency 1,64] [--path /apps]
//! ```
//!
//! The database is used as given (the gateway migrates it and appends its
//! events there): point it at a scratch database. Every gateway request
//! commits two audit events (`proxy.request` before, `proxy.response`
//! after), so the figures include Postgres commits, as in production.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use base64::Engine as _;
use clap::Parser;
use hdrhistogram::Histogram;
use tools::mock_rack::{MockRack, MockRackConfig};

#[derive(Parser, Debug)]
#[command(
    name = "proxy-bench",
    about = "Latency and throughput: direct to a mock rack vs through the gateway"
)]
struct Args {
    /// A scratch Postgres database for the gateway's events.
    #[arg(long, env = "PROXY_BENCH_DATABASE_URL")]
    database_url: String,
    /// Requests per run (each concurrency, each target).
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Concurrency levels, comma-separated.
    #[arg(long, default_value = "1,64", value_delimiter = ',')]
    concurrency: Vec<usize>,
    /// The rack API path requested (a GET).
    #[arg(long, default_value = "/apps")]
    path: String,
    /// `rack-gateway-server` to run (default: next to this executable).
    #[arg(long)]
    server_bin: Option<PathBuf>,
}

/// The largest concurrency accepted: this is a loopback bench, not a load generator.
const MAX_CONCURRENCY: usize = 256;
const MAX_REQUESTS: usize = 200_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args
        .concurrency
        .iter()
        .any(|c| *c == 0 || *c > MAX_CONCURRENCY)
    {
        bail!("--concurrency values must be 1..={MAX_CONCURRENCY}");
    }
    if args.requests == 0 || args.requests > MAX_REQUESTS {
        bail!("--requests must be 1..={MAX_REQUESTS}");
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server_bin = match args.server_bin.clone() {
        Some(path) => path,
        None => std::env::current_exe()?
            .parent()
            .context("this executable has no directory")?
            .join("rack-gateway-server"),
    };
    if !server_bin.is_file() {
        bail!(
            "{} not found: build it (cargo build --release -p gateway) or pass --server-bin",
            server_bin.display()
        );
    }

    let rack_password = random_token();
    let rack = MockRack::bind(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        MockRackConfig {
            password: rack_password.clone(),
            ..MockRackConfig::default()
        },
    )
    .await?
    .spawn();
    let rack_url = rack.url();

    let scratch = tempfile_dir()?;
    let key_file = scratch.join("checkpoint.key");
    let base_env = |cmd: &mut Command| {
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATABASE_URL", &args.database_url)
            .env("CHECKPOINT_SIGNING_KEY_FILE", &key_file)
            .env("RGW_ENV_FILE", "/nonexistent/.env")
            .env("USER", "proxy-bench")
            .env("LOG_LEVEL", "warn");
    };
    let mut keygen = Command::new(&server_bin);
    keygen
        .args(["keygen", "--name", "proxy-bench", "--out"])
        .arg(&key_file);
    base_env(&mut keygen);
    run_ok(&mut keygen, "keygen")?;
    let mut migrate = Command::new(&server_bin);
    migrate.arg("migrate");
    base_env(&mut migrate);
    run_ok(&mut migrate, "migrate")?;
    let token_name = format!("proxy-bench-{}", &random_token()[..12]);
    let mut create = Command::new(&server_bin);
    create.args([
        "token",
        "create",
        "--name",
        &token_name,
        "--role",
        "admin",
        "--output",
        "token",
    ]);
    base_env(&mut create);
    let token = run_ok(&mut create, "token create")?.trim().to_owned();

    let port = free_port()?;
    let mut serve = Command::new(&server_bin);
    serve.arg("serve");
    base_env(&mut serve);
    serve
        .env("PORT", port.to_string())
        .env("BIND_ADDRESS", "127.0.0.1")
        .env("RACK_HOST", &rack_url)
        .env("RACK_TOKEN", &rack_password)
        .env("RACK_NAME", "bench")
        .env("APP_SECRET_KEY", random_token())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let gateway = Gateway(serve.spawn().context("start rack-gateway-server serve")?);
    let gateway_url = format!("http://127.0.0.1:{port}");
    wait_healthy(&gateway_url).await?;

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(MAX_CONCURRENCY)
        .timeout(Duration::from_secs(30))
        .build()?;
    let direct = Target {
        url: format!("{rack_url}{}", args.path),
        authorization: basic(&format!("convox:{rack_password}")),
    };
    let through = Target {
        url: format!("{gateway_url}/api/v1/rack-proxy{}", args.path),
        authorization: basic(&format!("convox:{token}")),
    };

    println!(
        "proxy-bench: GET {} x {} requests per run; mock rack {rack_url}; gateway {gateway_url} (pid {})",
        args.path,
        args.requests,
        gateway.0.id()
    );
    println!(
        "{:>5}  {:<8} {:>10} {:>10} {:>10} {:>12}",
        "conc", "target", "p50 µs", "p99 µs", "max µs", "req/s"
    );
    for &concurrency in &args.concurrency {
        // Warm both paths (connections, caches) before measuring.
        run(&client, &direct, 50.min(args.requests), concurrency).await?;
        run(&client, &through, 50.min(args.requests), concurrency).await?;
        let d = run(&client, &direct, args.requests, concurrency).await?;
        let g = run(&client, &through, args.requests, concurrency).await?;
        for (name, r) in [("direct", &d), ("gateway", &g)] {
            println!(
                "{concurrency:>5}  {name:<8} {:>10} {:>10} {:>10} {:>12.0}",
                r.latency.value_at_quantile(0.50),
                r.latency.value_at_quantile(0.99),
                r.latency.max(),
                r.throughput()
            );
        }
        println!(
            "{concurrency:>5}  ratio    p50 x{:.2}  p99 x{:.2}  throughput gateway/direct {:.3}",
            g.latency.value_at_quantile(0.50) as f64
                / d.latency.value_at_quantile(0.50).max(1) as f64,
            g.latency.value_at_quantile(0.99) as f64
                / d.latency.value_at_quantile(0.99).max(1) as f64,
            g.throughput() / d.throughput()
        );
    }

    drop(gateway);
    rack.shutdown().await?;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

struct Target {
    url: String,
    authorization: String,
}

struct RunResult {
    latency: Histogram<u64>,
    elapsed: Duration,
    requests: usize,
}

impl RunResult {
    fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

/// `requests` GETs, `concurrency` at a time; every answer must be 200.
async fn run(
    client: &reqwest::Client,
    target: &Target,
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<RunResult> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let url = target.url.clone();
        let authorization = target.authorization.clone();
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            let mut latency = Histogram::<u64>::new(3)?;
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < requests {
                let t = Instant::now();
                let response = client
                    .get(&url)
                    .header("Authorization", &authorization)
                    .send()
                    .await?;
                let status = response.status();
                let _ = response.bytes().await?;
                if status != 200 {
                    bail!("{url} answered {status}");
                }
                latency.record(t.elapsed().as_micros() as u64)?;
            }
            Ok::<_, anyhow::Error>(latency)
        }));
    }
    let mut latency = Histogram::<u64>::new(3)?;
    for worker in workers {
        latency.add(worker.await??)?;
    }
    Ok(RunResult {
        latency,
        elapsed: started.elapsed(),
        requests,
    })
}

/// The gateway subprocess, stopped with SIGTERM (then killed) when dropped.
struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_healthy(url: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(r) = client.get(format!("{url}/ready")).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the gateway at {url} did not become ready within 30s")
}

fn run_ok(command: &mut Command, what: &str) -> anyhow::Result<String> {
    let output = command.output().with_context(|| format!("run {what}"))?;
    if !output.status.success() {
        bail!(
            "{what} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn basic(user_pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_pass)
    )
}

fn random_token() -> String {
    let mut bytes = [0u8; 24];
    let _ = getrandom::getrandom(&mut bytes);
    hex::encode(bytes)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("proxy-bench-{}", &random_token()[..12]));
    std::fs::create_dir_all(&dir)?;
    set_private(&dir);
    Ok(dir)
}

#[cfg(unix)]
fn set_private(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
}

#[cfg(not(unix))]
fn set_private(_: &Path) {}
