//! The real `convox` CLI through the gateway: `RACK_URL=http://convox:<token>@127.0.0.1:<port>/api/v1/rack-proxy`,
//! a private settings directory per run, and the outcome each role should get.
//! Skipped loudly (not failed) when no CLI is available.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tools::mock_rack::SEED_APP;

use crate::helpers::{Rack, Role, TestApp, PREFIX};

macro_rules! convox_or_skip {
    ($name:expr) => {
        match testkit::skip_without_convox($name) {
            Some(bin) => bin,
            None => return,
        }
    };
}

const CLI_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug)]
pub(crate) struct CliOutput {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl CliOutput {
    #[track_caller]
    pub(crate) fn ok(self) -> CliOutput {
        assert_eq!(self.code, Some(0), "convox failed: {self:#?}");
        self
    }

    #[track_caller]
    pub(crate) fn refused(self) -> CliOutput {
        assert_ne!(self.code, Some(0), "convox should have failed: {self:#?}");
        self
    }
}

/// The real CLI with a private settings directory, home and working directory, and a clean environment.
pub(crate) struct Cli {
    bin: PathBuf,
    rack_url: String,
    config: tempfile::TempDir,
    home: tempfile::TempDir,
    work: tempfile::TempDir,
}

impl Cli {
    pub(crate) fn new(bin: &Path, app: &TestApp, secret: &str) -> Cli {
        let host = app.address.trim_start_matches("http://");
        Cli::with_url(bin, format!("http://convox:{secret}@{host}{PREFIX}"))
    }

    fn with_url(bin: &Path, rack_url: String) -> Cli {
        Cli {
            bin: bin.to_path_buf(),
            rack_url,
            config: tempfile::tempdir().expect("tempdir"),
            home: tempfile::tempdir().expect("tempdir"),
            work: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub(crate) async fn run(&self, args: &[&str]) -> CliOutput {
        self.run_with_stdin(args, "").await
    }

    async fn run_with_stdin(&self, args: &[&str], input: &str) -> CliOutput {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.args(args)
            .current_dir(self.work.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("CONVOX_CONFIG", self.config.path())
            .env("RACK_URL", &self.rack_url)
            // The CLI forwards this as X-Convox-Actor; the gateway must not let it through.
            .env("CONVOX_ACTOR", "mallory@example.com")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn convox");
        let mut stdin = child.stdin.take().expect("stdin");
        let data = input.to_owned();
        let feed = tokio::spawn(async move {
            let _ = stdin.write_all(data.as_bytes()).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_can_list_but_not_change() {
    let bin = convox_or_skip!("a_viewer_can_list_but_not_change");
    let rack = Rack::start().await;
    let app = TestApp::build().rack(&rack.url()).spawn().await;
    let cli = Cli::new(&bin, &app, &app.token(Role::Viewer).await);

    let out = cli.run(&["apps"]).await.ok();
    assert!(out.stdout.contains(SEED_APP), "{out:?}");
    let out = cli.run(&["ps", "-a", SEED_APP]).await.ok();
    assert!(out.stdout.contains("web"), "{out:?}");
    let out = cli.run(&["rack"]).await.ok();
    assert!(out.stdout.contains("running"), "{out:?}");

    let out = cli
        .run(&["env", "set", "FOO=bar", "-a", SEED_APP])
        .await
        .refused();
    assert!(out.stderr.contains("permission denied: "), "{out:?}");
    let out = cli.run(&["apps", "delete", SEED_APP]).await.refused();
    assert!(
        out.stderr
            .contains("permission denied: convox:app:delete requires admin role"),
        "{out:?}"
    );
    assert!(rack.app(SEED_APP).is_some());
    // Exec is refused in-band: Convox's exec stream has one channel, so the
    // reason arrives on stdout, and the exit code is 1.
    let out = cli
        .run(&["exec", "anything", "ls", "-a", SEED_APP])
        .await
        .refused();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stdout
            .contains("ERROR: permission denied: convox:process:exec requires ops role"),
        "{out:?}"
    );
    // A refused log stream fails the handshake (exit non-zero).
    let ci = Cli::new(&bin, &app, &app.token(Role::Cicd).await);
    ci.run(&["logs", "-a", SEED_APP, "--no-follow"])
        .await
        .refused();
    // Nothing that changes anything reached the rack, and the CLI's actor never did.
    for r in rack.recorded() {
        assert_eq!(r.method, "GET", "{r:?}");
        assert_eq!(r.x_convox_actor, None, "{r:?}");
        assert!(
            r.actor.as_deref().is_some_and(|a| a.starts_with("token:")),
            "{r:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployer_sets_env_deploys_and_reads_logs() {
    let bin = convox_or_skip!("a_deployer_sets_env_deploys_and_reads_logs");
    let rack = Rack::start().await;
    let app = TestApp::build().rack(&rack.url()).sign_in().spawn().await;
    let cli = Cli::new(&bin, &app, &app.signed_in(Role::Deployer).await.token);

    let out = cli.run(&["ps", "-a", SEED_APP]).await.ok();
    assert!(out.stdout.contains("web"), "{out:?}");

    // env set: the value goes to the rack, never into the chain; the keys do.
    let secret_value = "zq-very-secret-value-8841";
    let out = cli
        .run(&[
            "env",
            "set",
            &format!("STRIPE_SECRET={secret_value}"),
            "PLAIN=1",
            "-a",
            SEED_APP,
        ])
        .await
        .ok();
    let release = out
        .stdout
        .split("Release: ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("release id printed")
        .to_owned();
    let created = rack.app(SEED_APP).unwrap();
    let created = created
        .release(&release)
        .expect("release created on the rack");
    assert!(created.env.contains(secret_value));
    let chain = app.canonical_events().await.join("\n");
    assert!(
        !chain.contains(secret_value),
        "an env value entered the chain"
    );
    let events = app.proxy_events().await;
    let env_request = events
        .iter()
        .find(|(_, t, d)| t == "proxy.request" && d["permission"] == "convox:env:set")
        .expect("the env change's proxy.request");
    let env_event = events
        .iter()
        .find(|(_, t, d)| t == "proxy.response" && d["request_id"] == env_request.2["request_id"])
        .expect("the env change's proxy.response");
    assert_eq!(
        env_event.2["env_change"]["added"],
        serde_json::json!(["PLAIN", "STRIPE_SECRET"])
    );
    let out = cli.run(&["env", "-a", SEED_APP]).await.ok();
    assert!(out.stdout.contains("STRIPE_SECRET="), "{out:?}");

    // deploy: upload, build logs over a websocket, promote.
    std::fs::write(
        cli.work.path().join("convox.yml"),
        "services:\n  web:\n    build: .\n    port: 3000\n",
    )
    .unwrap();
    std::fs::write(cli.work.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let out = cli.run(&["deploy", "-a", SEED_APP]).await.ok();
    assert!(out.stdout.contains("Uploading source... OK"), "{out:?}");
    assert!(out.stdout.contains("Step 1/2 : FROM scratch"), "{out:?}");
    assert!(out.stdout.contains("Promoting"), "{out:?}");
    let uploads = rack.uploads();
    assert_eq!(uploads.len(), 1);
    let state = rack.app(SEED_APP).unwrap();
    let build = state.builds.last().expect("a build");
    assert_eq!(state.app.release, build.release, "the build was promoted");

    let out = cli.run(&["logs", "-a", SEED_APP, "--no-follow"]).await.ok();
    assert!(out.stdout.contains("service/web/"), "{out:?}");

    // Everything the rack saw is in the chain, written before it was sent.
    let events = app.proxy_events().await;
    for seen in rack.recorded() {
        let id = seen
            .request_id
            .clone()
            .expect("our request id on every rack request");
        let request = events
            .iter()
            .find(|(_, t, d)| t == "proxy.request" && d["request_id"] == id.as_str())
            .unwrap_or_else(|| panic!("no proxy.request for {seen:?}"));
        assert_eq!(request.2["decision"], "allow");
        assert_eq!(seen.actor.as_deref(), Some("deployer@example.com"));
        assert_eq!(seen.x_convox_actor, None);
    }
    testkit::wait_for(
        "every websocket recorded its end",
        Duration::from_secs(10),
        || async {
            let events = app.proxy_events().await;
            let ws = events
                .iter()
                .filter(|(_, t, d)| t == "proxy.request" && d["websocket"] == true)
                .count();
            let ends = events
                .iter()
                .filter(|(_, t, d)| t == "proxy.response" && d["kind"] == "websocket")
                .count();
            ws >= 2 && ws == ends
        },
    )
    .await;
    // The probes before each websocket were answered by the gateway, quietly.
    assert!(!rack.recorded().iter().any(|r| r.path == "/machines"));
    assert!(!app
        .proxy_events()
        .await
        .iter()
        .any(|(_, _, d)| d["path"] == "/machines"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_and_exec_follow_the_run_policy() {
    let bin = convox_or_skip!("run_and_exec_follow_the_run_policy");
    let rack = Rack::start().await;
    rack.add_service("jobs");
    let app = TestApp::build().rack(&rack.url()).spawn().await;
    let ops = Cli::new(&bin, &app, &app.token(Role::Ops).await);
    let admin = Cli::new(&bin, &app, &app.token(Role::Admin).await);

    let out = ops
        .run(&["run", "jobs", "echo", "hi", "there", "-a", SEED_APP])
        .await
        .ok();
    assert_eq!(out.stdout, "hi there\n", "{out:?}");
    let out = ops.run(&["run", "jobs", "exit", "4", "-a", SEED_APP]).await;
    assert_eq!(out.code, Some(4), "{out:?}");

    for service in ["web", "worker"] {
        let out = ops
            .run(&["run", service, "echo", "hi", "-a", SEED_APP])
            .await
            .refused();
        assert!(
            out.stderr
                .contains("convox run may not start processes in service"),
            "{out:?}"
        );
        let out = admin
            .run(&["run", service, "echo", "hi", "-a", SEED_APP])
            .await
            .refused();
        assert!(out.stderr.contains("RUN_BLOCKED_SERVICES"), "{out:?}");
    }

    let out = ops
        .run(&[
            "run", "--detach", "jobs", "rails", "console", "-a", SEED_APP,
        ])
        .await
        .refused();
    assert!(
        out.stderr
            .contains("\"rails console\" commands require admin role"),
        "{out:?}"
    );
    // Attached, the command is only known at the exec step: refused in-band (stdout, exit 1).
    let out = ops
        .run(&["run", "jobs", "rails", "console", "-a", SEED_APP])
        .await
        .refused();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stdout
            .contains("\"rails console\" commands require admin role"),
        "{out:?}"
    );
    let out = admin
        .run(&["run", "jobs", "rails", "console", "-a", SEED_APP])
        .await
        .ok();
    assert_eq!(out.stdout, "ran: rails console\n", "{out:?}");

    // exec: output and exit code come through; stdin goes up.
    let pid = rack.app(SEED_APP).unwrap().processes[0].id.clone();
    let out = ops
        .run(&["exec", &pid, "echo", "hello", "-a", SEED_APP])
        .await
        .ok();
    assert_eq!(out.stdout, "hello\n");
    let out = ops.run(&["exec", &pid, "exit", "3", "-a", SEED_APP]).await;
    assert_eq!(out.code, Some(3), "{out:?}");
    let out = ops
        .run_with_stdin(
            &["exec", &pid, "cat", "-a", SEED_APP],
            "line one\nline two\n",
        )
        .await
        .ok();
    assert_eq!(out.stdout, "line one\nline two\n");
    let out = ops
        .run(&["exec", &pid, "rake", "db:migrate", "-a", SEED_APP])
        .await
        .refused();
    assert!(
        out.stdout
            .contains("\"rake db:migrate\" commands require admin role"),
        "{out:?}"
    );
    // Each exec's command is in its proxy.request, refused or not.
    let recorded: Vec<(String, String)> = app
        .proxy_events()
        .await
        .into_iter()
        .filter(|(_, t, d)| t == "proxy.request" && d["command"].is_string())
        .map(|(_, _, d)| {
            (
                d["command"].as_str().unwrap().to_owned(),
                d["decision"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        recorded.contains(&("echo hello".into(), "allow".into())),
        "{recorded:?}"
    );
    assert!(
        recorded.contains(&("rake db:migrate".into(), "deny".into())),
        "{recorded:?}"
    );
    let commands: Vec<String> = rack.execs().into_iter().map(|e| e.command).collect();
    assert!(
        !commands.iter().any(|c| c.contains("migrate")),
        "{commands:?}"
    );
    assert_eq!(
        commands
            .iter()
            .filter(|c| c.contains("rails console"))
            .count(),
        1,
        "only the admin's: {commands:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rack_url_with_a_trailing_slash_works_too() {
    let bin = convox_or_skip!("a_rack_url_with_a_trailing_slash_works_too");
    let rack = Rack::start().await;
    let app = TestApp::build().rack(&rack.url()).spawn().await;
    let host = app.address.trim_start_matches("http://");
    let secret = app.token(Role::Ops).await;
    let cli = Cli::with_url(&bin, format!("http://convox:{secret}@{host}{PREFIX}/"));
    let out = cli.run(&["apps"]).await.ok();
    assert!(out.stdout.contains(SEED_APP), "{out:?}");
    let out = cli.run(&["logs", "-a", SEED_APP, "--no-follow"]).await.ok();
    assert!(out.stdout.contains("service/web/"), "{out:?}");
}
