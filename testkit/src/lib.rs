//! Test support shared by every crate's integration tests.
//!
//! - [`fresh_database`]: a brand-new Postgres database per test (so tests run in
//!   parallel), created on the private server that `./scripts/test` starts and
//!   dropped when the guard goes out of scope.
//! - [`convox_bin`]: the real `convox` CLI, found the documented way.
//! - [`ChildGuard`]: a child process killed when the test ends, pass or fail.
//! - [`workspace_bin`]: a binary of this workspace, built by `cargo build`.

use std::path::{Path, PathBuf};
use std::process::Child;

use sqlx::{Connection, Executor, PgConnection};

/// Where `./scripts/test` publishes its private server (a maintenance URL, usually `/postgres`).
pub const TEST_DATABASE_ENV: &str = "RGW_TEST_DATABASE_URL";

/// A database that exists for one test. Dropping it removes the database.
pub struct TestDatabase {
    pub url: String,
    pub name: String,
    admin_url: String,
}

impl TestDatabase {
    pub async fn pool(&self) -> sqlx::PgPool {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(8)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("connect to test database {}: {e}", self.name))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside or outside a runtime; a short-lived thread with its own runtime works in both.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async move {
                    if let Ok(mut conn) = PgConnection::connect(&admin_url).await {
                        let _ = conn
                            .execute(
                                format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#)
                                    .as_str(),
                            )
                            .await;
                    }
                });
            }
        })
        .join();
    }
}

/// The server URL from the environment, or a panic that says how to get one.
pub fn admin_database_url() -> String {
    std::env::var(TEST_DATABASE_ENV).unwrap_or_else(|_| {
        panic!(
            "{TEST_DATABASE_ENV} is not set: database tests need the private Postgres that \
             ./scripts/test starts (run ./scripts/test, or export {TEST_DATABASE_ENV} yourself)"
        )
    })
}

/// Create an empty database (no migrations) named after the test.
pub async fn fresh_database() -> TestDatabase {
    let admin_url = admin_database_url();
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("connect to {TEST_DATABASE_ENV}: {e}"));
    conn.execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
        .await
        .unwrap_or_else(|e| panic!("create database {name}: {e}"));
    let mut url = url::Url::parse(&admin_url).expect("RGW_TEST_DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    TestDatabase {
        url: url.to_string(),
        name,
        admin_url,
    }
}

/// The repository root (the directory holding the workspace `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives one level below the workspace root")
        .to_path_buf()
}

/// The real `convox` CLI: `CONVOX_BIN`, then `../shared/bin/convox`, then `PATH`.
/// `None` means the real-CLI tests must say loudly that they were skipped.
pub fn convox_bin() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("CONVOX_BIN") {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Some(path);
        }
    }
    let shared = workspace_root().join("../shared/bin/convox");
    if shared.is_file() {
        return Some(shared);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("convox"))
            .find(|candidate| candidate.is_file())
    })
}

/// Print the loud skip notice real-CLI tests use when no `convox` exists.
pub fn skip_without_convox(test: &str) -> Option<PathBuf> {
    let found = convox_bin();
    if found.is_none() {
        eprintln!(
            "\n=== SKIPPED {test}: no real convox CLI (set CONVOX_BIN, or provide ../shared/bin/convox or convox on PATH) ===\n"
        );
    }
    found
}

/// A path to a binary of this workspace in the current target directory.
/// Integration tests of the crate that owns the binary should prefer `env!("CARGO_BIN_EXE_<name>")`.
pub fn workspace_bin(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    target.join(profile).join(name)
}

/// A child process that is killed and reaped when dropped.
pub struct ChildGuard(pub Child);

impl ChildGuard {
    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A Postgres server of the test's own, which the test can stop and start again
/// (fail-closed tests need the real thing to go away, not a shared server).
pub struct PrivatePostgres {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

impl PrivatePostgres {
    /// initdb + start on a free loopback port; as the `postgres` user when running as root.
    pub fn start() -> PrivatePostgres {
        let bin = postgres_bin_dir();
        let dir = std::env::temp_dir().join(format!("rgw-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create private Postgres dir");
        let data = dir.join("data");
        if running_as_root() {
            run_checked(
                std::process::Command::new("chown")
                    .arg("postgres:")
                    .arg(&dir),
            );
            run_checked(std::process::Command::new("chmod").arg("755").arg(&dir));
        }
        run_checked(postgres_command(&bin, "initdb").args([
            "-D",
            &data.to_string_lossy(),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        ]));
        let pg = PrivatePostgres {
            dir,
            bin,
            port: free_port(),
        };
        pg.start_again();
        pg
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stop at once, as a crash or an outage would.
    pub fn stop(&self) {
        self.stop_with("immediate");
    }

    /// Stop with `pg_ctl`'s shutdown `mode`: `fast` (clients disconnected,
    /// a clean shutdown) or `immediate` (a crash: recovery at the next start).
    pub fn stop_with(&self, mode: &str) {
        let data = self.dir.join("data");
        let _ = postgres_command(&self.bin, "pg_ctl")
            .args(["-D", &data.to_string_lossy(), "-m", mode, "-w", "stop"])
            .output();
    }

    pub fn start_again(&self) {
        let data = self.dir.join("data");
        let log = self.dir.join("server.log");
        run_checked(postgres_command(&self.bin, "pg_ctl").args([
            "-D",
            &data.to_string_lossy(),
            "-l",
            &log.to_string_lossy(),
            "-w",
            "-t",
            "60",
            "-o",
            &format!(
                "-p {} -c listen_addresses=127.0.0.1 -k {}",
                self.port,
                data.to_string_lossy()
            ),
            "start",
        ]));
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn postgres_bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("RGW_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    candidates.sort();
    candidates
        .into_iter()
        .rev()
        .find(|dir| dir.join("initdb").is_file())
        .expect("no PostgreSQL server binaries: run ./scripts/test, which installs them")
}

fn postgres_command(bin: &Path, program: &str) -> std::process::Command {
    let path = bin.join(program);
    if running_as_root() {
        let mut command = std::process::Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(path);
        command
    } else {
        std::process::Command::new(path)
    }
}

fn run_checked(command: &mut std::process::Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A port that was free a moment ago on 127.0.0.1 (for servers that cannot take port 0).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// Poll `check` until it holds, panicking with `what` after `within`: tests
/// wait for outcomes, never for a fixed time.
pub async fn wait_for<F, Fut>(what: &str, within: std::time::Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
