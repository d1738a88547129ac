//! Building and running the gateway: the order things start in, and stop in.
//!
//! Start: rack proxy and TLS settings checked → database pool → migrations →
//! chain id → appender (with the projection and checkpoint hooks) →
//! `gateway.started` (if that cannot be committed we do not serve at all) →
//! users named by the `*_USERS` settings (`user.created`, once each) →
//! checkpoint signer, rate-limit and anonymous-event recorders, archive shipper (when
//! `AUDIT_S3_BUCKET` is set) → listener (HTTPS when `TLS_CERT_FILE`/`TLS_KEY_FILE` are set).
//! Stop (SIGTERM or the test's shutdown future): stop accepting, let in-flight
//! requests finish (bounded), let proxied websockets and streams end (bounded,
//! then closed) and record their `proxy.response`, stop background tasks, then
//! drain the appender so every acknowledged event is committed, and return.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use events::catalogue::{EventPayload, GatewayStarted};
use events::store::{
    self, Appender, AppenderConfig, AppenderMetrics, AppenderTask, HookChain, TxHook,
};
use events::Actor;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::archive::s3::ObjectStore;
use crate::archive::shipper::Shipper;
use crate::archive::{Archive, ArchiveStatus, Layout};
use crate::audit::checkpoints::{load_signer, CheckpointConfig, CheckpointStatus, Checkpointer};
use crate::proxy::parts::ProxyParts;
use crate::settings::Settings;
use crate::state::{AppState, Inner, Metrics};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How long in-flight requests (streams, websockets) may run on after a stop is asked.
const DRAIN_GRACE: Duration = Duration::from_secs(10);

pub struct Application {
    listener: TcpListener,
    /// Serve HTTPS with this (`TLS_CERT_FILE`/`TLS_KEY_FILE`), else plain HTTP.
    tls: Option<Arc<rustls::ServerConfig>>,
    port: u16,
    state: AppState,
    appender_task: AppenderTask,
    background: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

/// The connections and the appender, without serving: what operator commands need.
pub struct Core {
    pub pool: sqlx::PgPool,
    pub appender: Appender,
    pub appender_task: AppenderTask,
    pub instance: String,
}

impl Core {
    pub async fn open(settings: &Settings, instance: String) -> anyhow::Result<Core> {
        let url = settings.audit.database_url.expose_secret();
        let pool = store::connect_pool(url, 16)
            .await
            .context("connect to DATABASE_URL")?;
        store::migrate(&pool).await.context("apply migrations")?;
        let chain = store::ensure_chain_id(&pool)
            .await
            .context("read the chain id")?;
        let (appender, appender_task) = Appender::spawn(
            store::connect_options(url)?,
            AppenderConfig {
                chain,
                instance: instance.clone(),
                append_timeout: settings.audit.append_timeout,
            },
            hooks(),
            AppenderMetrics::default(),
        );
        Ok(Core {
            pool,
            appender,
            appender_task,
            instance,
        })
    }

    /// Drain the appender and close the pool.
    pub async fn close(self) {
        drop(self.appender);
        self.appender_task.shutdown().await;
        self.pool.close().await;
    }
}

/// What the appending transaction does besides inserting events: the
/// projections, the `checkpoints` row of each `checkpoint.created`, and the
/// `archive_segments` row of each `archive.shipped` (the catalogue's
/// projection and bookkeeping types).
fn hooks() -> Arc<dyn TxHook> {
    Arc::new(HookChain(vec![
        Arc::new(projections::Projector),
        Arc::new(crate::audit::checkpoints::CheckpointRecorder),
        Arc::new(crate::archive::recorder::ArchiveRecorder),
    ]))
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let _ = crate::net::crypto_provider();
        let instance = uuid::Uuid::new_v4().to_string();
        // Rack, TLS and proxy settings are checked before anything is recorded.
        let proxy = ProxyParts::new(&settings).context("rack proxy settings")?;
        let tls = match (
            &settings.server.tls_cert_file,
            &settings.server.tls_key_file,
        ) {
            (Some(cert), Some(key)) => Some(crate::net::server_tls::load(cert, key)?),
            _ => None,
        };
        let signer = match &settings.audit.checkpoint_signing_key_file {
            Some(path) => load_signer(path).map_err(anyhow::Error::msg)?,
            None => anyhow::bail!(
                "CHECKPOINT_SIGNING_KEY_FILE is not set: create a key with \
                 `rack-gateway-server keygen --name NAME --out FILE` and point the setting at FILE"
            ),
        };
        // Sign-in configuration is checked before anything is recorded.
        let identity = crate::auth::Identity::new(&settings)?;
        let core = Core::open(&settings, instance.clone()).await?;
        let Core {
            pool,
            appender,
            appender_task,
            instance,
        } = core;

        let started = GatewayStarted {
            version: VERSION.to_owned(),
            instance: instance.clone(),
            settings_fingerprint: settings.fingerprint(),
            settings: settings
                .public_view()
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect(),
            checkpoint_key: signer.name().to_owned(),
            // Published so a database alone names the keys its checkpoints claim (verify-chain still says they are not independently trusted).
            checkpoint_vkey: signer.verifier().to_vkey(),
        };
        appender
            .append(started.draft(Actor::system("gateway")))
            .await
            .context(
                "record gateway.started (the audit chain must accept events before we serve)",
            )?;
        crate::auth::provisioning::provision(&pool, &appender, &instance, &settings.auth.seed_users)
            .await
            .context("provision the users named by ADMIN_USERS, DEPLOYER_USERS, OPERATIONS_USERS, VIEWER_USERS")?;

        let key_name = signer.name().to_owned();
        let vkey = signer.verifier().to_vkey();
        let (stop, stopped) = watch::channel(false);
        let status = Arc::new(CheckpointStatus::default());
        let (checkpoint_requests, checkpointer) = Checkpointer {
            pool: pool.clone(),
            connect: store::connect_options(settings.audit.database_url.expose_secret())?,
            appender: appender.clone(),
            signer: Arc::new(signer),
            config: CheckpointConfig {
                every_events: settings.audit.checkpoint_every_events,
                every_seconds: settings.audit.checkpoint_every_seconds,
            },
            status: status.clone(),
        }
        .spawn(stopped.clone());
        let mut background = vec![checkpointer];

        let archive_status = Arc::new(ArchiveStatus::new(settings.archive.bucket.clone()));
        if let Some(store) = ObjectStore::connect(&settings.archive).await {
            let chain = appender.chain().to_owned();
            background.push(
                Shipper {
                    pool: pool.clone(),
                    appender: appender.clone(),
                    store,
                    layout: Layout::new(&settings.archive.prefix, &chain),
                    chain,
                    key_name: key_name.clone(),
                    vkey: vkey.clone(),
                    settings: settings.archive.clone(),
                    checkpoint_requests: checkpoint_requests.clone(),
                    signer: status.clone(),
                    status: archive_status.clone(),
                }
                .spawn(stopped.clone()),
            );
        }
        background.push(
            proxy
                .auth_failure_limiter
                .spawn_recorder(appender.clone(), stopped.clone()),
        );
        background.push(
            identity
                .anonymous_events
                .spawn_recorder(appender.clone(), stopped),
        );

        let address = format!("{}:{}", settings.server.bind, settings.server.port);
        let listener = TcpListener::bind(&address)
            .await
            .with_context(|| format!("listen on {address}"))?;
        let port = listener.local_addr()?.port();
        let mut metrics = Metrics::new(&appender);
        archive_status.metrics.register(&mut metrics.registry);
        let archive = Archive {
            status: archive_status,
            prefix: settings.archive.prefix.clone(),
            key_name,
            vkey,
        };
        let mfa = crate::mfa::Mfa::new(&settings);
        let state = AppState::new(Inner {
            mfa,
            settings,
            pool,
            appender,
            instance,
            metrics,
            checkpoints: status,
            checkpoint_requests,
            archive,
            identity,
            proxy,
        });
        Ok(Application {
            listener,
            tls,
            port,
            state,
            appender_task,
            background,
            stop,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serve until `shutdown` completes, then stop in order (see the module doc).
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Application {
            listener,
            tls,
            state,
            appender_task,
            background,
            stop,
            ..
        } = self;
        let router = crate::router::router(state.clone());
        let (stopping_tx, mut stopping_rx) = watch::channel(false);
        let graceful = async move {
            shutdown.await;
            let _ = stopping_tx.send(true);
            tracing::info!("stop requested: no new connections; draining");
        };
        let config = crate::net::serve::ServeConfig {
            tls,
            header_read_timeout: state.settings.server.header_read_timeout,
        };
        let server = crate::net::serve::serve(listener, config, router, graceful);
        tokio::pin!(server);
        let served = tokio::select! {
            result = &mut server => result.context("serve"),
            _ = async {
                let _ = stopping_rx.wait_for(|stopping| *stopping).await;
                tokio::time::sleep(DRAIN_GRACE).await;
            } => {
                tracing::warn!("in-flight requests still open after {DRAIN_GRACE:?}; closing them");
                Ok(())
            }
        };
        // Websockets and relayed streams outlive their connection's HTTP
        // exchange: let them end (bounded) and record their proxy.response.
        state.proxy.inflight.drain(DRAIN_GRACE).await;
        let _ = stop.send(true);
        // Background tasks finish their current step (a shipper records the segment it
        // uploaded); one stuck on an unreachable S3 or database is abandoned after the
        // grace, and what it left half-done is taken up again at the next start.
        for mut task in background {
            if tokio::time::timeout(DRAIN_GRACE, &mut task).await.is_err() {
                tracing::warn!(
                    "a background task did not stop within {DRAIN_GRACE:?}; abandoning it"
                );
                task.abort();
            }
        }
        let pool = state.pool.clone();
        drop(state);
        appender_task.shutdown().await;
        pool.close().await;
        tracing::info!("stopped; every acknowledged event is committed");
        served
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
