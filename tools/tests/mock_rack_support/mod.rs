//! Shared helpers for the mock-rack integration tests: start a mock in-process, run the real
//! `convox` CLI against it with its own settings directory, everything bounded by timeouts.

#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tools::mock_rack::{MockRack, MockRackConfig, RunningMockRack};

pub const PASSWORD: &str = "s3cr3t-rack";

/// The longest any single CLI invocation may take. The slowest commands (apps create/delete,
/// deploy, promote, scale) wait about 15 s in the CLI's own polling loops.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(90);

pub fn localhost0() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A mock rack on a free loopback port with [`PASSWORD`].
pub async fn start_rack() -> RunningMockRack {
    start_rack_with(MockRackConfig {
        password: PASSWORD.to_string(),
        ..MockRackConfig::default()
    })
    .await
}

pub async fn start_rack_with(config: MockRackConfig) -> RunningMockRack {
    MockRack::bind(localhost0(), config)
        .await
        .expect("bind mock rack")
        .spawn()
}

/// `scheme://convox:<password>@host:port` from the rack's URL.
pub fn rack_url(url: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("url has a scheme");
    format!("{scheme}://convox:{password}@{rest}")
}

#[derive(Debug)]
pub struct CliOutput {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Panics with everything the CLI said unless it exited 0.
    #[track_caller]
    pub fn ok(self) -> CliOutput {
        assert!(self.success(), "convox failed: {self:#?}");
        self
    }

    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// The real CLI pointed at one rack URL, with a private settings directory and working
/// directory, and a clean environment (so no developer setting leaks in).
pub struct Cli {
    bin: PathBuf,
    rack_url: String,
    config: tempfile::TempDir,
    home: tempfile::TempDir,
    work: tempfile::TempDir,
    extra_env: Vec<(String, String)>,
}

impl Cli {
    pub fn new(bin: &Path, rack_url: String) -> Cli {
        Cli {
            bin: bin.to_path_buf(),
            rack_url,
            config: tempfile::tempdir().expect("tempdir"),
            home: tempfile::tempdir().expect("tempdir"),
            work: tempfile::tempdir().expect("tempdir"),
            extra_env: Vec::new(),
        }
    }

    pub fn env(mut self, key: &str, value: &str) -> Cli {
        self.extra_env.push((key.to_string(), value.to_string()));
        self
    }

    /// The working directory the CLI runs in (deploy and build package it).
    pub fn work_dir(&self) -> &Path {
        self.work.path()
    }

    pub async fn run(&self, args: &[&str]) -> CliOutput {
        self.run_with_stdin(args, None).await
    }

    /// Runs `convox <args>`; stdin is `input` (then closed) or empty.
    pub async fn run_with_stdin(&self, args: &[&str], input: Option<&str>) -> CliOutput {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.args(args)
            .current_dir(self.work.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("CONVOX_CONFIG", self.config.path())
            .env("RACK_URL", &self.rack_url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn convox");
        let mut stdin = child.stdin.take().expect("stdin");
        let data = input.unwrap_or("").to_string();
        let feed = tokio::spawn(async move {
            let _ = stdin.write_all(data.as_bytes()).await;
            // Dropping stdin closes it: the CLI sees end of input.
        });
        let out = tokio::time::timeout(CLI_TIMEOUT, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("convox {args:?} did not finish within {CLI_TIMEOUT:?}"))
            .expect("wait for convox");
        let _ = feed.await;
        CliOutput {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// The word after `prefix` in `text` (e.g. the id after `Release: `).
pub fn word_after(text: &str, prefix: &str) -> Option<String> {
    let start = text.find(prefix)? + prefix.len();
    text[start..].split_whitespace().next().map(str::to_string)
}
