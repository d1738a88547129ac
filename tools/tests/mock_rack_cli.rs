//! The real `convox` CLI against an in-process mock rack, one command family per test.
//! Skipped loudly (not failed) when no CLI is available.

mod mock_rack_support;

use mock_rack_support::{rack_url, start_rack, start_rack_with, word_after, Cli, PASSWORD};
use tools::mock_rack::{state::parse_env, MockRackConfig, SEED_APP, SEED_RELEASE};

/// The CLI, or return from the test after testkit's loud SKIPPED line.
macro_rules! convox_or_skip {
    ($name:expr) => {
        match testkit::skip_without_convox($name) {
            Some(bin) => bin,
            None => return,
        }
    };
}

fn has_request(rack: &tools::mock_rack::MockRackHandle, method: &str, path: &str) -> bool {
    rack.recorded()
        .iter()
        .any(|r| r.method == method && r.path == path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rack_info_params_ps_releases_logs_and_instances() {
    let bin = convox_or_skip!("rack_info_params_ps_releases_logs_and_instances");
    let rack = start_rack().await;
    let cli = Cli::new(&bin, rack_url(&rack.url(), PASSWORD));

    let out = cli.run(&["rack"]).await.ok();
    assert!(out.stdout.contains("mock-rack"), "{out:?}");
    assert!(out.stdout.contains("running"), "{out:?}");
    assert!(out.stdout.contains("3.19.0"), "{out:?}");

    let out = cli.run(&["rack", "params"]).await.ok();
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("node_type") && l.ends_with("t3.medium")),
        "{out:?}"
    );

    // The gateway will refuse this; the mock must accept it so that refusal is observable.
    let out = cli
        .run(&["rack", "params", "set", "node_type=t3.large"])
        .await
        .ok();
    assert!(out.stdout.contains("OK"), "{out:?}");
    let state = rack.state();
    assert_eq!(state.system.parameters["node_type"], "t3.large");
    // The CLI sends a `Version: dev` header on every request; it is not a version change.
    assert_eq!(state.system.version, "3.19.0");
    let update = state.system_updates.last().expect("a PUT /system form");
    assert_eq!(
        update.get("parameters").map(String::as_str),
        Some("node_type=t3.large")
    );
    assert!(has_request(&rack, "PUT", "/system"));

    let out = cli.run(&["rack", "ps"]).await.ok();
    assert!(
        out.stdout.contains("system") && out.stdout.contains("api"),
        "{out:?}"
    );

    let out = cli.run(&["rack", "releases"]).await.ok();
    assert!(out.stdout.contains("3.19.0"), "{out:?}");

    let out = cli.run(&["rack", "logs", "--no-follow"]).await.ok();
    assert!(out.stdout.contains(" system/k8s/api-"), "{out:?}");
    // Non-/app websockets are preceded by a throwaway GET /racks, which the rack 404s.
    assert!(has_request(&rack, "GET", "/racks"));
    assert!(rack
        .recorded()
        .iter()
        .any(|r| r.path == "/system/logs" && r.websocket));

    let out = cli.run(&["instances"]).await.ok();
    for instance in &state.instances {
        assert!(out.stdout.contains(&instance.id), "{out:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_list_create_info_delete() {
    let bin = convox_or_skip!("apps_list_create_info_delete");
    let rack = start_rack().await;
    let cli = Cli::new(&bin, rack_url(&rack.url(), PASSWORD));

    let out = cli.run(&["apps"]).await.ok();
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with(SEED_APP))
        .unwrap_or_else(|| panic!("no myapp row: {out:?}"));
    assert!(
        line.contains("running") && line.contains(SEED_RELEASE),
        "{line}"
    );

    cli.run(&["apps", "create", "newapp"]).await.ok();
    let created = rack.app("newapp").expect("newapp exists");
    assert_eq!(created.app.status, "running");
    assert_eq!(created.app.generation, "2");

    let out = cli.run(&["apps", "info", "newapp"]).await.ok();
    assert!(
        out.stdout.contains("newapp") && out.stdout.contains("running"),
        "{out:?}"
    );

    cli.run(&["apps", "delete", "newapp"]).await.ok();
    assert!(rack.app("newapp").is_none());
    assert!(has_request(&rack, "DELETE", "/apps/newapp"));

    let out = cli.run(&["apps", "info", "newapp"]).await;
    assert!(!out.success());
    assert!(out.all().contains("app not found: newapp"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ps_lists_processes_and_ps_stop_removes_one() {
    let bin = convox_or_skip!("ps_lists_processes_and_ps_stop_removes_one");
    let rack = start_rack().await;
    let cli = Cli::new(&bin, rack_url(&rack.url(), PASSWORD));
    let app = rack.app(SEED_APP).expect("seed app");
    assert_eq!(app.processes.len(), 3);

    let out = cli.run(&["ps", "-a", SEED_APP]).await.ok();
    for p in &app.processes {
        assert!(out.stdout.contains(&p.id), "{} missing: {out:?}", p.id);
    }
    // The CLI asks for the app budget too; an answer keeps its stderr clean.
    assert!(!out.stderr.contains("cli_budget"), "{out:?}");

    let worker = app
        .processes
        .iter()
        .find(|p| p.name == "worker")
        .expect("a worker process");
    let out = cli
        .run(&["ps", "stop", &worker.id, "-a", SEED_APP])
        .await
        .ok();
    assert!(out.stdout.contains("OK"), "{out:?}");
    let app = rack.app(SEED_APP).expect("seed app");
    assert!(app.processes.iter().all(|p| p.id != worker.id));
    assert_eq!(app.stopped, vec![worker.id.clone()]);

    let out = cli.run(&["ps", "-a", SEED_APP]).await.ok();
    assert!(!out.stdout.contains(&worker.id), "{out:?}");

    let out = cli.run(&["ps", "stop", &worker.id, "-a", SEED_APP]).await;
    assert!(!out.success());
    assert!(out.all().contains("process not found"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_get_set_unset_create_releases() {
    let bin = convox_or_skip!("env_get_set_unset_create_releases");
    let rack = start_rack().await;
    let cli = Cli::new(&bin, rack_url(&rack.url(), PASSWORD));

    let out = cli.run(&["env", "-a", SEED_APP]).await.ok();
    assert_eq!(out.stdout.trim(), "A=1");
    let out = cli.run(&["env", "get", "A", "-a", SEED_APP]).await.ok();
    assert_eq!(out.stdout.trim(), "1");

    let out = cli.run(&["env", "set", "B=2", "-a", SEED_APP]).await.ok();
    let id = word_after(&out.stdout, "Release: ").expect("release id printed");
    let app = rack.app(SEED_APP).expect("seed app");
    let release = app.release(&id).expect("the new release");
    let env = parse_env(&release.env);
    assert_eq!(env.get("A").map(String::as_str), Some("1"));
    assert_eq!(env.get("B").map(String::as_str), Some("2"));
    assert_eq!(release.description, "env add:B");
    assert!(!release.manifest.is_empty());
    // env set creates a release; it does not promote it.
    assert_eq!(app.app.release, SEED_RELEASE);
    assert!(has_request(&rack, "POST", "/apps/myapp/releases"));

    let out = cli.run(&["env", "get", "B", "-a", SEED_APP]).await.ok();
    assert_eq!(out.stdout.trim(), "2");

    let out = cli.run(&["env", "unset", "A", "-a", SEED_APP]).await.ok();
    let id = word_after(&out.stdout, "Release: ").expect("release id printed");
    let app = rack.app(SEED_APP).expect("seed app");
    assert_eq!(
        app.release(&id).map(|r| r.env.clone()).as_deref(),
        Some("B=2")
    );
    assert_eq!(app.latest_release().map(|r| r.id.clone()), Some(id));

    let out = cli.run(&["env", "get", "A", "-a", SEED_APP]).await;
    assert!(!out.success());
    assert!(out.all().contains("env not found: A"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_uploads_streams_build_logs_and_promotes() {
    let bin = convox_or_skip!("deploy_uploads_streams_build_logs_and_promotes");
    let rack = start_rack().await;
    let cli = Cli::new(&bin, rack_url(&rack.url(), PASSWORD));
    std::fs::write(
        cli.work_dir().join("convox.yml"),
        "services:\n  web:\n    build: .\n    port: 3000\n",
    )
    .expect("write convox.yml");
    std::fs::write(cli.work_dir().join("Dockerfile"), "FROM scratch\n").expect("write Dockerfile");
    // Some incompressible bytes so the upload is more than a few hundred bytes.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: Vec<u8> = (0..200_000)
        .map(|_| {
            // xorshift64: cheap bytes gzip cannot shrink.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect();
    std::fs::write(cli.work_dir().join("blob.bin"), noise).expect("write blob");

    let out = cli.run(&["deploy", "-a", SEED_APP]).await.ok();
    assert!(out.stdout.contains("Uploading source... OK"), "{out:?}");
    assert!(out.stdout.contains("Step 1/2 : FROM scratch"), "{out:?}");
    let build_id = word_after(&out.stdout, "Build: ").expect("build id in the logs");
    assert!(out.stdout.contains("Promoting"), "{out:?}");

    let uploads = rack.uploads();
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    let upload = &uploads[0];
    assert_eq!(upload.app, SEED_APP);
    assert!(
        upload.key.starts_with("tmp/") && upload.key.ends_with(".tgz"),
        "{upload:?}"
    );
    assert!(upload.bytes > 100_000, "{upload:?}");
    assert_eq!(upload.sha256.len(), 64);

    let app = rack.app(SEED_APP).expect("seed app");
    let build = app.builds.iter().find(|b| b.id == build_id).expect("build");
    assert_eq!(build.status, "complete");
    assert!(!build.release.is_empty());
    assert_eq!(
        app.app.release, build.release,
        "deploy promotes the build's release"
    );
    assert_eq!(app.app.status, "running");
    assert!(app.processes.iter().all(|p| p.release == build.release));

    let object_path = format!("/apps/myapp/objects/{}", upload.key);
    assert!(has_request(&rack, "POST", &object_path));
    assert!(has_request(&rack, "POST", "/apps/myapp/builds"));
    assert!(has_request(&rack, "GET", "/machines"));
    assert!(rack
        .recorded()
        .iter()
        .any(|r| r.websocket && r.path == format!("/apps/myapp/builds/{build_id}/logs")));
    assert!(has_request(
        &rack,
        "POST",
        &format!("/apps/myapp/releases/{}/promote", build.release)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_then_builds_releases_and_releases_promote() {
    let bin = convox_or_skip!("build_then_builds_releases_and_releases_promote");
    let rack = start_rack().await;
    let cli = Cli::new(&bin, rack_url(&rack.url(), PASSWORD));
    std::fs::write(
        cli.work_dir().join("convox.yml"),
        "services:\n  web:\n    build: .\n",
    )
    .expect("write convox.yml");

    let out = cli.run(&["build", "-a", SEED_APP]).await.ok();
    let build_id = word_after(&out.stdout, "Build:   ").expect("build id");
    let release_id = word_after(&out.stdout, "Release: ").expect("release id");
    assert_eq!(
        rack.app(SEED_APP).expect("app").app.release,
        SEED_RELEASE,
        "build alone does not promote"
    );

    let out = cli.run(&["builds", "-a", SEED_APP]).await.ok();
    let row = out
        .stdout
        .lines()
        .find(|l| l.starts_with(&build_id))
        .expect("build row");
    assert!(
        row.contains("complete") && row.contains(&release_id),
        "{row}"
    );

    let out = cli.run(&["releases", "-a", SEED_APP]).await.ok();
    let row = out
        .stdout
        .lines()
        .find(|l| l.starts_with(&release_id))
        .expect("release row");
    assert!(!row.contains("active"), "{row}");
    let seed_row = out
        .stdout
        .lines()
        .find(|l| l.starts_with(SEED_RELEASE))
        .expect("seed row");
    assert!(seed_row.contains("active"), "{seed_row}");

    cli.run(&["releases", "promote", &release_id, "-a", SEED_APP])
        .await
        .ok();
    assert_eq!(rack.app(SEED_APP).expect("app").app.release, release_id);

    let out = cli.run(&["releases", "-a", SEED_APP]).await.ok();
    let row = out
        .stdout
        .lines()
        .find(|l| l.starts_with(&release_id))
        .expect("release row");
    assert!(row.contains("active"), "{row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_stream_and_end_without_follow() {
    let bin = convox_or_skip!("logs_stream_and_end_without_follow");
    let rack = start_rack().await;
    let cli = Cli::new(&bin, rack_url(&rack.url(), PASSWORD));

    // Followed logs stay open until the client leaves (see mock_rack_http); unfollowed ones end.
    let out = cli.run(&["logs", "-a", SEED_APP, "--no-follow"]).await.ok();
    assert!(out.stdout.contains(" service/web/web-"), "{out:?}");
    assert!(out.stdout.contains(" service/worker/worker-"), "{out:?}");

    let out = cli
        .run(&["logs", "-a", SEED_APP, "--no-follow", "--service", "worker"])
        .await
        .ok();
    assert!(out.stdout.contains("worker ready"), "{out:?}");
    assert!(!out.stdout.contains("service/web/"), "{out:?}");

    // /app websockets are preceded by a throwaway GET /machines.
    let recorded = rack.recorded();
    let ws_index = recorded
        .iter()
        .position(|r| r.websocket && r.path == "/apps/myapp/logs")
        .expect("app logs websocket");
    assert!(ws_index > 0 && recorded[ws_index - 1].path == "/machines");
    assert!(recorded
        .iter()
        .any(|r| r.websocket && r.path == "/apps/myapp/services/worker/logs"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_runs_commands_and_returns_exit_codes() {
    let bin = convox_or_skip!("exec_runs_commands_and_returns_exit_codes");
    let rack = start_rack().await;
    let cli = Cli::new(&bin, rack_url(&rack.url(), PASSWORD));
    let pid = rack.app(SEED_APP).expect("app").processes[0].id.clone();

    let out = cli
        .run(&["exec", &pid, "echo", "hello", "world", "-a", SEED_APP])
        .await
        .ok();
    assert_eq!(out.stdout, "hello world\n");

    let out = cli.run(&["exec", &pid, "exit", "3", "-a", SEED_APP]).await;
    assert_eq!(out.code, Some(3), "{out:?}");

    let out = cli
        .run_with_stdin(
            &["exec", &pid, "cat", "-a", SEED_APP],
            Some("line one\nline two\n"),
        )
        .await
        .ok();
    assert_eq!(out.stdout, "line one\nline two\n");

    let out = cli
        .run(&["exec", &pid, "uptime", "-a", SEED_APP])
        .await
        .ok();
    assert_eq!(out.stdout, "ran: uptime\n");

    let execs = rack.execs();
    let commands: Vec<&str> = execs.iter().map(|e| e.command.as_str()).collect();
    assert_eq!(commands, ["echo hello world", "exit 3", "cat", "uptime"]);
    assert!(execs.iter().all(|e| e.pid == pid && e.app == SEED_APP));
    assert_eq!(execs[1].exit_code, 3);
    assert_eq!(execs[2].stdin, "line one\nline two\n");
    // stdin is not a terminal here, so the CLI asks for no tty.
    assert!(execs.iter().all(|e| e.tty == Some(false)), "{execs:?}");

    let out = cli
        .run(&["exec", "nope-123", "echo", "x", "-a", SEED_APP])
        .await;
    assert!(out.all().contains("process not found: nope-123"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_attached_and_detached() {
    let bin = convox_or_skip!("run_attached_and_detached");
    let rack = start_rack().await;
    let cli = Cli::new(&bin, rack_url(&rack.url(), PASSWORD));

    let out = cli
        .run(&["run", "web", "echo", "hi", "there", "-a", SEED_APP])
        .await
        .ok();
    assert_eq!(out.stdout, "hi there\n");
    let exec = rack.execs().pop().expect("an exec session");
    assert_eq!(exec.command, "echo hi there");
    assert_eq!(exec.entrypoint, Some(true));
    assert!(exec.pid.starts_with("web-run-"), "{exec:?}");
    // An attached run stops its process when done.
    let app = rack.app(SEED_APP).expect("app");
    assert_eq!(app.stopped, vec![exec.pid.clone()]);
    assert!(app.processes.iter().all(|p| p.id != exec.pid));
    assert!(has_request(
        &rack,
        "POST",
        "/apps/myapp/services/web/processes"
    ));

    let out = cli.run(&["run", "web", "exit", "7", "-a", SEED_APP]).await;
    assert_eq!(out.code, Some(7), "{out:?}");

    let out = cli
        .run(&["run", "--detach", "worker", "bin/migrate", "-a", SEED_APP])
        .await
        .ok();
    let pid = word_after(&out.stdout, "OK, ").expect("detached pid printed");
    let app = rack.app(SEED_APP).expect("app");
    let p = app
        .processes
        .iter()
        .find(|p| p.id == pid)
        .expect("detached process");
    assert_eq!(p.command, "bin/migrate");
    assert_eq!(p.name, "worker");
    assert_eq!(p.status, "running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_and_scale() {
    let bin = convox_or_skip!("restart_and_scale");
    let rack = start_rack().await;
    let cli = Cli::new(&bin, rack_url(&rack.url(), PASSWORD));
    let before: Vec<String> = rack
        .app(SEED_APP)
        .expect("app")
        .processes
        .iter()
        .map(|p| p.id.clone())
        .collect();

    let out = cli.run(&["restart", "-a", SEED_APP]).await.ok();
    assert!(out.stdout.contains("Restarting web... OK"), "{out:?}");
    let app = rack.app(SEED_APP).expect("app");
    assert_eq!(app.restarts, ["web", "worker"]);
    assert!(
        app.processes.iter().all(|p| !before.contains(&p.id)),
        "restarted processes get new ids"
    );

    cli.run(&["scale", "web", "--count", "3", "-a", SEED_APP])
        .await
        .ok();
    let app = rack.app(SEED_APP).expect("app");
    assert_eq!(
        app.services
            .iter()
            .find(|s| s.name == "web")
            .map(|s| s.count),
        Some(3)
    );
    assert_eq!(app.processes.iter().filter(|p| p.name == "web").count(), 3);
    assert!(has_request(&rack, "PUT", "/apps/myapp/services/web"));

    let out = cli.run(&["scale", "-a", SEED_APP]).await.ok();
    let row = out
        .stdout
        .lines()
        .find(|l| l.starts_with("web"))
        .expect("web row");
    assert!(row.split_whitespace().nth(1) == Some("3"), "{row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_refused_and_recorded() {
    let bin = convox_or_skip!("wrong_password_is_refused_and_recorded");
    let rack = start_rack().await;
    let cli = Cli::new(&bin, rack_url(&rack.url(), "not-the-password"))
        .env("CONVOX_ACTOR", "alice@example.com");

    let out = cli.run(&["apps"]).await;
    assert!(!out.success(), "{out:?}");
    assert!(out.all().contains("invalid authentication"), "{out:?}");
    let rec = rack.recorded().pop().expect("recorded");
    assert_eq!(rec.path, "/apps");
    assert_eq!(rec.auth, tools::mock_rack::AuthOutcome::Invalid);
    // The CLI passes CONVOX_ACTOR on as X-Convox-Actor; a gateway must strip it.
    assert_eq!(rec.x_convox_actor.as_deref(), Some("alice@example.com"));
    assert_eq!(rec.actor, None);

    // Like the real rack, websockets upgrade first and report the failure in-band.
    let out = cli.run(&["logs", "-a", SEED_APP]).await;
    assert!(
        out.all().contains("ERROR: invalid authentication"),
        "{out:?}"
    );
    assert!(!out.all().contains("service/web"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_works_over_tls() {
    let bin = convox_or_skip!("cli_works_over_tls");
    let rack = start_rack_with(MockRackConfig {
        password: PASSWORD.to_string(),
        tls: true,
        ..MockRackConfig::default()
    })
    .await;
    assert!(rack.url().starts_with("https://127.0.0.1:"));
    let cli = Cli::new(&bin, rack_url(&rack.url(), PASSWORD));

    let out = cli.run(&["apps"]).await.ok();
    assert!(out.stdout.contains(SEED_APP), "{out:?}");
    let pid = rack.app(SEED_APP).expect("app").processes[0].id.clone();
    let out = cli.run(&["exec", &pid, "exit", "2", "-a", SEED_APP]).await;
    assert_eq!(out.code, Some(2), "{out:?}");
    let out = cli.run(&["logs", "-a", SEED_APP, "--no-follow"]).await.ok();
    assert!(out.stdout.contains("service/web/"), "{out:?}");
}
