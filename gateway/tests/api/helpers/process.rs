//! The gateway binary as its operators run it: `rack-gateway-server <command>`,
//! and `serve` as a subprocess of its own ([`ServerProcess`]) when a test
//! needs its memory, its stdout and stderr, or to kill it.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output};
use std::time::Duration;

use super::app::{new_key, operator_token, APP_SECRET_KEY};

/// Run `rack-gateway-server` with a clean environment, this database and key.
pub fn server_command(database_url: &str, key_file: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rack-gateway-server"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("USER", "operator-test")
        .env("DATABASE_URL", database_url)
        .env("CHECKPOINT_SIGNING_KEY_FILE", key_file)
        .env("RGW_ENV_FILE", "/nonexistent/.env")
        .output()
        .expect("run rack-gateway-server")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `rack-gateway-server serve` as a subprocess (its own memory, its own
/// stdout and stderr, captured to files).
pub struct ServerProcess {
    pub child: Option<testkit::ChildGuard>,
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    pub database_url: String,
    pub key_file: PathBuf,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
    _db: Option<testkit::TestDatabase>,
    _dir: tempfile::TempDir,
}

impl ServerProcess {
    /// On a fresh database with a key of its own and `settings`; returns once `/ready` says so.
    pub async fn start(settings: &[(&str, &str)]) -> ServerProcess {
        let db = testkit::fresh_database().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let (key_file, _) = new_key(dir.path());
        let mut all = vec![
            ("APP_SECRET_KEY", APP_SECRET_KEY),
            ("PROXY_AUTH_FAILURE_LIMIT", "1000"),
        ];
        all.extend_from_slice(settings);
        let server = ServerProcess::spawn(db.url.clone(), key_file, Some(db), dir, &all);
        let ready = async {
            loop {
                if let Ok(r) = reqwest::get(format!("{}/ready", server.address)).await {
                    if r.status() == 200 {
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(30), ready)
            .await
            .is_err()
        {
            panic!("the gateway did not become ready: {}", server.stderr());
        }
        server
    }

    /// In front of the rack at `rack_url` whose password is `rack_token`.
    pub async fn in_front_of(
        rack_url: &str,
        rack_token: &str,
        settings: &[(&str, &str)],
    ) -> ServerProcess {
        let mut all = vec![("RACK_HOST", rack_url), ("RACK_TOKEN", rack_token)];
        all.extend_from_slice(settings);
        ServerProcess::start(&all).await
    }

    /// On an existing database and key (a gateway started again over what
    /// another left), returning at once: the test waits for what it needs.
    pub fn resume(database_url: &str, key_file: &Path, settings: &[(&str, &str)]) -> ServerProcess {
        let dir = tempfile::tempdir().expect("tempdir");
        ServerProcess::spawn(
            database_url.to_owned(),
            key_file.to_owned(),
            None,
            dir,
            settings,
        )
    }

    fn spawn(
        database_url: String,
        key_file: PathBuf,
        db: Option<testkit::TestDatabase>,
        dir: tempfile::TempDir,
        settings: &[(&str, &str)],
    ) -> ServerProcess {
        let stdout_path = dir.path().join("stdout");
        let stderr_path = dir.path().join("stderr");
        let port = testkit::free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_rack-gateway-server"));
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RGW_ENV_FILE", "/nonexistent/.env")
            .env("DATABASE_URL", &database_url)
            .env("CHECKPOINT_SIGNING_KEY_FILE", &key_file)
            .env("PORT", port.to_string())
            .env("BIND_ADDRESS", "127.0.0.1");
        for (k, v) in settings {
            command.env(k, v);
        }
        let child = command
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&stdout_path).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
            .spawn()
            .expect("start rack-gateway-server serve");
        ServerProcess {
            child: Some(testkit::ChildGuard(child)),
            address: format!("http://127.0.0.1:{port}"),
            database_url,
            key_file,
            stdout_path,
            stderr_path,
            _db: db,
            _dir: dir,
        }
    }

    /// A pool on the database this server writes.
    pub async fn pool(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(&self.database_url)
            .await
            .expect("connect to the server's database")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// A token made by the operator command, as an operator would.
    pub fn token(&self, name: &str, role: &str) -> String {
        operator_token(&self.database_url, &self.key_file, name, role)
    }

    /// Stop at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(guard) = self.child.take() {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(guard.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            )
            .expect("SIGKILL");
        }
    }

    /// SIGTERM, then wait (bounded by `within`) for the exit.
    pub async fn terminate(&mut self, within: Duration) -> ExitStatus {
        let mut guard = self.child.take().expect("running");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(guard.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("SIGTERM");
        let waited = tokio::task::spawn_blocking(move || {
            let status = guard.0.wait();
            (guard, status)
        });
        let (_guard, status) = tokio::time::timeout(within, waited)
            .await
            .expect("the gateway stopped in time")
            .expect("join");
        status.expect("wait")
    }

    /// SIGTERM, then wait (bounded) for a clean exit.
    pub async fn stop(&mut self) {
        if self.child.is_none() {
            return;
        }
        let status = self.terminate(Duration::from_secs(30)).await;
        assert!(status.success(), "the gateway stopped cleanly");
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

/// A process's memory figures from `/proc/<pid>/status`, in KiB: (VmRSS, VmHWM).
pub fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
