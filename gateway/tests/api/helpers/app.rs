//! [`TestApp`]: the real gateway on 127.0.0.1 port 0, with a fresh database
//! and its own checkpoint key, torn down when the test ends. [`spawn_app`]
//! starts the plain one; [`TestApp::build`] one in front of a rack, with
//! sign-in, an archive or other settings.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use events::{Actor, Draft};
use gateway::settings::{Env, Settings};
use gateway::startup::Application;
use sqlx::PgPool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tools::mock_oauth::{MockOAuthConfig, MockOAuthHandle};

use super::process::{server_command, stderr, stdout};
use super::proxy::RACK_TOKEN;
use super::s3;
use super::sign_in;

/// `APP_SECRET_KEY` of every test gateway (tests compute CSRF tokens from it,
/// and check that it never reaches an event).
pub const APP_SECRET_KEY: &str = "test-app-secret-key-0123456789abcdef";

pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    pub port: u16,
    /// The database the gateway writes: a fresh one, unless [`Spawn::database`] chose another.
    pub database_url: String,
    /// A pool of the test's own on that database (not the gateway's).
    pub pool: PgPool,
    /// Follows no redirects: tests check each hop.
    pub client: reqwest::Client,
    pub key_file: PathBuf,
    /// The verifier key of this app's checkpoint signer.
    pub vkey: String,
    pub env: Env,
    /// The running server's state: its appender, pool and settings.
    pub state: gateway::state::AppState,
    /// The mock OpenID provider, when built [`Spawn::sign_in`].
    pub oauth: Option<MockOAuthHandle>,
    // Shared with replicas; the fresh database is dropped with the last of them.
    _db: Option<Arc<testkit::TestDatabase>>,
    _key_dir: Arc<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// The plain gateway: no rack, no sign-in, no archive.
pub async fn spawn_app() -> TestApp {
    TestApp::build().spawn().await
}

/// What a [`TestApp`] starts with beyond the defaults.
#[must_use]
pub struct Spawn {
    database: Option<String>,
    rack: Option<String>,
    provider: Option<MockOAuthConfig>,
    settings: Vec<(String, String)>,
}

impl Spawn {
    /// A setting, applied after every default (so it overrides them).
    pub fn env(mut self, name: &str, value: impl Into<String>) -> Spawn {
        self.settings.push((name.to_owned(), value.into()));
        self
    }

    /// Write to this database instead of a fresh one (a private Postgres the test stops).
    pub fn database(mut self, url: impl Into<String>) -> Spawn {
        self.database = Some(url.into());
        self
    }

    /// In front of the rack at `url` (whose password is [`RACK_TOKEN`]), request lines
    /// off (tests read events), the failed-authentication limit out of the way.
    pub fn rack(mut self, url: &str) -> Spawn {
        self.rack = Some(url.to_owned());
        self
    }

    /// With an in-process mock OpenID provider (test controls on), the test people
    /// ([`sign_in::PEOPLE`]) provisioned from settings, and a sign-in rate limit tests do not reach.
    pub fn sign_in(self) -> Spawn {
        self.provider(|_| {})
    }

    /// [`Spawn::sign_in`], with the provider configured further.
    pub fn provider(mut self, configure: impl FnOnce(&mut MockOAuthConfig)) -> Spawn {
        let config = self.provider.get_or_insert_with(|| MockOAuthConfig {
            test_controls: true,
            ..MockOAuthConfig::default()
        });
        configure(config);
        self
    }

    /// Ship the chain to `bucket` on the S3 peer at `endpoint`.
    pub fn archive_to(mut self, endpoint: &str, bucket: &str) -> Spawn {
        for (name, value) in s3::archive_settings(endpoint, bucket) {
            self = self.env(name, value);
        }
        self
    }

    pub async fn spawn(self) -> TestApp {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (db, database_url) = match self.database {
            Some(url) => (None, url),
            None => {
                let db = testkit::fresh_database().await;
                let url = db.url.clone();
                (Some(Arc::new(db)), url)
            }
        };
        let key_dir = tempfile::tempdir().expect("tempdir");
        let (key_file, vkey) = new_key(key_dir.path());
        let mut env = Env::from_pairs([
            ("DATABASE_URL", database_url.clone()),
            ("PORT", "0".to_owned()),
            ("BIND_ADDRESS", "127.0.0.1".to_owned()),
            (
                "CHECKPOINT_SIGNING_KEY_FILE",
                key_file.display().to_string(),
            ),
            ("APP_SECRET_KEY", APP_SECRET_KEY.to_owned()),
        ]);
        if let Some(rack) = self.rack {
            env.set("RACK_HOST", rack);
            env.set("RACK_TOKEN", RACK_TOKEN);
            env.set("RACK_NAME", "test-rack");
            env.set("REQUEST_LOG", "off");
            env.set("PROXY_AUTH_FAILURE_LIMIT", "1000");
        }
        let oauth = match self.provider {
            Some(config) => Some(sign_in::start_provider(&mut env, config).await),
            None => None,
        };
        // The test people have no second factor, and tests written before MFA
        // are about other things: they sign in without one unless a test asks
        // for the default (`.env("MFA_REQUIRE_ALL_USERS", "true")`, as `mfa.rs` does).
        // A person who enrols is asked for MFA either way.
        env.set("MFA_REQUIRE_ALL_USERS", "false");
        for (name, value) in self.settings {
            env.set(&name, value);
        }
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(8)
            .connect_lazy(&database_url)
            .expect("a database URL");
        let server = Server::start(&env).await;
        TestApp {
            address: format!("http://127.0.0.1:{}", server.port),
            port: server.port,
            database_url,
            pool,
            client: client(),
            key_file,
            vkey,
            env,
            state: server.state,
            oauth,
            _db: db,
            _key_dir: Arc::new(key_dir),
            stop: Some(server.stop),
            task: Some(server.task),
        }
    }
}

/// The gateway built from `env` and running in this process.
struct Server {
    port: u16,
    state: gateway::state::AppState,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Server {
    async fn start(env: &Env) -> Server {
        let settings = Settings::from_env(env).expect("test settings");
        let app = Application::build(settings).await.expect("build app");
        let port = app.port();
        let state = app.state().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        Server {
            port,
            state,
            stop,
            task,
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

impl TestApp {
    /// Start describing a gateway; [`Spawn::spawn`] starts it.
    pub fn build() -> Spawn {
        Spawn {
            database: None,
            rack: None,
            provider: None,
            settings: Vec::new(),
        }
    }

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

    /// Another gateway on this one's database, key and settings (a second
    /// replica, or this gateway started again after [`TestApp::stop`]).
    pub async fn replica(&self) -> TestApp {
        let server = Server::start(&self.env).await;
        TestApp {
            address: format!("http://127.0.0.1:{}", server.port),
            port: server.port,
            database_url: self.database_url.clone(),
            pool: self.pool.clone(),
            client: client(),
            key_file: self.key_file.clone(),
            vkey: self.vkey.clone(),
            env: self.env.clone(),
            state: server.state,
            oauth: None,
            _db: self._db.clone(),
            _key_dir: self._key_dir.clone(),
            stop: Some(server.stop),
            task: Some(server.task),
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

    /// `GET /metrics`, as text.
    pub async fn metrics(&self) -> String {
        self.anonymous()
            .page("/metrics")
            .await
            .text()
            .await
            .expect("metrics")
    }

    /// How many checkpoints are signed.
    pub async fn checkpoint_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM checkpoints")
            .fetch_one(&self.pool)
            .await
            .expect("count checkpoints")
    }

    /// The size of the newest checkpoint (0 before the first).
    pub async fn checkpointed_size(&self) -> i64 {
        sqlx::query_scalar("SELECT coalesce(max(size), 0) FROM checkpoints")
            .fetch_one(&self.pool)
            .await
            .expect("newest checkpoint")
    }

    /// Every event's canonical bytes as text, in seq order (what an auditor exports).
    pub async fn canonical_events(&self) -> Vec<String> {
        sqlx::query_scalar("SELECT convert_from(canonical, 'UTF8') FROM events ORDER BY seq")
            .fetch_all(&self.pool)
            .await
            .expect("canonical events")
    }

    /// Append `count` events of type `test.event` by `actor`, with the data `data(n)`.
    pub async fn append_test_events(
        &self,
        actor: &str,
        count: usize,
        data: impl Fn(usize) -> serde_json::Value,
    ) {
        append_test_events(&self.state.appender, actor, count, data).await
    }

    /// Run `rack-gateway-server` with this app's database and key.
    pub fn server_command(&self, args: &[&str]) -> Output {
        server_command(&self.database_url, &self.key_file, args)
    }

    /// An API token made by the operator command, as an operator would.
    pub fn operator_token(&self, name: &str, role: &str) -> String {
        operator_token(&self.database_url, &self.key_file, name, role)
    }

    /// No secret anywhere in the chain: no session or API token (whatever its
    /// value), no JWT, and none of the given values (codes, states, cookies...).
    pub async fn assert_no_secrets_in_events(&self, secrets: &[String]) {
        let all = self.canonical_events().await;
        assert!(!all.is_empty());
        for event in &all {
            for marker in [
                "rgw_sess_",
                "rgw_token_",
                "eyJ",
                APP_SECRET_KEY,
                tools::mock_oauth::DEV_CLIENT_SECRET,
            ] {
                assert!(!event.contains(marker), "event holds {marker:?}: {event}");
            }
            for secret in secrets.iter().filter(|s| s.len() >= 8) {
                assert!(
                    !event.contains(secret.as_str()),
                    "event holds a secret: {event}"
                );
            }
        }
    }

    /// The projections equal a refold of the chain.
    pub async fn assert_projections_rebuild(&self) {
        let (report, differences) = projections::rebuild::check(&self.pool)
            .await
            .expect("rebuild check runs");
        assert!(
            differences.is_empty(),
            "projections differ from the chain: {differences:?}"
        );
        assert!(report.folded > 0);
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Append `count` events of type `test.event` by `actor`, with the data `data(n)`.
pub async fn append_test_events(
    audit: &events::store::Appender,
    actor: &str,
    count: usize,
    data: impl Fn(usize) -> serde_json::Value,
) {
    for n in 0..count {
        audit
            .append(Draft::new("test.event", Actor::system(actor), data(n)))
            .await
            .expect("append");
    }
}

/// A new checkpoint signing key in `dir`: (its file, the verifier key).
pub fn new_key(dir: &Path) -> (PathBuf, String) {
    let (skey, vkey) = events::note::generate_key("rack-gateway-test").expect("keygen");
    let path = dir.join("checkpoint.key");
    std::fs::write(&path, format!("{skey}\n")).expect("write key");
    (path, vkey)
}

/// An API token made by `rack-gateway-server token create`.
pub fn operator_token(database_url: &str, key_file: &Path, name: &str, role: &str) -> String {
    let out = server_command(
        database_url,
        key_file,
        &[
            "token", "create", "--name", name, "--role", role, "--output", "token",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).trim().to_owned()
}
