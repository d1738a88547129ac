//! MFA in the CLI against the fake gateway's MFA routes: login that must
//! verify or enrol, step-up before wrapped convox commands (the code in
//! `RACK_URL`'s password), `always`, API tokens never asked, `test-auth --mfa`,
//! `mfa list|enroll totp|backup-codes|verify`, WebAuthn through the browser page.
//! The CLI runs without a terminal here (stdin is null): it must fail with an
//! error naming `--mfa-code` rather than wait.

use serde_json::{json, Value};

use crate::support::{first_line_of, http, Behaviour, FakeGateway, FakeMfa, Sandbox};

const EMAIL: &str = "deployer@example.com";

fn totp_method(id: &str) -> Value {
    json!({"id": id, "kind": "totp", "label": "phone", "cli_compatible": true, "disabled": false,
           "created_at": "2026-12-01T00:00:00Z", "last_used_at": null})
}

fn webauthn_method(id: &str, cli_compatible: bool) -> Value {
    json!({"id": id, "kind": "webauthn", "label": "key", "cli_compatible": cli_compatible,
           "disabled": false, "created_at": "2026-12-01T00:00:00Z", "last_used_at": null})
}

fn rack_url_of(stdout: &str) -> &str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("RACK_URL="))
        .unwrap_or_default()
}

fn args_of(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ARG="))
        .collect()
}

/// A fake gateway, a sandbox logged in as the deployer with a TOTP method, and its token.
async fn logged_in_with_totp(codes: &[&str]) -> (FakeGateway, Sandbox, String) {
    let fake = FakeGateway::start().await;
    fake.set_mfa(
        EMAIL,
        FakeMfa {
            methods: vec![totp_method("t-1")],
            codes: codes.iter().map(|c| (*c).to_owned()).collect(),
            backup_codes_remaining: 10,
            ..FakeMfa::default()
        },
    );
    let (token, _) = fake.add_session(EMAIL, "deployer");
    let sandbox = Sandbox::new();
    sandbox.logged_in("prod", &fake.url, &token, EMAIL);
    (fake, sandbox, token)
}

#[tokio::test]
async fn a_step_up_command_without_a_terminal_or_code_fails_naming_mfa_code() {
    let (fake, mut sandbox, _) = logged_in_with_totp(&["123456"]).await;
    let marker = sandbox.dir.path().join("ran");
    sandbox.set_env("FAKE_CONVOX_MARKER", marker.display().to_string());
    let run = sandbox.run(&["env", "set", "A=1", "-a", "myapp"]).await;
    run.assert_error(
        "convox:env:set needs MFA and there is no terminal to ask for a code: pass --mfa-code CODE",
    );
    assert!(!marker.exists(), "convox must not run");
    assert_eq!(fake.requests_to("/api/v1/auth/mfa/status").len(), 1);
}

#[tokio::test]
async fn mfa_code_rides_in_rack_url_and_is_not_passed_to_convox() {
    let (fake, sandbox, token) = logged_in_with_totp(&[]).await;
    let run = sandbox
        .run(&["env", "set", "A=1", "--mfa-code", "654 321", "-a", "myapp"])
        .await;
    run.assert_ok();
    assert_eq!(args_of(&run.stdout), ["env", "set", "A=1", "-a", "myapp"]);
    let expected = format!(
        "http://convox:{token}.totp.654321@{}/api/v1/rack-proxy",
        fake.url.trim_start_matches("http://")
    );
    assert_eq!(rack_url_of(&run.stdout), expected);
    // The code was never sent to the gateway by the CLI itself: convox carries it.
    assert!(fake.requests_to("/api/v1/auth/mfa/verify").is_empty());
}

#[tokio::test]
async fn an_open_window_means_no_prompt_and_a_plain_token() {
    let (fake, sandbox, token) = logged_in_with_totp(&[]).await;
    fake.update_session(&token, |s| {
        s.step_up_until = Some(chrono::Utc::now().timestamp() + 300)
    });
    let run = sandbox.run(&["deploy", "-a", "myapp"]).await;
    run.assert_ok();
    assert!(rack_url_of(&run.stdout).contains(&format!("convox:{token}@")));

    // A window ending in less than 10 s counts as closed.
    fake.update_session(&token, |s| {
        s.step_up_until = Some(chrono::Utc::now().timestamp() + 5)
    });
    sandbox
        .run(&["deploy", "-a", "myapp"])
        .await
        .assert_error("convox:build:create needs MFA");
}

#[tokio::test]
async fn always_needs_a_code_even_with_an_open_window() {
    let (fake, sandbox, token) = logged_in_with_totp(&[]).await;
    fake.update_session(&token, |s| {
        s.step_up_until = Some(chrono::Utc::now().timestamp() + 300)
    });
    sandbox
        .run(&["apps", "delete", "myapp"])
        .await
        .assert_error("convox:app:delete needs MFA");
    let run = sandbox
        .run(&["apps", "delete", "myapp", "--mfa-code", "111111"])
        .await;
    run.assert_ok();
    assert!(rack_url_of(&run.stdout).contains(&format!("convox:{token}.totp.111111@")));
}

#[tokio::test]
async fn reads_ask_nothing_and_api_tokens_are_never_asked() {
    let (fake, mut sandbox, token) = logged_in_with_totp(&[]).await;
    let run = sandbox.run(&["ps", "-a", "myapp"]).await;
    run.assert_ok();
    assert!(rack_url_of(&run.stdout).contains(&format!("convox:{token}@")));
    assert!(fake.requests_to("/api/v1/auth/mfa/status").is_empty());

    sandbox.set_env("RACK_GATEWAY_API_TOKEN", "rgw_token_ci");
    let run = sandbox.run(&["env", "set", "A=1", "--mfa-code", "1"]).await;
    run.assert_ok();
    assert!(rack_url_of(&run.stdout).contains("convox:rgw_token_ci@"));
    assert!(fake.requests_to("/api/v1/auth/mfa/status").is_empty());
}

#[tokio::test]
async fn login_that_must_verify_uses_mfa_code_and_records_the_method() {
    let fake = FakeGateway::start_with(Behaviour {
        auto_browser: Some((EMAIL.into(), 0)),
        mfa_enforced: true,
        ..Behaviour::default()
    })
    .await;
    fake.set_mfa(
        EMAIL,
        FakeMfa {
            methods: vec![totp_method("t-1")],
            codes: vec!["246810".into()],
            ..FakeMfa::default()
        },
    );
    let sandbox = Sandbox::new();
    let run = sandbox
        .run(&[
            "login",
            "prod",
            &fake.url,
            "--no-open",
            "--mfa-code",
            "246810",
        ])
        .await;
    run.assert_ok();
    assert!(
        run.stderr.contains("MFA verification required."),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("MFA verified"), "{}", run.stderr);
    assert!(run
        .stdout
        .contains("Logged in to prod as deployer@example.com"));
    let entry = &sandbox.config()["gateways"]["prod"];
    assert_eq!(entry["mfa_verified"], true);
    assert_eq!(entry["mfa_method"], "totp");
    let verify = fake.requests_to("/api/v1/auth/mfa/verify");
    assert_eq!(verify.len(), 1);
    assert_eq!(verify[0].body, json!({"code": "246810"}));
    assert!(fake.session_of(EMAIL).unwrap().mfa_verified);
}

#[tokio::test]
async fn login_that_must_verify_without_a_terminal_saves_the_session_and_says_what_to_run() {
    let fake = FakeGateway::start_with(Behaviour {
        auto_browser: Some((EMAIL.into(), 0)),
        mfa_enforced: true,
        ..Behaviour::default()
    })
    .await;
    fake.set_mfa(
        EMAIL,
        FakeMfa {
            methods: vec![totp_method("t-1")],
            codes: vec!["135790".into()],
            ..FakeMfa::default()
        },
    );
    let sandbox = Sandbox::new();
    let run = sandbox
        .run(&["login", "prod", &fake.url, "--no-open"])
        .await;
    run.assert_error("there is no terminal to ask for an MFA code: pass --mfa-code CODE");
    assert!(
        run.stderr.contains("rack-gateway mfa verify"),
        "{}",
        run.stderr
    );
    let entry = &sandbox.config()["gateways"]["prod"];
    assert_eq!(entry["mfa_verified"], false);
    assert!(entry["token"].as_str().unwrap().starts_with("rgw_sess_"));

    // A wrong code is refused with the gateway's words; the right one finishes the sign-in.
    sandbox
        .run(&["mfa", "verify", "--mfa-code", "000000"])
        .await
        .assert_error("MFA verification failed: invalid MFA code");
    let run = sandbox
        .run(&["mfa", "verify", "--mfa-code", "135790"])
        .await;
    run.assert_ok();
    assert!(
        run.stdout
            .starts_with("MFA verified with totp; step-up window open until"),
        "{}",
        run.stdout
    );
    let entry = &sandbox.config()["gateways"]["prod"];
    assert_eq!(entry["mfa_verified"], true);
    assert_eq!(entry["mfa_method"], "totp");
}

#[tokio::test]
async fn login_that_must_enrol_then_enrol_totp_in_two_steps_without_a_terminal() {
    let fake = FakeGateway::start_with(Behaviour {
        auto_browser: Some((EMAIL.into(), 0)),
        mfa_enforced: true,
        ..Behaviour::default()
    })
    .await;
    let sandbox = Sandbox::new();
    let run = sandbox
        .run(&["login", "prod", &fake.url, "--no-open"])
        .await;
    run.assert_error("MFA enrollment required: the session is saved but may only enrol. Enrol with: rack-gateway mfa enroll totp");
    assert!(run.stderr.contains(&format!("{}/app/mfa/enroll", fake.url)));

    // Another step-up command says the same: enrol first.
    sandbox.run(&["env", "set", "A=1"]).await.assert_error(
        "MFA enrollment required: enrol a method first with: rack-gateway mfa enroll totp",
    );

    let run = sandbox
        .run(&["mfa", "enroll", "totp", "--label", "phone"])
        .await;
    run.assert_ok();
    let method_id = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Method id: "))
        .expect("method id printed")
        .to_owned();
    assert!(run.stdout.contains("Secret: JBSWY3DPEHPK3PXP"));
    assert!(run.stdout.contains("otpauth URL: otpauth://totp/"));
    assert!(run.stdout.contains(&format!(
        "Confirm with: rack-gateway mfa enroll totp --confirm {method_id} --mfa-code CODE"
    )));
    assert_eq!(
        fake.requests_to("/api/v1/auth/mfa/enroll/totp/start")[0].body,
        json!({"label": "phone"})
    );

    // Without a code there is nothing to confirm with, and no waiting.
    sandbox
        .run(&["mfa", "enroll", "totp", "--confirm", &method_id])
        .await
        .assert_error("confirming the enrolment needs the first code from your app and there is no terminal to ask for it: pass --mfa-code CODE");
    sandbox
        .run(&[
            "mfa",
            "enroll",
            "totp",
            "--confirm",
            &method_id,
            "--mfa-code",
            "999999",
        ])
        .await
        .assert_error("TOTP enrolment not confirmed: invalid TOTP code");
    let code = fake.confirming_code(&method_id).unwrap();
    let run = sandbox
        .run(&[
            "mfa",
            "enroll",
            "totp",
            "--confirm",
            &method_id,
            "--mfa-code",
            &code,
        ])
        .await;
    run.assert_ok();
    assert!(run
        .stdout
        .contains(&format!("TOTP method {method_id} enrolled.")));
    let first_codes: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("  FIRST"))
        .collect();
    assert_eq!(
        first_codes.len(),
        10,
        "the first backup codes are shown: {}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("backup-codes regenerate"),
        "{}",
        run.stdout
    );
    let entry = &sandbox.config()["gateways"]["prod"];
    assert_eq!(entry["mfa_verified"], true);
    assert_eq!(entry["mfa_method"], "totp");
    // Enrolling verifies the sign-in but opens no step-up window.
    assert_eq!(fake.session_of(EMAIL).unwrap().step_up_until, None);
}

#[tokio::test]
async fn test_auth_mfa_runs_a_step_up() {
    let (fake, sandbox, token) = logged_in_with_totp(&["424242"]).await;
    let run = sandbox
        .run(&["test-auth", "--mfa", "--mfa-code", "424242"])
        .await;
    run.assert_ok();
    assert!(run.stdout.contains("Authenticated as deployer@example.com"));
    assert!(
        run.stdout
            .contains("MFA verified with totp; step-up window open until"),
        "{}",
        run.stdout
    );
    assert!(fake.session(&token).unwrap().step_up_until.is_some());
    // Without a code and without a terminal: an error, not a wait.
    sandbox
        .run(&["test-auth", "--mfa"])
        .await
        .assert_error("there is no terminal to ask for an MFA code: pass --mfa-code CODE");
}

#[tokio::test]
async fn backup_codes_regenerate_sends_the_code_as_a_header_and_prints_them_once() {
    let (fake, sandbox, _) = logged_in_with_totp(&["777777"]).await;
    let run = sandbox.run(&["mfa", "backup-codes"]).await;
    run.assert_ok();
    assert!(run.stdout.contains("Backup codes remaining: 10"));

    sandbox
        .run(&["mfa", "backup-codes", "regenerate"])
        .await
        .assert_error("auth:mfa_backup_codes:generate needs MFA and there is no terminal");
    let run = sandbox
        .run(&["mfa", "backup-codes", "regenerate", "--mfa-code", "777777"])
        .await;
    run.assert_ok();
    let printed: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("  BACKUP"))
        .collect();
    assert_eq!(printed.len(), 10, "{}", run.stdout);
    // The first (refused) try without a code, then the one with it.
    let calls = fake.requests_to("/api/v1/auth/mfa/backup-codes/regenerate");
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].mfa_code, None);
    assert_eq!(calls[1].mfa_code.as_deref(), Some("777777"));
}

#[tokio::test]
async fn mfa_list_shows_methods_backup_codes_and_the_window() {
    let fake = FakeGateway::start().await;
    fake.set_mfa(
        EMAIL,
        FakeMfa {
            methods: vec![totp_method("t-1"), webauthn_method("w-1", false)],
            preferred: Some("t-1".into()),
            backup_codes_remaining: 7,
            ..FakeMfa::default()
        },
    );
    let (token, _) = fake.add_session(EMAIL, "deployer");
    let sandbox = Sandbox::new();
    sandbox.logged_in("prod", &fake.url, &token, EMAIL);
    let run = sandbox.run(&["mfa", "list"]).await;
    run.assert_ok();
    assert!(run.stdout.contains("totp      phone"), "{}", run.stdout);
    assert!(run.stdout.contains("t-1  (preferred)"), "{}", run.stdout);
    assert!(
        run.stdout.contains("w-1  (not usable from the CLI)"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Backup codes remaining: 7"));
    assert!(run.stdout.contains("This session: verified with totp"));
    assert!(run.stdout.contains("Step-up window: closed"));
}

#[tokio::test]
async fn method_choice_errors_are_the_documented_ones() {
    let fake = FakeGateway::start().await;
    let (token, _) = fake.add_session(EMAIL, "deployer");
    let sandbox = Sandbox::new();
    sandbox.logged_in("prod", &fake.url, &token, EMAIL);
    // No method and no obligation to have one: the gateway asks nothing, nor does the CLI.
    let run = sandbox.run(&["env", "set", "A=1"]).await;
    run.assert_ok();
    assert!(rack_url_of(&run.stdout).contains(&format!("convox:{token}@")));
    // Asking to verify without a method is the documented error.
    sandbox
        .run(&["test-auth", "--mfa"])
        .await
        .assert_error("MFA not enrolled - this command requires MFA");
    fake.set_mfa(
        EMAIL,
        FakeMfa {
            methods: vec![webauthn_method("w-1", false)],
            ..FakeMfa::default()
        },
    );
    sandbox
        .run(&["env", "set", "A=1"])
        .await
        .assert_error("no CLI-compatible MFA methods found");
    sandbox
        .run(&["env", "set", "A=1", "--mfa-method", "totp"])
        .await
        .assert_error("--mfa-method totp: no CLI-compatible TOTP or YubiKey method is enrolled");
}

#[tokio::test]
async fn webauthn_step_up_goes_through_the_browser_page() {
    let fake = FakeGateway::start().await;
    fake.set_mfa(
        EMAIL,
        FakeMfa {
            methods: vec![webauthn_method("w-1", true), totp_method("t-1")],
            preferred: Some("w-1".into()),
            ..FakeMfa::default()
        },
    );
    let (token, _) = fake.add_session(EMAIL, "deployer");
    let sandbox = Sandbox::new();
    sandbox.logged_in("prod", &fake.url, &token, EMAIL);

    // The preferred method is WebAuthn, but with no terminal only an explicit
    // --mfa-method webauthn uses the browser.
    sandbox
        .run(&["env", "set", "A=1"])
        .await
        .assert_error("convox:env:set needs MFA and there is no terminal to ask for a code: pass --mfa-code CODE (a TOTP, YubiKey or backup code), or --mfa-method webauthn");

    let child = sandbox.command(&["env", "set", "A=1", "--mfa-method", "webauthn"]);
    let running = tokio::spawn(crate::support::output(child));
    // The CLI opened the page in the (recording) browser; "the person" completes it.
    let page = first_line_of(&sandbox.browser_log()).await;
    assert!(
        page.starts_with(&format!("{}/fake-browser/webauthn/", fake.url)),
        "{page}"
    );
    let visited = http().get(&page).send().await.unwrap();
    assert!(visited.status().is_success());
    let run = running.await.unwrap();
    run.assert_ok();
    assert!(run.stderr.contains("MFA verified"), "{}", run.stderr);
    // The window is open now: convox gets the plain token.
    assert!(rack_url_of(&run.stdout).contains(&format!("convox:{token}@")));
    let started = fake.requests_to("/api/v1/auth/mfa/webauthn/browser/start");
    assert_eq!(started[0].body, json!({"purpose": "step_up"}));
}

#[tokio::test]
async fn a_bad_mfa_preference_in_the_config_is_a_clear_error() {
    let (_fake, sandbox, _) = logged_in_with_totp(&[]).await;
    let mut config = sandbox.config();
    config["mfa_preference"] = json!("sms");
    sandbox.write_config(config);
    sandbox.run(&["env", "set", "A=1"]).await.assert_error(
        "mfa_preference in config.json is \"sms\"; it must be default, webauthn or totp",
    );
}

#[tokio::test]
async fn the_clis_own_always_calls_try_first_then_need_a_code() {
    let fake = FakeGateway::start().await;
    let admin = "admin@example.com";
    fake.set_mfa(
        admin,
        FakeMfa {
            methods: vec![totp_method("t-1")],
            codes: vec!["314159".into()],
            ..FakeMfa::default()
        },
    );
    let (token, _) = fake.add_session(admin, "admin");
    let sandbox = Sandbox::new();
    sandbox.logged_in("prod", &fake.url, &token, admin);
    sandbox
        .run(&["api-token", "create", "--name", "ci", "--role", "cicd"])
        .await
        .assert_error("gateway:api_token:create needs MFA and there is no terminal to ask for a code: pass --mfa-code CODE");
    assert_eq!(
        fake.requests_to("/api/v1/api-tokens").len(),
        1,
        "tried once, no retry without a code"
    );

    let run = sandbox
        .run(&[
            "api-token",
            "create",
            "--name",
            "ci",
            "--role",
            "cicd",
            "--mfa-code",
            "314159",
        ])
        .await;
    run.assert_ok();
    let calls = fake.requests_to("/api/v1/api-tokens");
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].mfa_code.as_deref(), Some("314159"));
    // The code was used: the same one again is refused by the gateway, in its words.
    sandbox
        .run(&[
            "api-token",
            "create",
            "--name",
            "ci2",
            "--role",
            "cicd",
            "--mfa-code",
            "314159",
        ])
        .await
        .assert_error("MFA step-up required for gateway:api_token:create");
}

#[tokio::test]
async fn on_a_terminal_the_step_up_prompts_and_the_typed_code_rides_in_rack_url() {
    let (_fake, sandbox, token) = logged_in_with_totp(&[]).await;
    let Some(run) = sandbox
        .run_on_terminal(&["env", "set", "A=1", "-a", "myapp"], "12 34 56\n")
        .await
    else {
        return;
    };
    run.assert_ok();
    assert!(
        run.stdout
            .contains("MFA step-up required for convox:env:set."),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("Enter TOTP code (or a backup code): "),
        "{}",
        run.stdout
    );
    // The terminal echoes the typed code, so RACK_URL follows the prompt on its line.
    assert!(
        run.stdout
            .contains(&format!("RACK_URL=http://convox:{token}.totp.123456@")),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn on_a_terminal_login_asks_for_the_code_then_verifies() {
    let fake = FakeGateway::start_with(Behaviour {
        auto_browser: Some((EMAIL.into(), 0)),
        mfa_enforced: true,
        ..Behaviour::default()
    })
    .await;
    fake.set_mfa(
        EMAIL,
        FakeMfa {
            methods: vec![totp_method("t-1")],
            codes: vec!["112233".into()],
            ..FakeMfa::default()
        },
    );
    let sandbox = Sandbox::new();
    // A wrong code first: the gateway's refusal, and another try.
    let Some(run) = sandbox
        .run_on_terminal(
            &["login", "prod", &fake.url, "--no-open"],
            "999999\n112233\n",
        )
        .await
    else {
        return;
    };
    run.assert_ok();
    let text = &run.stdout;
    let asked = text.find("MFA verification required.").expect(text);
    let refused = text.find("invalid MFA code; try again.").expect(text);
    let verified = text.find("MFA verified").expect(text);
    let logged_in = text
        .find("Logged in to prod as deployer@example.com")
        .expect(text);
    assert!(
        asked < refused && refused < verified && verified < logged_in,
        "{text}"
    );
    assert_eq!(sandbox.config()["gateways"]["prod"]["mfa_verified"], true);
}

#[tokio::test]
async fn on_a_terminal_login_offers_the_enrolment_with_a_qr_code() {
    let fake = FakeGateway::start_with(Behaviour {
        auto_browser: Some((EMAIL.into(), 0)),
        mfa_enforced: true,
        ..Behaviour::default()
    })
    .await;
    let sandbox = Sandbox::new();
    // "Yes" to the offer, then three wrong codes: each refused, the enrolment
    // not confirmed, the session still unverified (the two-step confirmation
    // with the right code is the test above).
    let Some(run) = sandbox
        .run_on_terminal(
            &["login", "prod", &fake.url, "--no-open"],
            "y\n000000\n000000\n000000\n",
        )
        .await
    else {
        return;
    };
    assert_eq!(run.code, 1, "{}", run.stdout);
    let text = &run.stdout;
    assert!(
        text.contains("Enrol an authenticator app (TOTP) now? [Y/n]"),
        "{text}"
    );
    assert!(
        text.contains("Scan this QR code with your authenticator app:"),
        "{text}"
    );
    assert!(
        text.contains('▀') || text.contains('▄'),
        "a QR code is drawn: {text}"
    );
    assert!(text.contains("Secret: JBSWY3DPEHPK3PXP"), "{text}");
    assert!(
        text.contains("TOTP enrolment not confirmed: invalid TOTP code"),
        "{text}"
    );
    assert_eq!(sandbox.config()["gateways"]["prod"]["mfa_verified"], false);
}
