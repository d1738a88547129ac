//! MFA over HTTP, through the rack proxy and with the real `convox` CLI:
//! enrolment restricts nothing but itself, sign-in waits for a second
//! factor, step-up windows and proof on the request, replays refused,
//! backup codes each once, YubiKey OTP against `mock-yubico`, the lock
//! after repeated failures, and no secret in the chain.

use chrono::Utc;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tools::mock_rack::SEED_APP;
use tools::mock_yubico::{MockYubico, TestKey};

use crate::helpers::{person, Rack, Role, TestApp};
use crate::proxy_cli::Cli;

/// A person signed in with MFA: their session, TOTP codes and unused backup codes.
struct Enrolled {
    token: String,
    codes: Codes,
    method_id: String,
    backup_codes: Vec<String>,
}

/// TOTP codes of one seed as an authenticator app gives them. The gateway
/// accepts the steps now-1, now and now+1, each once per person; handing each
/// step out once keeps a test from replaying by accident when a 30-second
/// boundary passes between two codes.
pub(crate) struct Codes {
    seed: Vec<u8>,
    handed_out: std::sync::Mutex<Vec<i64>>,
}

impl Codes {
    pub(crate) fn new(seed: Vec<u8>) -> Codes {
        Codes {
            seed,
            handed_out: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn seed(&self) -> &[u8] {
        &self.seed
    }

    /// A code of a step not handed out yet: this one, else the next, else the
    /// last (only with time to use it before it leaves the window).
    pub(crate) async fn fresh(&self) -> String {
        loop {
            let now = Utc::now().timestamp();
            let step = now / 30;
            let chosen = {
                let mut handed = self.handed_out.lock().unwrap();
                let free = [step, step + 1, step - 1]
                    .into_iter()
                    .find(|s| !handed.contains(s));
                match free {
                    Some(s) if s != step - 1 || now % 30 < 25 => {
                        handed.push(s);
                        Some(s)
                    }
                    _ => None,
                }
            };
            match chosen {
                Some(s) => return self.of_step(s),
                // Every step in the window is spent (or the last one is about to leave it).
                None => {
                    tokio::time::sleep(std::time::Duration::from_secs(
                        u64::try_from(30 - now % 30).unwrap(),
                    ))
                    .await
                }
            }
        }
    }

    /// The `nth` code handed out, again: a replay while its step is in the window.
    pub(crate) fn again(&self, nth: usize) -> String {
        let step = self.handed_out.lock().unwrap()[nth];
        self.of_step(step)
    }

    fn of_step(&self, step: i64) -> String {
        gateway::mfa::totp::code_at(&self.seed, u64::try_from(step * 30).unwrap()).unwrap()
    }
}

pub(crate) async fn mfa_app(rack: &Rack, settings: &[(&str, &str)]) -> TestApp {
    let mut build = TestApp::build()
        .rack(&rack.url())
        .sign_in()
        .env("MFA_REQUIRE_ALL_USERS", "true");
    for (name, value) in settings {
        build = build.env(name, *value);
    }
    build.spawn().await
}

/// Sign in through the CLI flow, enrol TOTP, and confirm it with a code.
async fn enrol(app: &TestApp, role: Role) -> Enrolled {
    let login = app.cli_login(&person(role)).await;
    assert_eq!(login["enrollment_required"], true, "{login}");
    assert_eq!(login["mfa_required"], false, "{login}");
    let token = login["token"].as_str().unwrap().to_owned();
    let started = app
        .as_(&token)
        .call(
            Method::POST,
            "/api/v1/auth/mfa/enroll/totp/start",
            Some(json!({"label": "phone"})),
        )
        .await;
    assert_eq!(started.status, StatusCode::OK, "{:?}", started.body);
    let secret = started.body["secret"].as_str().unwrap();
    assert!(started.body["otpauth_url"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/"));
    assert!(started.body["qr_svg"].as_str().unwrap().contains("<svg"));
    let codes = Codes::new(
        totp_rs::Secret::try_from_base32(secret)
            .unwrap()
            .as_bytes()
            .to_vec(),
    );
    let method_id = started.body["method_id"].as_str().unwrap().to_owned();
    let confirmed = app
        .as_(&token)
        .call(
            Method::POST,
            "/api/v1/auth/mfa/enroll/totp/confirm",
            Some(json!({"method_id": method_id, "code": codes.fresh().await})),
        )
        .await;
    assert_eq!(
        confirmed.status,
        StatusCode::CREATED,
        "{:?}",
        confirmed.body
    );
    assert_eq!(confirmed.body["method"]["kind"], "totp");
    assert_eq!(confirmed.body["method"]["label"], "phone");
    let backup_codes: Vec<String> = confirmed.body["backup_codes"]
        .as_array()
        .expect("first backup codes")
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(backup_codes.len(), 10);
    Enrolled {
        token,
        codes,
        method_id,
        backup_codes,
    }
}

/// The payloads of one event type, in order.
async fn data_of(app: &TestApp, event_type: &str) -> Vec<Value> {
    app.events_of(event_type)
        .await
        .into_iter()
        .map(|body| body["data"].clone())
        .collect()
}

async fn enrol_key(app: &TestApp, token: &str, otp: String) -> crate::helpers::Answer {
    app.as_(token)
        .call(
            Method::POST,
            "/api/v1/auth/mfa/enroll/yubiotp/start",
            Some(json!({"otp": otp, "label": "blue key"})),
        )
        .await
}

async fn status(app: &TestApp, token: &str) -> Value {
    let answer = app
        .as_(token)
        .call(Method::GET, "/api/v1/auth/mfa/status", None)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    answer.body
}

async fn verify(app: &TestApp, token: &str, code: &str) -> crate::helpers::Answer {
    app.as_(token)
        .call(
            Method::POST,
            "/api/v1/auth/mfa/verify",
            Some(json!({"code": code})),
        )
        .await
}

async fn env_set(app: &TestApp, token: &str, header: Option<&str>) -> (StatusCode, String, String) {
    let mut request = app
        .client
        .post(app.url("/api/v1/rack-proxy/apps/myapp/releases"))
        .basic_auth("convox", Some(token))
        .form(&[("env", "A=1")]);
    if let Some(code) = header {
        request = request.header("X-MFA-TOTP", code);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let reason = crate::helpers::error_reason(response.headers());
    (status, reason, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_sign_in_step_up_and_replays_over_http_and_the_proxy() {
    let rack = Rack::start().await;
    let app = mfa_app(&rack, &[]).await;

    // Not enrolled yet: the session may enrol, nothing else.
    let login = app.cli_login(&person(Role::Deployer)).await;
    let fresh = login["token"].as_str().unwrap().to_owned();
    let refused = app.proxy(&fresh).get("/apps").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        crate::helpers::error_reason(refused.headers()),
        "mfa_enrollment_required"
    );
    let text = refused.text().await.unwrap();
    assert!(text.contains("/app/mfa/enroll"), "{text}");
    assert!(text.contains("rack-gateway mfa enroll totp"), "{text}");
    let st = status(&app, &fresh).await;
    assert_eq!(st["enrollment_required"], true);
    assert_eq!(st["enrolled"], false);

    let me = enrol(&app, Role::Deployer).await;
    // Confirming the first method verified that session for sign-in, with no step-up window.
    let st = status(&app, &me.token).await;
    assert_eq!(st["mfa_verified"], true, "{st}");
    assert_eq!(st["mfa_method"], "totp");
    assert_eq!(st["recent_step_up_expires_at"], Value::Null);
    assert_eq!(st["backup_codes_remaining"], 10);
    assert_eq!(app.proxy(&me.token).get("/apps").await.status(), 200);

    // A step-up permission without a step-up: refused, with what to do, and recorded.
    let (status_code, reason, text) = env_set(&app, &me.token, None).await;
    assert_eq!(status_code, StatusCode::FORBIDDEN, "{text}");
    assert_eq!(reason, "mfa_step_up_required");
    assert!(
        text.contains("MFA step-up required for convox:env:set: run `rack-gateway mfa verify`"),
        "{text}"
    );
    assert!(text.contains("--mfa-code CODE"), "{text}");
    let denied: Vec<Value> = data_of(&app, "proxy.request")
        .await
        .into_iter()
        .filter(|e| e["decision"] == "deny" && e["permission"] == "convox:env:set")
        .collect();
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert!(denied[0]["reason"]
        .as_str()
        .unwrap()
        .starts_with("MFA step-up required"));

    // The code that confirmed enrolment is spent: replayed, refused.
    let replay = me.codes.again(0);
    let (status_code, reason, _) = env_set(&app, &me.token, Some(&replay)).await;
    assert_eq!(status_code, StatusCode::FORBIDDEN);
    assert_eq!(reason, "replayed_code");
    // A fresh code on the request passes, and opens the window...
    let (status_code, _, text) = env_set(&app, &me.token, Some(&me.codes.fresh().await)).await;
    assert_eq!(status_code, StatusCode::OK, "{text}");
    // ... so the next change needs none.
    let (status_code, _, text) = env_set(&app, &me.token, None).await;
    assert_eq!(status_code, StatusCode::OK, "{text}");
    let st = status(&app, &me.token).await;
    assert!(st["recent_step_up_expires_at"].is_string(), "{st}");

    // A new sign-in of an enrolled person: verify first, then everything.
    let again = app.cli_login(&person(Role::Deployer)).await;
    assert_eq!(again["mfa_required"], true, "{again}");
    assert_eq!(again["enrollment_required"], false, "{again}");
    let second = again["token"].as_str().unwrap().to_owned();
    let refused = app.proxy(&second).get("/apps").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        crate::helpers::error_reason(refused.headers()),
        "mfa_required"
    );
    let bad = verify(&app, &second, "000000").await;
    assert_eq!(bad.status, StatusCode::FORBIDDEN, "{:?}", bad.body);
    assert_eq!(bad.reason(), "invalid_code");
    let ok = verify(&app, &second, &me.codes.fresh().await).await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    assert_eq!(ok.body["mfa_verified"], true);
    assert_eq!(app.proxy(&second).get("/apps").await.status(), 200);
    let info = app.as_(&second).info().await;
    assert_eq!(
        info.body["credential"]["mfa_verified"], true,
        "{:?}",
        info.body
    );

    let succeeded = data_of(&app, "mfa.verification.succeeded").await;
    assert!(succeeded
        .iter()
        .any(|e| e["channel"] == "proxy" && e["opens_step_up"] == true));
    let failed = data_of(&app, "mfa.verification.failed").await;
    assert!(failed.iter().any(|e| e["reason"] == "replayed_code"));
    assert!(failed.iter().any(|e| e["reason"] == "invalid_code"));
    let mut secrets = me.backup_codes.clone();
    secrets.push(totp_rs::Secret::from(me.codes.seed().to_vec()).to_base32());
    app.assert_no_secrets_in_events(&secrets).await;
    for event in app.canonical_events().await {
        // Codes are 6 digits: never recorded under any name.
        assert!(!event.contains("\"code\""), "{event}");
        assert!(!event.contains(&replay), "a TOTP code in {event}");
    }
    app.assert_projections_rebuild().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_needs_proof_on_the_request_and_api_tokens_are_never_asked() {
    let rack = Rack::start().await;
    let app = mfa_app(&rack, &[("ALLOW_DESTRUCTIVE_ACTIONS", "true")]).await;
    let admin = enrol(&app, Role::Admin).await;
    // Open the window with a backup code: `always` still wants proof on the request.
    let ok = verify(&app, &admin.token, &admin.backup_codes[0]).await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    assert_eq!(ok.body["backup_codes_remaining"], 9);
    let create = |code: Option<String>| {
        let app = &app;
        let token = admin.token.clone();
        async move {
            let mut request = app
                .as_(&token)
                .request(Method::POST, "/api/v1/api-tokens")
                .json(&json!({"name": format!("ci-{}", uuid::Uuid::new_v4().simple()), "role": "viewer"}));
            if let Some(code) = code {
                request = request.header("X-MFA-TOTP", code);
            }
            crate::helpers::Answer::read(request.send().await.unwrap()).await
        }
    };
    let refused = create(None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
    assert_eq!(refused.reason(), "mfa_step_up_required");
    assert!(refused.body["error"]
        .as_str()
        .unwrap()
        .contains("MFA required on this very request for gateway:api_token:create"));
    let created = create(Some(admin.codes.fresh().await)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    // The token itself is never asked for MFA, even for what needs step-up.
    let token = created.body["token"].as_str().unwrap();
    assert_eq!(app.proxy(token).get("/apps").await.status(), 200);
    let deployer_token = app.token(Role::Deployer).await;
    let (status_code, _, text) = env_set(&app, &deployer_token, None).await;
    assert_eq!(status_code, StatusCode::OK, "{text}");

    // Proof on the token itself, as `RACK_URL` carries it: app delete is `always`.
    let suffixed = format!("{}.totp.{}", admin.token, admin.backup_codes[1]);
    let deleted = app
        .proxy(&format!("{}.totp.", admin.token))
        .delete(&format!("/apps/{SEED_APP}"))
        .await;
    assert_eq!(deleted.status(), StatusCode::FORBIDDEN);
    let deleted = app
        .proxy(&suffixed)
        .delete(&format!("/apps/{SEED_APP}"))
        .await;
    assert_eq!(
        deleted.status(),
        StatusCode::OK,
        "{}",
        deleted.text().await.unwrap()
    );
    assert!(rack.app(SEED_APP).is_none());
    app.assert_no_secrets_in_events(&admin.backup_codes).await;
    app.assert_projections_rebuild().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_codes_work_once_each_and_regeneration_needs_step_up() {
    let rack = Rack::start().await;
    let app = mfa_app(&rack, &[("MFA_MAX_FAILURES", "50")]).await;
    let me = enrol(&app, Role::Viewer).await;
    let regenerate = |token: String| {
        let app = &app;
        async move {
            app.as_(&token)
                .call(
                    Method::POST,
                    "/api/v1/auth/mfa/backup-codes/regenerate",
                    None,
                )
                .await
        }
    };
    let refused = regenerate(me.token.clone()).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.reason(), "mfa_step_up_required");

    for (n, backup) in me.backup_codes.iter().enumerate() {
        // Lower case and grouped, as people type them.
        let typed = format!("{}-{}", &backup[..6], &backup[6..]).to_ascii_lowercase();
        let ok = verify(&app, &me.token, &typed).await;
        assert_eq!(ok.status, StatusCode::OK, "code {n}: {:?}", ok.body);
        assert_eq!(ok.body["backup_codes_remaining"], 9 - n, "{:?}", ok.body);
    }
    let again = verify(&app, &me.token, &me.backup_codes[3]).await;
    assert_eq!(again.status, StatusCode::FORBIDDEN, "{:?}", again.body);
    assert_eq!(again.reason(), "invalid_code");
    let used = data_of(&app, "mfa.backup_code.used").await;
    assert_eq!(used.len(), 10);
    assert_eq!(used[9]["remaining"], 0);

    // The window is open (the last code opened it): regeneration passes, replaces the set.
    let new = regenerate(me.token.clone()).await;
    assert_eq!(new.status, StatusCode::OK, "{:?}", new.body);
    let codes = new.body["codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    assert_eq!(status(&app, &me.token).await["backup_codes_remaining"], 10);
    let fresh = codes[0].as_str().unwrap();
    assert_eq!(verify(&app, &me.token, fresh).await.status, StatusCode::OK);
    let mut secrets = me.backup_codes.clone();
    secrets.extend(codes.iter().map(|c| c.as_str().unwrap().to_owned()));
    app.assert_no_secrets_in_events(&secrets).await;
    app.assert_projections_rebuild().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_lock_the_person_until_an_admin_unlocks() {
    let rack = Rack::start().await;
    let app = mfa_app(&rack, &[("MFA_MAX_FAILURES", "3")]).await;
    let admin = enrol(&app, Role::Admin).await;
    let me = enrol(&app, Role::Ops).await;
    for _ in 0..2 {
        let bad = verify(&app, &me.token, "123456").await;
        assert_eq!(bad.reason(), "invalid_code", "{:?}", bad.body);
    }
    let third = verify(&app, &me.token, "not-a-code").await;
    assert_eq!(third.reason(), "user_locked", "{:?}", third.body);
    let locked = data_of(&app, "user.locked").await;
    assert_eq!(locked.len(), 1);
    assert_eq!(locked[0]["failures"], 3);
    let alerts = data_of(&app, "security.alert").await;
    assert!(alerts.iter().any(|a| a["alert"] == "user_locked"));
    // The session, the proxy and sign-in all refuse now.
    let info = app.as_(&me.token).info().await;
    assert_eq!(info.status, StatusCode::UNAUTHORIZED);
    assert_eq!(info.reason(), "user_locked");
    assert_eq!(app.proxy(&me.token).get("/apps").await.status(), 401);
    let login = app.cli_start().await;
    app.cli_browser(&login, &person(Role::Ops), None).await;
    let (status_code, _, body) = app.cli_complete(&login.state, &login.cli_secret).await;
    assert_eq!(status_code, StatusCode::FORBIDDEN, "{body}");
    assert!(body.to_string().contains("locked"), "{body}");

    // Unlocking is `always`: refused without proof, done with it.
    let unlock = |code: Option<String>| {
        let app = &app;
        let token = admin.token.clone();
        async move {
            let mut request = app.as_(&token).request(
                Method::POST,
                &format!("/api/v1/users/{}/unlock", person(Role::Ops)),
            );
            if let Some(code) = code {
                request = request.header("X-MFA-TOTP", code);
            }
            crate::helpers::Answer::read(request.send().await.unwrap()).await
        }
    };
    assert_eq!(unlock(None).await.status, StatusCode::FORBIDDEN);
    let done = unlock(Some(admin.backup_codes[0].clone())).await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    assert_eq!(data_of(&app, "user.unlocked").await.len(), 1);
    let ok = verify(&app, &me.token, &me.codes.fresh().await).await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);

    // An admin's view and reset of a person's methods.
    let shown = app
        .as_(&admin.token)
        .call(
            Method::GET,
            &format!("/api/v1/users/{}/mfa", person(Role::Ops)),
            None,
        )
        .await;
    assert_eq!(shown.status, StatusCode::OK, "{:?}", shown.body);
    assert_eq!(shown.body["methods"][0]["id"], me.method_id.as_str());
    let reset = app
        .as_(&admin.token)
        .request(
            Method::POST,
            &format!("/api/v1/users/{}/mfa/reset", person(Role::Ops)),
        )
        .header("X-MFA-TOTP", &admin.backup_codes[1])
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), StatusCode::OK);
    let st = status(&app, &me.token).await;
    assert_eq!(st["enrolled"], false, "{st}");
    assert_eq!(st["backup_codes_remaining"], 0, "{st}");
    let refused = app.proxy(&me.token).get("/apps").await;
    assert_eq!(
        crate::helpers::error_reason(refused.headers()),
        "mfa_enrollment_required"
    );
    app.assert_projections_rebuild().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yubikey_otps_are_bound_to_their_person_and_checked_with_the_service() {
    let secret = "c2VjcmV0LWZvci10ZXN0cw==";
    let yubico = MockYubico::bind(
        "127.0.0.1:0".parse().unwrap(),
        "42",
        secret,
        vec![TestKey::dev(0), TestKey::dev(1)],
    )
    .await
    .unwrap()
    .with_test_controls()
    .spawn();
    let rack = Rack::start().await;
    let url = yubico.url();
    let app = mfa_app(
        &rack,
        &[
            ("YUBICO_API_URL", url.as_str()),
            ("YUBICO_CLIENT_ID", "42"),
            ("YUBICO_SECRET_KEY", secret),
        ],
    )
    .await;
    let key0 = TestKey::dev(0).public_id;
    let key1 = TestKey::dev(1).public_id;

    let mine = app.cli_login(&person(Role::Deployer)).await;
    let mine = mine["token"].as_str().unwrap().to_owned();
    let enrolled = enrol_key(&app, &mine, yubico.mint(&key0).unwrap()).await;
    assert_eq!(enrolled.status, StatusCode::CREATED, "{:?}", enrolled.body);
    assert_eq!(enrolled.body["method"]["kind"], "yubikey");

    // Someone else cannot enrol the same key, and their own key is not mine.
    let theirs = app.cli_login(&person(Role::Viewer)).await;
    let theirs = theirs["token"].as_str().unwrap().to_owned();
    let taken = enrol_key(&app, &theirs, yubico.mint(&key0).unwrap()).await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{:?}", taken.body);
    let other = enrol_key(&app, &theirs, yubico.mint(&key1).unwrap()).await;
    assert_eq!(other.status, StatusCode::CREATED, "{:?}", other.body);
    let not_mine = verify(&app, &mine, &yubico.mint(&key1).unwrap()).await;
    assert_eq!(not_mine.reason(), "invalid_code", "{:?}", not_mine.body);

    // A valid OTP opens the window; the same OTP again is a replay.
    let otp = yubico.mint(&key0).unwrap();
    let ok = verify(&app, &mine, &otp).await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    assert_eq!(ok.body["kind"], "yubikey");
    let replay = verify(&app, &mine, &otp).await;
    assert_eq!(replay.reason(), "replayed_code", "{:?}", replay.body);
    let (status_code, _, text) = env_set(&app, &mine, None).await;
    assert_eq!(status_code, StatusCode::OK, "{text}");

    app.assert_no_secrets_in_events(std::slice::from_ref(&otp))
        .await;
    app.assert_projections_rebuild().await;
    drop(app);

    // A server whose answers are not signed by our secret is not believed.
    let rack = Rack::start().await;
    let forged = format!("{url}?mock_bad_signature=1");
    let app = mfa_app(
        &rack,
        &[
            ("YUBICO_API_URL", forged.as_str()),
            ("YUBICO_CLIENT_ID", "42"),
            ("YUBICO_SECRET_KEY", secret),
        ],
    )
    .await;
    let token = app.cli_login(&person(Role::Deployer)).await;
    let token = token["token"].as_str().unwrap().to_owned();
    let refused = enrol_key(&app, &token, yubico.mint(&key0).unwrap()).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
    assert_eq!(refused.reason(), "yubikey_unavailable");
    yubico.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_convox_cli_steps_up_with_a_code_on_its_token() {
    let Some(bin) =
        testkit::skip_without_convox("the_real_convox_cli_steps_up_with_a_code_on_its_token")
    else {
        return;
    };
    let rack = Rack::start().await;
    let app = mfa_app(&rack, &[]).await;
    let me = enrol(&app, Role::Deployer).await;

    let plain = Cli::new(&bin, &app, &me.token);
    let out = plain.run(&["apps"]).await.ok();
    assert!(out.stdout.contains(SEED_APP), "{out:?}");
    let out = plain
        .run(&["env", "set", "FOO=bar", "-a", SEED_APP])
        .await
        .refused();
    assert!(
        out.stderr
            .contains("MFA step-up required for convox:env:set"),
        "{out:?}"
    );

    let fresh = me.codes.fresh().await;
    let with_code = Cli::new(&bin, &app, &format!("{}.totp.{fresh}", me.token));
    with_code
        .run(&["env", "set", "FOO=bar", "-a", SEED_APP])
        .await
        .ok();
    // A new sign-in verifies with a code on its token too; the same code again is a replay.
    let again = app.cli_login(&person(Role::Deployer)).await;
    assert_eq!(again["mfa_required"], true);
    let second = again["token"].as_str().unwrap().to_owned();
    let replayed = Cli::new(&bin, &app, &format!("{second}.totp.{fresh}"));
    let out = replayed.run(&["apps"]).await.refused();
    assert!(out.stderr.contains("already used"), "{out:?}");
    let verified = Cli::new(
        &bin,
        &app,
        &format!("{second}.totp.{}", me.codes.fresh().await),
    );
    let out = verified.run(&["apps"]).await.ok();
    assert!(out.stdout.contains(SEED_APP), "{out:?}");
    // Verified and stepped up by that code: the plain token does the rest.
    Cli::new(&bin, &app, &second)
        .run(&["env", "set", "BAR=baz", "-a", SEED_APP])
        .await
        .ok();
    app.assert_projections_rebuild().await;
}
