//! Operator commands through the real binary: each change is one event with
//! actor kind `system` and the OS user, secrets are printed once and stored
//! only as SHA-256, and bad input is refused with a clear error and no write.

use crate::helpers::{new_key, server_command, stderr, stdout};
use sqlx::PgPool;

struct Db {
    _db: testkit::TestDatabase,
    url: String,
    pool: PgPool,
    _keys: tempfile::TempDir,
    key: std::path::PathBuf,
}

async fn db() -> Db {
    let db = testkit::fresh_database().await;
    let keys = tempfile::tempdir().unwrap();
    let (key, _) = new_key(keys.path());
    let pool = db.pool().await;
    let url = db.url.clone();
    Db {
        _db: db,
        url,
        pool,
        _keys: keys,
        key,
    }
}

impl Db {
    fn run(&self, args: &[&str]) -> std::process::Output {
        server_command(&self.url, &self.key, args)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    /// Runs a command that must fail, checks it wrote nothing, returns stderr.
    async fn refused(&self, args: &[&str]) -> String {
        let before = self.events().await;
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?} should fail: {}",
            stdout(&out)
        );
        assert_eq!(self.events().await, before, "{args:?} wrote an event");
        let message = stderr(&out);
        assert!(message.starts_with("Error: "), "{args:?}: {message}");
        message
    }

    async fn events(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.pool)
            .await
            .unwrap_or(0)
    }

    async fn last(&self, event_type: &str) -> serde_json::Value {
        sqlx::query_scalar("SELECT body FROM events WHERE type = $1 ORDER BY seq DESC LIMIT 1")
            .bind(event_type)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn users_are_added_changed_and_disabled_as_events() {
    let db = db().await;
    assert!(db.ok(&["migrate"]).contains("migrations applied"));
    let out = db.ok(&[
        "user",
        "add",
        "Alice@Example.com",
        "--role",
        "deployer",
        "--name",
        "Alice",
    ]);
    assert!(out.contains("added alice@example.com (deployer)"), "{out}");
    let created = db.last("user.created").await;
    assert_eq!(created["actor"]["kind"], "system");
    assert_eq!(created["actor"]["id"], "operator-test");
    assert_eq!(created["data"]["email"], "alice@example.com");
    assert_eq!(created["data"]["role"], "deployer");

    assert!(db
        .ok(&["user", "set-role", "alice@example.com", "admin"])
        .contains("is now admin"));
    assert_eq!(
        db.last("user.role_changed").await["data"]["previous_role"],
        "deployer"
    );
    let before = db.events().await;
    assert!(db
        .ok(&["user", "set-role", "alice@example.com", "admin"])
        .contains("nothing changed"));
    assert_eq!(db.events().await, before);

    assert!(db
        .ok(&["user", "disable", "alice@example.com"])
        .contains("disabled alice@example.com"));
    let list = db.ok(&["user", "list"]);
    assert!(
        list.contains("alice@example.com") && list.contains("disabled"),
        "{list}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&db.ok(&["user", "list", "--json"])).unwrap();
    assert_eq!(json[0]["role"], "admin");
    assert_eq!(json[0]["disabled"], true);
}

#[tokio::test]
async fn bad_user_input_is_refused_and_writes_nothing() {
    let db = db().await;
    db.ok(&["user", "add", "bob@example.com", "--role", "viewer"]);
    let e = db
        .refused(&["user", "add", "carol@example.com", "--role", "superuser"])
        .await;
    assert!(e.contains("unknown role \"superuser\""), "{e}");
    let e = db
        .refused(&["user", "add", "carol@example.com", "--role", "cicd"])
        .await;
    assert!(e.contains("for API tokens only"), "{e}");
    let e = db
        .refused(&["user", "add", "BOB@example.com", "--role", "viewer"])
        .await;
    assert!(e.contains("already exists"), "{e}");
    let e = db
        .refused(&["user", "add", "not-an-email", "--role", "viewer"])
        .await;
    assert!(e.contains("not an email address"), "{e}");
    let e = db
        .refused(&["user", "set-role", "nobody@example.com", "admin"])
        .await;
    assert!(e.contains("no user nobody@example.com"), "{e}");
    db.ok(&["user", "disable", "bob@example.com"]);
    let e = db.refused(&["user", "disable", "bob@example.com"]).await;
    assert!(e.contains("already disabled"), "{e}");
}

#[tokio::test]
async fn tokens_are_printed_once_and_stored_as_sha256_only() {
    let db = db().await;
    db.ok(&["user", "add", "ci-owner@example.com", "--role", "admin"]);
    let secret = db
        .ok(&[
            "token",
            "create",
            "--name",
            "deploy-bot",
            "--role",
            "cicd",
            "--user",
            "ci-owner@example.com",
            "--expires-at",
            "2099-01-01T00:00:00Z",
            "--output",
            "token",
        ])
        .trim()
        .to_owned();
    assert!(
        secret.starts_with("rgw_token_") && secret.len() == 53,
        "{secret}"
    );
    let stored: String =
        sqlx::query_scalar("SELECT token_sha256 FROM api_tokens WHERE name = 'deploy-bot'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        stored,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(secret.as_bytes()))
    );
    // The secret appears nowhere in the chain or the tables.
    let leaked: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM events WHERE position($1 in convert_from(canonical, 'UTF8')) > 0) \
              + (SELECT count(*) FROM api_tokens WHERE position($1 in api_tokens::text) > 0)",
    )
    .bind(&secret)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(leaked, 0);
    let created = db.last("api_token.created").await;
    assert_eq!(created["data"]["token_sha256"], stored);
    assert_eq!(created["data"]["expires_at"], "2099-01-01T00:00:00Z");

    let json: serde_json::Value = serde_json::from_str(&db.ok(&[
        "token", "create", "--name", "reader", "--role", "viewer", "--output", "json",
    ]))
    .unwrap();
    assert!(json["token"].as_str().unwrap().starts_with("rgw_token_"));
    let id = json["id"].as_str().unwrap().to_owned();
    let text = db.ok(&["token", "create", "--name", "ops-bot", "--role", "ops"]);
    assert!(
        text.contains("shown once") && text.contains("rgw_token_"),
        "{text}"
    );

    assert!(db
        .ok(&["token", "revoke", &id])
        .contains("revoked API token \"reader\""));
    let list = db.ok(&["token", "list"]);
    assert!(
        list.contains("deploy-bot") && list.contains("revoked"),
        "{list}"
    );
    assert!(
        !list.contains("rgw_token_"),
        "list must never print secrets"
    );
    assert_eq!(db.last("api_token.revoked").await["data"]["name"], "reader");
}

#[tokio::test]
async fn bad_token_input_is_refused_and_writes_nothing() {
    let db = db().await;
    db.ok(&["token", "create", "--name", "taken", "--role", "viewer"]);
    let e = db
        .refused(&["token", "create", "--name", "x", "--role", "root"])
        .await;
    assert!(e.contains("unknown role"), "{e}");
    let e = db
        .refused(&[
            "token",
            "create",
            "--name",
            "x",
            "--role",
            "viewer",
            "--expires-at",
            "next tuesday",
        ])
        .await;
    assert!(e.contains("not an RFC 3339 time"), "{e}");
    let e = db
        .refused(&[
            "token",
            "create",
            "--name",
            "x",
            "--role",
            "viewer",
            "--expires-at",
            "2001-01-01T00:00:00Z",
        ])
        .await;
    assert!(e.contains("in the past"), "{e}");
    let e = db
        .refused(&["token", "create", "--name", "taken", "--role", "viewer"])
        .await;
    assert!(e.contains("already exists"), "{e}");
    let e = db
        .refused(&[
            "token",
            "create",
            "--name",
            "x",
            "--role",
            "viewer",
            "--user",
            "ghost@example.com",
        ])
        .await;
    assert!(e.contains("no user ghost@example.com"), "{e}");
    let e = db.refused(&["token", "revoke", "not-a-uuid"]).await;
    assert!(e.contains("not a token id"), "{e}");
    let e = db
        .refused(&["token", "revoke", "5c0bfa3e-7c2d-4c55-9a64-2b1f7d0f1b11"])
        .await;
    assert!(e.contains("no API token"), "{e}");
}

#[tokio::test]
async fn keygen_writes_a_private_key_0600_and_prints_the_verifier_key() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("keys/checkpoint.key");
    let out = server_command(
        "postgres://unused",
        &out_file,
        &[
            "keygen",
            "--name",
            "audit.example",
            "--out",
            out_file.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let vkey = stdout(&out).trim().to_owned();
    let verifier = events::note::Verifier::from_vkey(&vkey).expect("stdout is a vkey");
    assert_eq!(verifier.name(), "audit.example");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&out_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let signer =
        events::note::Signer::from_skey(std::fs::read_to_string(&out_file).unwrap().trim())
            .unwrap();
    assert_eq!(signer.verifier(), verifier);
    // Never overwrites a key.
    let again = server_command(
        "postgres://unused",
        &out_file,
        &[
            "keygen",
            "--name",
            "other",
            "--out",
            out_file.to_str().unwrap(),
        ],
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("refusing to overwrite"));
}

#[tokio::test]
async fn rebuild_projections_check_passes_then_names_an_edited_row() {
    let db = db().await;
    db.ok(&["user", "add", "a@example.com", "--role", "admin"]);
    db.ok(&["user", "add", "b@example.com", "--role", "viewer"]);
    db.ok(&["user", "set-role", "b@example.com", "ops"]);
    db.ok(&["token", "create", "--name", "t1", "--role", "cicd"]);
    db.ok(&["user", "disable", "a@example.com"]);
    let out = db.ok(&["rebuild-projections", "--check"]);
    assert!(out.contains("projections match the chain"), "{out}");

    sqlx::query("UPDATE users SET role = 'admin' WHERE email = 'b@example.com'")
        .execute(&db.pool)
        .await
        .unwrap();
    let out = db.run(&["rebuild-projections", "--check"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("DIFFERENCE users id=")
            && text.contains(r#"role: live "admin", rebuilt "ops""#),
        "{text}"
    );

    assert!(db
        .ok(&["rebuild-projections"])
        .contains("rebuilt projections"));
    assert!(db
        .ok(&["rebuild-projections", "--check"])
        .contains("projections match"));
}

#[tokio::test]
async fn a_missing_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = new_key(dir.path());
    let port = testkit::free_port();
    let out = server_command(
        &format!("postgres://postgres@127.0.0.1:{port}/none"),
        &key,
        &["user", "list"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("connect to DATABASE_URL"),
        "{}",
        stderr(&out)
    );
}
