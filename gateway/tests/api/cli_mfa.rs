//! The `rack-gateway` CLI's MFA against the real gateway (and, for wrapped
//! commands, the real `convox` CLI and the mock rack): enrolment of a session
//! that may only enrol, finishing a sign-in that waits for MFA, step-up before
//! `env set` with the code in `RACK_URL`'s password, the window sparing the
//! next command, a replayed code refused, `always` on the CLI's own calls, and
//! backup codes. The CLI runs without a terminal, as in CI: where it needs a
//! code it must say `--mfa-code`, never wait.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};
use tools::mock_rack::SEED_APP;

use crate::helpers::{person, Rack, Role, TestApp};
use crate::mfa::{mfa_app, Codes};

const RUN_TIMEOUT: Duration = Duration::from_secs(120);

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn ok(self) -> Run {
        assert_eq!(
            self.code,
            Some(0),
            "rack-gateway failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    fn error(self, message: &str) -> Run {
        assert_eq!(
            self.code,
            Some(1),
            "rack-gateway should fail\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        assert!(
            self.stderr.contains(message),
            "stderr should contain {message:?}:\n{}",
            self.stderr
        );
        self
    }
}

/// The `rack-gateway` binary with its own config directory, logged in to the test gateway.
struct RackGateway {
    bin: PathBuf,
    convox: Option<PathBuf>,
    dir: tempfile::TempDir,
}

impl RackGateway {
    fn new(app: &TestApp, token: &str, email: &str) -> RackGateway {
        let bin = testkit::workspace_bin("rack-gateway");
        assert!(
            bin.is_file(),
            "{} is missing: build the workspace binaries first (cargo build --workspace --bins)",
            bin.display()
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let cli = RackGateway {
            bin,
            convox: testkit::convox_bin(),
            dir,
        };
        cli.write_config(json!({
            "current": "test",
            "machine_id": "11111111-2222-3333-4444-555555555555",
            "mfa_preference": "default",
            "gateways": {"test": {
                "url": app.address, "token": token, "email": email,
                "expires_at": (Utc::now() + chrono::Duration::days(1)).to_rfc3339(),
                "channel": "cli", "mfa_verified": false
            }}
        }));
        cli
    }

    fn config_dir(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    fn write_config(&self, config: Value) {
        std::fs::create_dir_all(self.config_dir()).expect("config dir");
        std::fs::write(
            self.config_dir().join("config.json"),
            serde_json::to_vec_pretty(&config).expect("json"),
        )
        .expect("config");
    }

    fn entry(&self) -> Value {
        let bytes = std::fs::read(self.config_dir().join("config.json")).expect("config");
        let config: Value = serde_json::from_slice(&bytes).expect("json");
        config["gateways"]["test"].clone()
    }

    async fn run(&self, args: &[&str]) -> Run {
        let home = self.dir.path().join("home");
        std::fs::create_dir_all(&home).expect("home");
        let mut command = tokio::process::Command::new(&self.bin);
        command
            .args(args)
            .current_dir(&home)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("CONVOX_CONFIG", self.dir.path().join("convox"))
            .env("GATEWAY_CLI_CONFIG_DIR", self.config_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(convox) = &self.convox {
            command.env("CONVOX_BIN", convox);
        }
        let out = tokio::time::timeout(RUN_TIMEOUT, command.output())
            .await
            .unwrap_or_else(|_| panic!("rack-gateway {args:?} did not finish in time"))
            .expect("run rack-gateway");
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Enrol TOTP from the CLI without a terminal: `mfa enroll totp` prints the
/// method id and secret, `--confirm <id> --mfa-code <code>` confirms. Returns its codes.
async fn enrol_from_the_cli(cli: &RackGateway) -> Codes {
    let run = cli
        .run(&["mfa", "enroll", "totp", "--label", "phone"])
        .await
        .ok();
    let line = |prefix: &str| {
        run.stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("{prefix} printed:\n{}", run.stdout))
            .to_owned()
    };
    let method_id = line("Method id: ");
    let secret = line("Secret: ");
    assert!(line("otpauth URL: ").starts_with("otpauth://totp/"));
    assert!(run.stdout.contains(&format!(
        "Confirm with: rack-gateway mfa enroll totp --confirm {method_id} --mfa-code CODE"
    )));
    let codes = Codes::new(
        totp_rs::Secret::try_from_base32(&secret)
            .unwrap()
            .as_bytes()
            .to_vec(),
    );
    // Without a code: an error naming --mfa-code, not a wait.
    cli.run(&["mfa", "enroll", "totp", "--confirm", &method_id])
        .await
        .error("pass --mfa-code CODE");
    let run = cli
        .run(&[
            "mfa",
            "enroll",
            "totp",
            "--confirm",
            &method_id,
            "--mfa-code",
            &codes.fresh().await,
        ])
        .await
        .ok();
    assert!(
        run.stdout
            .contains(&format!("TOTP method {method_id} enrolled.")),
        "{}",
        run.stdout
    );
    let backup: Vec<&str> = run
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Your backup codes"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .collect();
    assert_eq!(
        backup.len(),
        10,
        "the first backup codes, once: {}",
        run.stdout
    );
    codes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_then_step_up_through_convox_with_the_code_in_rack_url() {
    let Some(_) = testkit::skip_without_convox(
        "enrolment_then_step_up_through_convox_with_the_code_in_rack_url",
    ) else {
        return;
    };
    let rack = Rack::start().await;
    let app = mfa_app(&rack, &[]).await;
    let email = person(Role::Deployer);
    let login = app.cli_login(&email).await;
    assert_eq!(login["enrollment_required"], true, "{login}");
    let token = login["token"].as_str().unwrap().to_owned();
    let cli = RackGateway::new(&app, &token, &email);

    // A session that may only enrol: the CLI says so before convox runs.
    cli.run(&["env", "set", "A=1", "-a", SEED_APP])
        .await
        .error("MFA enrollment required");
    let codes = enrol_from_the_cli(&cli).await;
    let entry = cli.entry();
    assert_eq!(entry["mfa_verified"], true, "{entry}");
    assert_eq!(entry["mfa_method"], "totp", "{entry}");

    // Enrolling opened no step-up window: `env set` needs a code, and without a
    // terminal the CLI says --mfa-code instead of running convox.
    cli.run(&["env", "set", "A=1", "-a", SEED_APP]).await.error(
        "convox:env:set needs MFA and there is no terminal to ask for a code: pass --mfa-code CODE",
    );
    let step_up = codes.fresh().await;
    cli.run(&["env", "set", "A=1", "-a", SEED_APP, "--mfa-code", &step_up])
        .await
        .ok();
    // The window is open now: no code, no prompt, the plain token.
    cli.run(&["env", "set", "B=2", "-a", SEED_APP]).await.ok();
    let run = cli.run(&["mfa", "list"]).await.ok();
    assert!(
        run.stdout.contains("Step-up window: open until"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("totp      phone"), "{}", run.stdout);
    let env = cli.run(&["env", "-a", SEED_APP]).await.ok();
    assert!(
        env.stdout.contains("A=1") && env.stdout.contains("B=2"),
        "{}",
        env.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_waiting_for_mfa_is_finished_by_mfa_verify_and_replays_are_refused() {
    let rack = Rack::start().await;
    let app = mfa_app(&rack, &[]).await;
    let email = person(Role::Deployer);
    let first = app.cli_login(&email).await;
    let first_cli = RackGateway::new(&app, first["token"].as_str().unwrap(), &email);
    let codes = enrol_from_the_cli(&first_cli).await;

    // Signing in again: the person has a method now, so the session must verify.
    let login = app.cli_login(&email).await;
    assert_eq!(login["mfa_required"], true, "{login}");
    let cli = RackGateway::new(&app, login["token"].as_str().unwrap(), &email);
    cli.run(&["test-auth", "--mfa"])
        .await
        .error("there is no terminal to ask for an MFA code: pass --mfa-code CODE");
    cli.run(&["mfa", "verify", "--mfa-code", "000000"])
        .await
        .error("MFA verification failed");
    let verified = codes.fresh().await;
    let run = cli
        .run(&["mfa", "verify", "--mfa-code", &verified])
        .await
        .ok();
    assert!(
        run.stdout.starts_with("MFA verified with totp"),
        "{}",
        run.stdout
    );
    assert_eq!(cli.entry()["mfa_verified"], true);
    assert_eq!(cli.entry()["mfa_method"], "totp");
    cli.run(&["test-auth"]).await.ok();
    // The same code again: the gateway refuses the replay, in its words.
    cli.run(&["test-auth", "--mfa", "--mfa-code", &verified])
        .await
        .error("MFA verification failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clis_own_always_and_step_up_calls_carry_the_code_in_the_header() {
    let rack = Rack::start().await;
    let app = mfa_app(&rack, &[]).await;
    let email = person(Role::Admin);
    let login = app.cli_login(&email).await;
    let cli = RackGateway::new(&app, login["token"].as_str().unwrap(), &email);
    let codes = enrol_from_the_cli(&cli).await;

    // `gateway:api_token:create` is `always`: refused without a code, and the
    // CLI (no terminal) names --mfa-code.
    cli.run(&["api-token", "create", "--name", "ci", "--role", "cicd"])
        .await
        .error("gateway:api_token:create needs MFA and there is no terminal to ask for a code: pass --mfa-code CODE");
    let run = cli
        .run(&[
            "api-token",
            "create",
            "--name",
            "ci",
            "--role",
            "cicd",
            "--output",
            "token",
            "--mfa-code",
            &codes.fresh().await,
        ])
        .await
        .ok();
    assert!(
        run.stdout.trim().starts_with("rgw_token_"),
        "{}",
        run.stdout
    );

    // Backup codes: `step_up`; that create opened the window, so none is asked now.
    let run = cli.run(&["mfa", "backup-codes", "regenerate"]).await.ok();
    let codes: Vec<String> = run
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("  "))
        .map(str::to_owned)
        .collect();
    assert_eq!(codes.len(), 10, "{}", run.stdout);
    let run = cli.run(&["mfa", "backup-codes"]).await.ok();
    assert!(
        run.stdout.contains("Backup codes remaining: 10"),
        "{}",
        run.stdout
    );
    // A backup code serves as proof on an `always` call, once.
    cli.run(&[
        "api-token",
        "create",
        "--name",
        "ci2",
        "--role",
        "cicd",
        "--mfa-code",
        &codes[0],
    ])
    .await
    .ok();
    cli.run(&[
        "api-token",
        "create",
        "--name",
        "ci3",
        "--role",
        "cicd",
        "--mfa-code",
        &codes[0],
    ])
    .await
    .error("");
    let run = cli.run(&["mfa", "backup-codes"]).await.ok();
    assert!(
        run.stdout.contains("Backup codes remaining: 9"),
        "{}",
        run.stdout
    );
}
