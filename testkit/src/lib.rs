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
