use std::time::Duration;

use decision::policy::PolicySettings;
use decision::rbac::Role;
use secrecy::ExposeSecret;

use super::*;

fn base() -> Env {
    Env::from_pairs([("DATABASE_URL", "postgres://u:pw@localhost/db")])
}

#[test]
fn defaults_follow_the_contract() {
    let s = Settings::from_env(&base()).unwrap();
    assert_eq!(s.server.port, 8447);
    assert_eq!(s.server.public_url, "http://localhost:8447");
    assert_eq!(s.audit.append_timeout, Duration::from_millis(2000));
    assert_eq!(s.audit.checkpoint_every_events, 1000);
    assert_eq!(s.audit.checkpoint_every_seconds, 60);
    assert_eq!(s.rack.name, "default");
    assert_eq!(s.rack.username, "convox");
    assert_eq!(s.proxy.auth_failure_limit, 10);
    assert_eq!(s.proxy.auth_failure_window, Duration::from_secs(60));
    assert_eq!(s.proxy.max_form_bytes, 1 << 20);
    assert!(s.proxy.request_log);
}

#[test]
fn mfa_settings_follow_the_contract_and_are_checked() {
    let s = Settings::from_env(&base()).unwrap().mfa;
    assert!(s.require_all_users);
    assert_eq!(s.step_up_window, Duration::from_secs(600));
    assert_eq!(s.trusted_device_ttl, Duration::from_secs(30 * 86_400));
    assert_eq!(s.max_failures, 10);
    assert_eq!(s.webauthn_rp_id, "localhost");
    assert_eq!(s.webauthn_origin, "http://localhost:8447");
    for (name, value, says) in [
        ("MFA_STEP_UP_WINDOW_MINUTES", "0", "between 1 and 1440"),
        ("MFA_TRUSTED_DEVICE_TTL_DAYS", "400", "between 1 and 365"),
        ("MFA_MAX_FAILURES", "0", "positive"),
        ("MFA_REQUIRE_ALL_USERS", "maybe", "not a boolean"),
        (
            "WEBAUTHN_ORIGIN",
            "https://gw.example.com/path",
            "must be an origin",
        ),
        ("WEBAUTHN_RP_ID", "other.org", "parent domain"),
    ] {
        let mut env = base();
        env.set(name, value);
        let e = Settings::from_env(&env).unwrap_err();
        assert_eq!(e.name, name);
        assert!(e.message.contains(says), "{name}: {}", e.message);
    }
    let mut env = base();
    env.set("PUBLIC_URL", "https://gw.example.com");
    env.set("WEBAUTHN_RP_ID", "example.com");
    let s = Settings::from_env(&env).unwrap().mfa;
    assert_eq!(
        (s.webauthn_rp_id.as_str(), s.webauthn_origin.as_str()),
        ("example.com", "https://gw.example.com")
    );
}

#[test]
fn proxy_settings_are_checked() {
    let mut env = base();
    env.set("REQUEST_LOG", "syslog");
    assert_eq!(Settings::from_env(&env).unwrap_err().name, "REQUEST_LOG");
    let mut env = base();
    env.set("PROXY_AUTH_FAILURE_WINDOW_SECONDS", "0");
    assert_eq!(
        Settings::from_env(&env).unwrap_err().name,
        "PROXY_AUTH_FAILURE_WINDOW_SECONDS"
    );
    let mut env = base();
    env.set("REQUEST_LOG", "off");
    env.set("PROXY_AUTH_FAILURE_LIMIT", "3");
    let s = Settings::from_env(&env).unwrap();
    assert!(!s.proxy.request_log);
    assert_eq!(s.proxy.auth_failure_limit, 3);
    assert_eq!(s.policy, PolicySettings::default());
    assert!(!s.policy.allow_destructive_actions);
    assert!(!s.policy.rack_update_for_admin);
    assert_eq!(s.policy.run_blocked_services, ["web", "worker"]);
    assert_eq!(
        s.policy.admin_only_commands,
        [
            "rails console",
            "rails dbconsole",
            "rails runner",
            "rake db:migrate",
            "rake db:seed",
            "rake db:drop",
            "rake db:schema:load"
        ]
    );
    assert!(s.policy.shell_commands_allowed.is_empty());
}

#[test]
fn shell_commands_allowed_is_a_json_list_of_exact_commands() {
    let mut env = base();
    env.set(
        "SHELL_COMMANDS_ALLOWED",
        r#"["bin/a && bin/b", "echo 'x, y'"]"#,
    );
    let s = Settings::from_env(&env).unwrap();
    assert_eq!(
        s.policy.shell_commands_allowed,
        ["bin/a && bin/b", "echo 'x, y'"]
    );
    for bad in ["bin/a && bin/b", r#"["ok", 3]"#, r#"[" "]"#] {
        env.set("SHELL_COMMANDS_ALLOWED", bad);
        assert_eq!(
            Settings::from_env(&env).unwrap_err().name,
            "SHELL_COMMANDS_ALLOWED",
            "{bad}"
        );
    }
}

#[test]
fn policy_settings_are_read_and_shown() {
    let mut env = base();
    env.set("ALLOW_DESTRUCTIVE_ACTIONS", "true");
    env.set("ALLOW_RACK_UPDATE", "yes");
    env.set("RUN_BLOCKED_SERVICES", " web , worker,scheduler ,");
    env.set("ADMIN_ONLY_COMMANDS", "rails console, psql");
    let s = Settings::from_env(&env).unwrap();
    assert!(s.policy.allow_destructive_actions);
    assert!(s.policy.rack_update_for_admin);
    assert_eq!(
        s.policy.run_blocked_services,
        ["web", "worker", "scheduler"]
    );
    assert_eq!(s.policy.admin_only_commands, ["rails console", "psql"]);
    let view = s.public_view();
    assert_eq!(view["ALLOW_DESTRUCTIVE_ACTIONS"], serde_json::json!(true));
    assert_eq!(view["ALLOW_RACK_UPDATE"], serde_json::json!(true));
    assert_eq!(
        view["RUN_BLOCKED_SERVICES"],
        serde_json::json!(["web", "worker", "scheduler"])
    );
    assert_eq!(
        view["ADMIN_ONLY_COMMANDS"],
        serde_json::json!(["rails console", "psql"])
    );

    // Set but empty: the list is switched off, not defaulted.
    let mut env = base();
    env.set("RUN_BLOCKED_SERVICES", "");
    env.set("ADMIN_ONLY_COMMANDS", "");
    let s = Settings::from_env(&env).unwrap();
    assert!(s.policy.run_blocked_services.is_empty());
    assert!(s.policy.admin_only_commands.is_empty());

    // The original's name works too; the plain name wins when both are set.
    let mut env = base();
    env.set("RGW_SETTING_ALLOW_DESTRUCTIVE_ACTIONS", "true");
    assert!(
        Settings::from_env(&env)
            .unwrap()
            .policy
            .allow_destructive_actions
    );
    env.set("ALLOW_DESTRUCTIVE_ACTIONS", "false");
    assert!(
        !Settings::from_env(&env)
            .unwrap()
            .policy
            .allow_destructive_actions
    );

    let mut env = base();
    env.set("ALLOW_RACK_UPDATE", "maybe");
    assert_eq!(
        Settings::from_env(&env).unwrap_err().name,
        "ALLOW_RACK_UPDATE"
    );
    let mut env = base();
    env.set("RGW_SETTING_ALLOW_DESTRUCTIVE_ACTIONS", "nah");
    assert_eq!(
        Settings::from_env(&env).unwrap_err().name,
        "RGW_SETTING_ALLOW_DESTRUCTIVE_ACTIONS"
    );
}

#[test]
fn bad_values_name_the_setting() {
    let mut env = base();
    env.set("PORT", "eighty");
    let e = Settings::from_env(&env).unwrap_err();
    assert_eq!(e.name, "PORT");
    let e = Settings::from_env(&Env::default()).unwrap_err();
    assert_eq!(e.name, "DATABASE_URL");
    let mut env = base();
    env.set("TLS_CERT_FILE", "/x.pem");
    assert!(Settings::from_env(&env).is_err());
}

#[test]
fn archive_settings_follow_the_contract() {
    let s = Settings::from_env(&base()).unwrap();
    assert!(!s.archive.enabled());
    assert_eq!(s.archive.prefix, "rack-gateway");
    assert_eq!(s.archive.retention_days, 2555);
    assert_eq!(s.archive.lock_mode, LockMode::Compliance);
    assert_eq!(s.archive.checksum, ChecksumMode::Sha256);
    assert!(s.archive.conditional_writes);
    assert!(!s.archive.force_path_style);

    let mut env = base();
    env.set("AUDIT_S3_BUCKET", "audit-bucket");
    env.set("AUDIT_S3_PREFIX", "/org/rgw/");
    env.set("AUDIT_S3_ENDPOINT_URL", "http://127.0.0.1:9000");
    env.set("AUDIT_LOCK_MODE", "governance");
    env.set("AUDIT_RETENTION_DAYS", "30");
    let s = Settings::from_env(&env).unwrap();
    assert!(s.archive.enabled());
    assert_eq!(s.archive.prefix, "org/rgw");
    assert!(
        s.archive.force_path_style,
        "path style by default with an endpoint"
    );
    assert_eq!(s.archive.lock_mode, LockMode::Governance);
    assert_eq!(s.archive.retention_days, 30);

    for (name, value) in [
        ("AUDIT_LOCK_MODE", "LEGAL"),
        ("AUDIT_RETENTION_DAYS", "0"),
        ("AUDIT_S3_CHECKSUM", "crc32"),
        ("AUDIT_S3_BUCKET", "bucket/with/prefix"),
        ("AWS_ACCESS_KEY_ID", "only-the-id"),
    ] {
        let mut env = base();
        env.set(name, value);
        let e = Settings::from_env(&env).unwrap_err();
        assert_eq!(e.name, name, "{name}={value}");
    }
}

#[test]
fn fingerprint_and_view_carry_no_secret() {
    let mut env = base();
    env.set("RACK_TOKEN", "rack-secret-value");
    env.set("APP_SECRET_KEY", "app-secret-value");
    env.set("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEYID");
    env.set("AWS_SECRET_ACCESS_KEY", "aws-secret-value");
    let s = Settings::from_env(&env).unwrap();
    let view = serde_json::to_string(&s.public_view()).unwrap();
    assert!(!view.contains("rack-secret-value"));
    assert!(!view.contains("app-secret-value"));
    assert!(!view.contains(":pw@"));
    assert!(!view.contains("aws-secret-value"));
    assert!(!view.contains("AKIAEXAMPLEKEYID"));
    assert!(!format!("{s:?}").contains("aws-secret-value"));
    assert!(!format!("{s:?}").contains("AKIAEXAMPLEKEYID"));
    assert!(!format!("{s:?}").contains("rack-secret-value"));
    assert_eq!(
        s.rack.token.as_ref().unwrap().expose_secret(),
        "rack-secret-value"
    );
    let mut other = env.clone();
    other.set("RACK_TOKEN", "a-different-secret");
    assert_eq!(
        Settings::from_env(&other).unwrap().fingerprint(),
        s.fingerprint(),
        "secrets do not change the fingerprint"
    );
    other.set("CHECKPOINT_EVERY_EVENTS", "5");
    assert_ne!(
        Settings::from_env(&other).unwrap().fingerprint(),
        s.fingerprint()
    );
}

#[test]
fn oauth_is_optional_but_complete_when_set() {
    let s = Settings::from_env(&base()).unwrap();
    assert!(s.auth.oauth.is_none());
    assert!(
        !s.auth.cookie_secure,
        "plain-http PUBLIC_URL: no Secure cookies"
    );
    assert_eq!(s.auth.login_state_ttl, Duration::from_secs(600));
    assert_eq!(
        (s.auth.rate_limit_per_second, s.auth.rate_limit_burst),
        (10, 20)
    );

    let mut env = base();
    env.set("GOOGLE_CLIENT_ID", "client");
    assert_eq!(
        Settings::from_env(&env).unwrap_err().name,
        "GOOGLE_CLIENT_SECRET"
    );
    env.set("GOOGLE_CLIENT_SECRET", "oauth-secret-value");
    assert_eq!(
        Settings::from_env(&env).unwrap_err().name,
        "GOOGLE_ALLOWED_DOMAIN"
    );
    env.set("GOOGLE_ALLOWED_DOMAIN", " Example.com, @other.org ");
    assert_eq!(
        Settings::from_env(&env).unwrap_err().name,
        "APP_SECRET_KEY",
        "browser sign-in needs a CSRF key outside dev mode"
    );
    env.set("APP_SECRET_KEY", "k");
    env.set("GOOGLE_OAUTH_BASE_URL", "http://127.0.0.1:3345/");
    env.set("PUBLIC_URL", "https://gw.example.com/");
    let s = Settings::from_env(&env).unwrap();
    let oauth = s.auth.oauth.as_ref().unwrap();
    assert_eq!(oauth.issuer_url, "http://127.0.0.1:3345");
    assert_eq!(oauth.allowed_domains, ["example.com", "other.org"]);
    assert!(s.auth.cookie_secure);
    assert_eq!(
        s.oauth_redirect_uri("cli"),
        "https://gw.example.com/api/v1/auth/cli/callback"
    );
    let view = serde_json::to_string(&s.public_view()).unwrap();
    assert!(!view.contains("oauth-secret-value"));
    env.set("OAUTH_ISSUER_URL", "https://issuer.example");
    assert_eq!(
        Settings::from_env(&env)
            .unwrap()
            .auth
            .oauth
            .unwrap()
            .issuer_url,
        "https://issuer.example",
        "OAUTH_ISSUER_URL wins over the alias"
    );
    env.set("OAUTH_ISSUER_URL", "not a url");
    assert_eq!(
        Settings::from_env(&env).unwrap_err().name,
        "OAUTH_ISSUER_URL"
    );
}

#[test]
fn seed_users_take_the_first_list_that_names_them() {
    let mut env = base();
    env.set("ADMIN_USERS", "Root@Example.com");
    env.set("VIEWER_USERS", "root@example.com, view@example.com");
    env.set("OPERATIONS_USERS", "ops@example.com");
    let s = Settings::from_env(&env).unwrap();
    let seeds: Vec<(&str, Role)> = s
        .auth
        .seed_users
        .iter()
        .map(|u| (u.email.as_str(), u.role))
        .collect();
    assert_eq!(
        seeds,
        [
            ("root@example.com", Role::Admin),
            ("ops@example.com", Role::Ops),
            ("view@example.com", Role::Viewer),
        ]
    );
    env.set("DEPLOYER_USERS", "not-an-email");
    assert_eq!(Settings::from_env(&env).unwrap_err().name, "DEPLOYER_USERS");
}

/// Every variable set to something other than its default (and the
/// aliases left unset): the environment the pinned view is taken from.
fn everything() -> Env {
    Env::from_pairs([
        ("DATABASE_URL", "postgres://u:pw@localhost/db"),
        ("DEV_MODE", "true"),
        ("HEADER_READ_TIMEOUT_SECONDS", "7"),
        ("ANONYMOUS_EVENT_WINDOW_SECONDS", "30"),
        ("ANONYMOUS_EVENTS_PER_ADDRESS", "5"),
        ("ANONYMOUS_EVENTS_PER_WINDOW", "100"),
        ("PORT", "9443"),
        ("BIND_ADDRESS", "127.0.0.1"),
        ("PUBLIC_URL", "https://gw.example.com/"),
        ("TLS_CERT_FILE", "/etc/rgw/cert.pem"),
        ("TLS_KEY_FILE", "/etc/rgw/key.pem"),
        ("APP_SECRET_KEY", "app-secret-value"),
        ("TRUSTED_PROXY_CIDRS", "10.0.0.0/8, 192.168.0.0/16"),
        ("AUDIT_APPEND_TIMEOUT_MS", "1500"),
        ("CHECKPOINT_SIGNING_KEY_FILE", "/etc/rgw/checkpoint.key"),
        ("CHECKPOINT_EVERY_EVENTS", "500"),
        ("CHECKPOINT_EVERY_SECONDS", "30"),
        ("RACK_NAME", "production"),
        ("RACK_HOST", "https://rack.internal/"),
        ("RACK_TOKEN", "rack-secret-value"),
        ("RACK_USERNAME", "admin"),
        ("RACK_TLS_CA_FILE", "/etc/rgw/rack-ca.pem"),
        ("RACK_TLS_FINGERPRINT", "ab12cd34"),
        ("SESSION_TIMEOUT_MINUTES", "15"),
        ("WEB_SESSION_LIFETIME_HOURS", "8"),
        ("LOGIN_STATE_TTL_SECONDS", "300"),
        ("AUTH_RATE_LIMIT_PER_SECOND", "5"),
        ("AUTH_RATE_LIMIT_BURST", "9"),
        ("COOKIE_SECURE", "false"),
        ("GOOGLE_CLIENT_ID", "client-id"),
        ("GOOGLE_CLIENT_SECRET", "oauth-secret-value"),
        ("GOOGLE_ALLOWED_DOMAIN", "Example.com, @other.org"),
        ("OAUTH_ISSUER_URL", "https://issuer.example/"),
        ("ADMIN_USERS", "root@example.com"),
        ("DEPLOYER_USERS", "deploy@example.com"),
        ("OPERATIONS_USERS", "ops@example.com, root@example.com"),
        ("VIEWER_USERS", "view@example.com"),
        ("AUDIT_S3_BUCKET", "audit-bucket"),
        ("AUDIT_S3_PREFIX", "/org/rgw/"),
        ("AUDIT_S3_ENDPOINT_URL", "http://127.0.0.1:9000"),
        ("AUDIT_S3_REGION", "eu-west-1"),
        ("AUDIT_S3_FORCE_PATH_STYLE", "false"),
        ("AUDIT_S3_CHECKSUM", "MD5"),
        ("AUDIT_S3_CONDITIONAL_WRITES", "off"),
        ("AUDIT_RETENTION_DAYS", "30"),
        ("AUDIT_LOCK_MODE", "governance"),
        ("AUDIT_SEGMENT_MAX_EVENTS", "200"),
        ("AUDIT_SEGMENT_MAX_AGE_MS", "750"),
        ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEYID"),
        ("AWS_SECRET_ACCESS_KEY", "aws-secret-value"),
        ("AWS_SESSION_TOKEN", "aws-session-value"),
        ("PROXY_AUTH_FAILURE_LIMIT", "4"),
        ("PROXY_AUTH_FAILURE_WINDOW_SECONDS", "120"),
        ("PROXY_MAX_FORM_BYTES", "65536"),
        ("RACK_CONNECT_TIMEOUT_MS", "2500"),
        ("REQUEST_LOG", "OFF"),
        ("ALLOW_DESTRUCTIVE_ACTIONS", "yes"),
        ("ALLOW_RACK_UPDATE", "1"),
        ("RUN_BLOCKED_SERVICES", "web, scheduler"),
        ("ADMIN_ONLY_COMMANDS", "rails console, psql"),
        ("SHELL_COMMANDS_ALLOWED", r#"["bin/check && bin/report"]"#),
        ("RACK_RESPONSE_TIMEOUT_SECONDS", "45"),
        ("RACK_SLOW_RESPONSE_TIMEOUT_SECONDS", "600"),
        ("STREAM_REAUTHORIZE_SECONDS", "3"),
        ("WEBSOCKET_IDLE_TIMEOUT_SECONDS", "300"),
        ("CLIENT_BODY_TIMEOUT_SECONDS", "20"),
        ("MFA_REQUIRE_ALL_USERS", "false"),
        ("MFA_STEP_UP_WINDOW_MINUTES", "5"),
        ("MFA_TRUSTED_DEVICE_TTL_DAYS", "7"),
        ("MFA_MAX_FAILURES", "4"),
        ("WEBAUTHN_RP_ID", "Example.com"),
        ("WEBAUTHN_ORIGIN", "https://gw.example.com"),
        ("YUBICO_API_URL", "https://otp.internal/wsapi/2.0/verify"),
        ("YUBICO_CLIENT_ID", "4242"),
        (
            "YUBICO_SECRET_KEY",
            "c2VjcmV0LWtleS1vZi10aGUtdmFsaWRhdGlvbg==",
        ),
    ])
}

fn pinned(json: &str) -> serde_json::Value {
    serde_json::from_str(json).expect("pinned view parses")
}

/// The view (and so the `gateway.started` fingerprint) for fixed
/// environments, spelled out: moving or adding settings must not change
/// what an existing environment records.
#[test]
fn the_public_view_is_pinned() {
    let s = Settings::from_env(&everything()).unwrap();
    let view = serde_json::to_value(s.public_view()).unwrap();
    let expected = pinned(
        r#"{
  "ADMIN_ONLY_COMMANDS": [
"rails console",
"psql"
  ],
  "ADMIN_USERS": [
"root@example.com"
  ],
  "ALLOW_DESTRUCTIVE_ACTIONS": true,
  "ALLOW_RACK_UPDATE": true,
  "APP_SECRET_KEY_SET": true,
  "AUDIT_APPEND_TIMEOUT_MS": 1500,
  "AUDIT_LOCK_MODE": "GOVERNANCE",
  "AUDIT_RETENTION_DAYS": 30,
  "AUDIT_S3_BUCKET": "audit-bucket",
  "AUDIT_S3_CHECKSUM": "md5",
  "AUDIT_S3_CONDITIONAL_WRITES": false,
  "AUDIT_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
  "AUDIT_S3_FORCE_PATH_STYLE": false,
  "AUDIT_S3_PREFIX": "org/rgw",
  "AUDIT_S3_REGION": "eu-west-1",
  "AUDIT_SEGMENT_MAX_AGE_MS": 750,
  "AUDIT_SEGMENT_MAX_EVENTS": 200,
  "AUTH_RATE_LIMIT_BURST": 9,
  "AUTH_RATE_LIMIT_PER_SECOND": 5,
  "AWS_ACCESS_KEY_ID_SET": true,
  "CHECKPOINT_EVERY_EVENTS": 500,
  "CHECKPOINT_EVERY_SECONDS": 30,
  "COOKIE_SECURE": false,
  "DEPLOYER_USERS": [
"deploy@example.com"
  ],
  "DEV_MODE": true,
  "HEADER_READ_TIMEOUT_SECONDS": 7,
  "ANONYMOUS_EVENT_WINDOW_SECONDS": 30,
  "ANONYMOUS_EVENTS_PER_ADDRESS": 5,
  "ANONYMOUS_EVENTS_PER_WINDOW": 100,
  "GOOGLE_ALLOWED_DOMAIN": [
"example.com",
"other.org"
  ],
  "GOOGLE_CLIENT_ID": "client-id",
  "GOOGLE_CLIENT_SECRET_SET": true,
  "LOGIN_STATE_TTL_SECONDS": 300,
  "MFA_MAX_FAILURES": 4,
  "MFA_REQUIRE_ALL_USERS": false,
  "MFA_STEP_UP_WINDOW_MINUTES": 5,
  "MFA_TRUSTED_DEVICE_TTL_DAYS": 7,
  "OAUTH_ISSUER_URL": "https://issuer.example",
  "OPERATIONS_USERS": [
"ops@example.com"
  ],
  "PORT": 9443,
  "PROXY_AUTH_FAILURE_LIMIT": 4,
  "PROXY_AUTH_FAILURE_WINDOW_SECONDS": 120,
  "PROXY_MAX_FORM_BYTES": 65536,
  "PUBLIC_URL": "https://gw.example.com",
  "RACK_CONNECT_TIMEOUT_MS": 2500,
  "RACK_HOST": "https://rack.internal",
  "RACK_NAME": "production",
  "RACK_TLS_CA_FILE": "/etc/rgw/rack-ca.pem",
  "RACK_TLS_FINGERPRINT": "ab12cd34",
  "RACK_TOKEN_SET": true,
  "RACK_USERNAME": "admin",
  "REQUEST_LOG": "off",
  "RUN_BLOCKED_SERVICES": [
"web",
"scheduler"
  ],
  "SESSION_TIMEOUT_MINUTES": 15,
  "SHELL_COMMANDS_ALLOWED": [
    "bin/check && bin/report"
  ],
  "RACK_RESPONSE_TIMEOUT_SECONDS": 45,
  "RACK_SLOW_RESPONSE_TIMEOUT_SECONDS": 600,
  "STREAM_REAUTHORIZE_SECONDS": 3,
  "WEBSOCKET_IDLE_TIMEOUT_SECONDS": 300,
  "CLIENT_BODY_TIMEOUT_SECONDS": 20,
  "TLS": true,
  "TRUSTED_PROXY_CIDRS": [
"10.0.0.0/8",
"192.168.0.0/16"
  ],
  "VIEWER_USERS": [
"view@example.com"
  ],
  "WEBAUTHN_ORIGIN": "https://gw.example.com",
  "WEBAUTHN_RP_ID": "example.com",
  "WEB_SESSION_LIFETIME_HOURS": 8,
  "YUBICO_API_URL": "https://otp.internal/wsapi/2.0/verify",
  "YUBICO_CLIENT_ID": "4242",
  "YUBICO_SECRET_KEY_SET": true
}"#,
    );
    assert_eq!(view, expected);
    assert_eq!(
        s.fingerprint(),
        "bed088f4cd38ae093a99dafe030a9bc440772d13c5eac6de58c207e54ff139a0"
    );

    let defaults = Settings::from_env(&base()).unwrap();
    let expected = pinned(
        r#"{
  "ADMIN_ONLY_COMMANDS": [
"rails console",
"rails dbconsole",
"rails runner",
"rake db:migrate",
"rake db:seed",
"rake db:drop",
"rake db:schema:load"
  ],
  "ADMIN_USERS": [],
  "ALLOW_DESTRUCTIVE_ACTIONS": false,
  "ALLOW_RACK_UPDATE": false,
  "APP_SECRET_KEY_SET": false,
  "AUDIT_APPEND_TIMEOUT_MS": 2000,
  "AUDIT_LOCK_MODE": "COMPLIANCE",
  "AUDIT_RETENTION_DAYS": 2555,
  "AUDIT_S3_BUCKET": null,
  "AUDIT_S3_CHECKSUM": "sha256",
  "AUDIT_S3_CONDITIONAL_WRITES": true,
  "AUDIT_S3_ENDPOINT_URL": null,
  "AUDIT_S3_FORCE_PATH_STYLE": false,
  "AUDIT_S3_PREFIX": "rack-gateway",
  "AUDIT_S3_REGION": null,
  "AUDIT_SEGMENT_MAX_AGE_MS": 5000,
  "AUDIT_SEGMENT_MAX_EVENTS": 1000,
  "AUTH_RATE_LIMIT_BURST": 20,
  "AUTH_RATE_LIMIT_PER_SECOND": 10,
  "AWS_ACCESS_KEY_ID_SET": false,
  "CHECKPOINT_EVERY_EVENTS": 1000,
  "CHECKPOINT_EVERY_SECONDS": 60,
  "COOKIE_SECURE": false,
  "DEPLOYER_USERS": [],
  "DEV_MODE": false,
  "HEADER_READ_TIMEOUT_SECONDS": 10,
  "ANONYMOUS_EVENT_WINDOW_SECONDS": 60,
  "ANONYMOUS_EVENTS_PER_ADDRESS": 20,
  "ANONYMOUS_EVENTS_PER_WINDOW": 300,
  "GOOGLE_ALLOWED_DOMAIN": null,
  "GOOGLE_CLIENT_ID": null,
  "GOOGLE_CLIENT_SECRET_SET": false,
  "LOGIN_STATE_TTL_SECONDS": 600,
  "MFA_MAX_FAILURES": 10,
  "MFA_REQUIRE_ALL_USERS": true,
  "MFA_STEP_UP_WINDOW_MINUTES": 10,
  "MFA_TRUSTED_DEVICE_TTL_DAYS": 30,
  "OAUTH_ISSUER_URL": null,
  "OPERATIONS_USERS": [],
  "PORT": 8447,
  "PROXY_AUTH_FAILURE_LIMIT": 10,
  "PROXY_AUTH_FAILURE_WINDOW_SECONDS": 60,
  "PROXY_MAX_FORM_BYTES": 1048576,
  "PUBLIC_URL": "http://localhost:8447",
  "RACK_CONNECT_TIMEOUT_MS": 10000,
  "RACK_HOST": null,
  "RACK_NAME": "default",
  "RACK_TLS_CA_FILE": null,
  "RACK_TLS_FINGERPRINT": null,
  "RACK_TOKEN_SET": false,
  "RACK_USERNAME": "convox",
  "REQUEST_LOG": "stdout",
  "RUN_BLOCKED_SERVICES": [
"web",
"worker"
  ],
  "SESSION_TIMEOUT_MINUTES": 5,
  "SHELL_COMMANDS_ALLOWED": [],
  "RACK_RESPONSE_TIMEOUT_SECONDS": 60,
  "RACK_SLOW_RESPONSE_TIMEOUT_SECONDS": 900,
  "STREAM_REAUTHORIZE_SECONDS": 5,
  "WEBSOCKET_IDLE_TIMEOUT_SECONDS": 900,
  "CLIENT_BODY_TIMEOUT_SECONDS": 30,
  "TLS": false,
  "TRUSTED_PROXY_CIDRS": [],
  "VIEWER_USERS": [],
  "WEBAUTHN_ORIGIN": "http://localhost:8447",
  "WEBAUTHN_RP_ID": "localhost",
  "WEB_SESSION_LIFETIME_HOURS": 12,
  "YUBICO_API_URL": "https://api.yubico.com/wsapi/2.0/verify",
  "YUBICO_CLIENT_ID": "(not set: YubiKey OTP off)",
  "YUBICO_SECRET_KEY_SET": false
}"#,
    );
    assert_eq!(
        serde_json::to_value(defaults.public_view()).unwrap(),
        expected
    );

    // Every alias, alone: recorded under the name it stands for.
    let aliases = Env::from_pairs([
        ("RGW_DATABASE_URL", "postgres://u:pw@localhost/db"),
        ("RACK", "staging"),
        ("RGW_SETTING_SESSION_TIMEOUT_MINUTES", "7"),
        ("RGW_SETTING_ALLOW_DESTRUCTIVE_ACTIONS", "true"),
        ("AWS_DEFAULT_REGION", "us-west-2"),
        ("DEV_MODE", "true"),
        ("GOOGLE_CLIENT_ID", "client-id"),
        ("GOOGLE_CLIENT_SECRET", "oauth-secret-value"),
        ("GOOGLE_ALLOWED_DOMAIN", "example.com"),
        ("GOOGLE_OAUTH_BASE_URL", "http://127.0.0.1:3345/"),
    ]);
    let view = Settings::from_env(&aliases).unwrap().public_view();
    assert_eq!(view["RACK_NAME"], "staging");
    assert_eq!(view["SESSION_TIMEOUT_MINUTES"], 7);
    assert_eq!(view["ALLOW_DESTRUCTIVE_ACTIONS"], true);
    assert_eq!(view["AUDIT_S3_REGION"], "us-west-2");
    assert_eq!(view["OAUTH_ISSUER_URL"], "http://127.0.0.1:3345");
    let mut both = aliases.clone();
    both.set("AWS_REGION", "ap-south-1");
    let view = Settings::from_env(&both).unwrap().public_view();
    assert_eq!(view["AUDIT_S3_REGION"], "ap-south-1");
}

/// Every variable the settings read is described in the public view (under
/// its own name or another key, or as a secret shown only as set), stands for
/// one that is (an alias), or is one of the few deliberately left out; and
/// every description names a variable that is read. A setting added without
/// its description fails here instead of silently missing from the
/// `gateway.started` fingerprint.
#[test]
fn every_variable_read_is_described() {
    let env = everything();
    let reader = Reader::new(&env);
    let view = Settings::read(&reader).unwrap().view();
    let read = reader.read.into_inner();
    let aliases = reader.aliases.into_inner();
    for name in &read {
        let described = |n: &str| {
            view.described.contains(n)
                || view.unshown_secrets.contains(n)
                || view.unrecorded.contains(n)
        };
        match aliases.get(name) {
            Some(stands_for) => assert!(
                described(stands_for),
                "{name} stands for {stands_for}, which is not described"
            ),
            None => {
                assert!(
                    described(name),
                    "{name} is read but not described in the public view"
                );
                assert!(
                    env.get(name).is_some(),
                    "{name}: set it in everything() so the pinned view covers it"
                );
            }
        }
    }
    for name in view
        .described
        .iter()
        .chain(&view.unshown_secrets)
        .chain(&view.unrecorded)
    {
        assert!(read.contains(name), "{name} is described but never read");
    }
    // Neither secret nor recorded: each has its reason where it is described.
    assert_eq!(
        view.unrecorded.into_iter().collect::<Vec<_>>(),
        ["BIND_ADDRESS", "CHECKPOINT_SIGNING_KEY_FILE"]
    );
}

#[test]
fn a_rack_host_carrying_credentials_is_refused_without_repeating_them() {
    let mut env = base();
    env.set(
        "RACK_HOST",
        "https://convox:rack-pw-1234@rack.internal:5443",
    );
    let error = Settings::from_env(&env).unwrap_err();
    assert_eq!(error.name, "RACK_HOST");
    assert!(!error.to_string().contains("rack-pw-1234"), "{error}");
    assert!(error.to_string().contains("RACK_TOKEN"), "{error}");
    let mut env = base();
    env.set("RACK_HOST", "https://rack.internal:5443");
    assert!(Settings::from_env(&env).is_ok());
}
