//! What every request handler can reach. Cheap to clone (one `Arc`).

use std::ops::Deref;
use std::sync::Arc;

use events::store::Appender;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sqlx::PgPool;

use crate::audit::checkpoints::{CheckpointRequests, CheckpointStatus};
use crate::settings::Settings;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub settings: Settings,
    /// Readers and projections; the appender has its own connection.
    pub pool: PgPool,
    /// The only way anything is written: every state change is an event.
    pub appender: Appender,
    /// This process, as recorded in `gateway.started` and `source.instance`.
    pub instance: String,
    pub metrics: Metrics,
    pub checkpoints: Arc<CheckpointStatus>,
    pub checkpoint_requests: CheckpointRequests,
    /// Sign-in: the OpenID provider, CSRF key, sign-in rate limiter, trusted proxies.
    pub identity: crate::auth::Identity,
    /// WORM archiving status, and what export bundles carry.
    pub archive: crate::archive::Archive,
    /// MFA keys and the YubiKey validation service.
    pub mfa: crate::mfa::Mfa,
    /// What every rack-proxy request shares (rack client, failed-authentication limiter, request log).
    pub proxy: crate::proxy::parts::ProxyParts,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(inner: Inner) -> AppState {
        AppState(Arc::new(inner))
    }

    pub fn chain(&self) -> &str {
        self.appender.chain()
    }
}

/// The Prometheus registry and the gauges computed at scrape time.
pub struct Metrics {
    pub registry: Registry,
    pub checkpoint_age_seconds: Gauge,
    pub checkpoint_size: Gauge,
    pub checkpoint_leader: Gauge,
}

impl Metrics {
    pub fn new(appender: &Appender) -> Metrics {
        let mut registry = Registry::default();
        appender.metrics().register(&mut registry);
        let checkpoint_age_seconds = Gauge::default();
        let checkpoint_size = Gauge::default();
        let checkpoint_leader = Gauge::default();
        registry.register(
            "rgw_checkpoint_age_seconds",
            "Seconds since the newest signed checkpoint (-1 when none exists)",
            checkpoint_age_seconds.clone(),
        );
        registry.register(
            "rgw_checkpoint_size",
            "Tree size of the newest signed checkpoint",
            checkpoint_size.clone(),
        );
        registry.register(
            "rgw_checkpoint_signer_leader",
            "1 when this replica is the one signing checkpoints",
            checkpoint_leader.clone(),
        );
        Metrics {
            registry,
            checkpoint_age_seconds,
            checkpoint_size,
            checkpoint_leader,
        }
    }
}
