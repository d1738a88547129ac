//! `spawn_app()`: the real gateway on 127.0.0.1 port 0, with a fresh database
//! and its own checkpoint key, torn down when the test ends. Every gateway
//! integration test starts here.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

use gateway::settings::{Env, Settings};
use gateway::startup::Application;
use sqlx::PgPool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub db: testkit::TestDatabase,
    pub pool: PgPool,
    pub client: reqwest::Client,
    pub key_dir: tempfile::TempDir,
    pub key_file: PathBuf,
    /// The verifier key of this app's checkpoint signer.
    pub vkey: String,
    pub env: Env,
    /// The running server's state: its appender, pool and settings.
    pub state: gateway::state::AppState,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// The environment a test gateway runs with (add to it before spawning).
pub fn test_env(database_url: &str, key_file: &std::path::Path) -> Env {
    Env::from_pairs([
        ("DATABASE_URL", database_url.to_owned()),
        ("PORT", "0".to_owned()),
        ("BIND_ADDRESS", "127.0.0.1".to_owned()),
        (
            "CHECKPOINT_SIGNING_KEY_FILE",
            key_file.display().to_string(),
        ),
        (
            "APP_SECRET_KEY",
            "test-app-secret-key-0123456789abcdef".to_owned(),
        ),
    ])
}

pub fn new_key(dir: &std::path::Path) -> (PathBuf, String) {
    let (skey, vkey) = events::note::generate_key("rack-gateway-test").expect("keygen");
    let path = dir.join("checkpoint.key");
    std::fs::write(&path, format!("{skey}\n")).expect("write key");
    (path, vkey)
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Env)) -> TestApp {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = testkit::fresh_database().await;
    let key_dir = tempfile::tempdir().expect("tempdir");
    let (key_file, vkey) = new_key(key_dir.path());
    let mut env = test_env(&db.url, &key_file);
    configure(&mut env);
    let settings = Settings::from_env(&env).expect("test settings");
    let app = Application::build(settings).await.expect("build app");
    let port = app.port();
    let state = app.state().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let pool = db.pool().await;
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        db,
        pool,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        key_dir,
        key_file,
        vkey,
        env,
        state,
        stop: Some(stop),
        task: Some(task),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Stop the server the way SIGTERM does, and wait for it to drain.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server stopped cleanly");
        }
    }

    pub async fn event_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.pool)
            .await
            .expect("count events")
    }

    /// Event bodies of one type, in seq order.
    pub async fn events_of(&self, event_type: &str) -> Vec<serde_json::Value> {
        sqlx::query_scalar("SELECT body FROM events WHERE type = $1 ORDER BY seq")
            .bind(event_type)
            .fetch_all(&self.pool)
            .await
            .expect("events of type")
    }

    /// Run `rack-gateway-server` with this app's settings.
    pub fn server_command(&self, args: &[&str]) -> Output {
        server_command(&self.db.url, &self.key_file, args)
    }
}

pub fn server_command(database_url: &str, key_file: &std::path::Path, args: &[&str]) -> Output {
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

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
