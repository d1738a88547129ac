//! The proxy's long-lived parts, built once at start: the rack client, the
//! failed-authentication limiter and its recorder, the stdout request log,
//! the trusted proxies, and the count of streams still running (so a stop
//! waits for their `proxy.response` before the appender drains).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use events::store::Appender;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use secrecy::ExposeSecret;

use super::ratelimit::AuthFailureLimiter;
use super::record::{self, RequestLog};
use super::redact::Scrubber;
use super::upstream::{Rack, RackConfigError};
use crate::net::client_addr::{BadCidr, TrustedProxies};
use crate::settings::Settings;

/// How long streams cut at shutdown get to record their end.
const CUT_GRACE: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum ProxySetupError {
    #[error(transparent)]
    Rack(#[from] RackConfigError),
    #[error(transparent)]
    TrustedProxies(#[from] BadCidr),
}

pub struct ProxyEngine {
    /// `None` when `RACK_HOST` is not set: every allowed request then gets 503.
    pub rack: Option<Rack>,
    pub limiter: Arc<AuthFailureLimiter>,
    pub request_log: RequestLog,
    pub trusted_proxies: TrustedProxies,
    pub inflight: Arc<Inflight>,
    /// Knows the rack's credentials in every form they travel in; each
    /// request's scrubber starts from this one.
    pub scrubber: Scrubber,
}

impl ProxyEngine {
    pub fn new(settings: &Settings) -> Result<ProxyEngine, ProxySetupError> {
        let rack = Rack::from_settings(settings)?;
        let mut scrubber = Scrubber::new();
        if let Some(token) = &settings.rack.token {
            scrubber.add_basic(&settings.rack.username, token.expose_secret());
        }
        match &rack {
            Some(rack) => tracing::info!(
                rack = %settings.rack.name,
                tls_trust = rack.trust.map(|t| t.as_str()).unwrap_or("plain_http"),
                "rack proxy ready"
            ),
            None => tracing::warn!("RACK_HOST is not set: the rack proxy will answer 503"),
        }
        Ok(ProxyEngine {
            rack,
            limiter: Arc::new(AuthFailureLimiter::new(
                settings.proxy.auth_failure_limit,
                settings.proxy.auth_failure_window,
            )),
            request_log: if settings.proxy.request_log {
                RequestLog::stdout()
            } else {
                RequestLog::off()
            },
            trusted_proxies: TrustedProxies::parse(&settings.server.trusted_proxy_cidrs)?,
            inflight: Arc::new(Inflight::new()),
            scrubber,
        })
    }

    /// Records each finished rate-limit window as one `rate_limit.exceeded`
    /// event; at stop, records the windows still open.
    pub fn spawn_rate_limit_recorder(
        &self,
        appender: Appender,
        mut stopped: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let limiter = self.limiter.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        let finished = limiter.take_finished(unix_now());
                        record_exceeded(&appender, &limiter, finished).await;
                    }
                    _ = async { let _ = stopped.wait_for(|s| *s).await; } => break,
                }
            }
            let rest = limiter.take_all();
            record_exceeded(&appender, &limiter, rest).await;
        })
    }

    /// At stop, after the listener closed: let running streams and websockets
    /// finish within `grace`, then cut them (they record `gateway_shutdown`),
    /// and wait briefly for their records.
    pub async fn drain(&self, grace: Duration) {
        if !self.inflight.wait_idle(grace).await {
            tracing::warn!(
                open = self.inflight.count(),
                "streams still open at stop; closing them"
            );
            self.inflight.cut();
            if !self.inflight.wait_idle(CUT_GRACE).await {
                tracing::error!(
                    open = self.inflight.count(),
                    "streams did not record their end before stop"
                );
            }
        }
    }
}

async fn record_exceeded(
    appender: &Appender,
    limiter: &AuthFailureLimiter,
    exceeded: Vec<super::ratelimit::Exceeded>,
) {
    if exceeded.is_empty() {
        return;
    }
    let drafts = exceeded.iter().map(record::rate_limit_event).collect();
    if let Err(error) = appender.append_all(drafts).await {
        tracing::error!(error = %error, "could not record rate_limit.exceeded; will retry");
        limiter.restore(exceeded);
    }
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Streams, websockets and their pending records still running.
pub struct Inflight {
    count: AtomicUsize,
    idle: Notify,
    cut: watch::Sender<bool>,
}

impl Default for Inflight {
    fn default() -> Self {
        Inflight::new()
    }
}

impl Inflight {
    pub fn new() -> Inflight {
        Inflight {
            count: AtomicUsize::new(0),
            idle: Notify::new(),
            cut: watch::channel(false).0,
        }
    }

    pub fn enter(self: &Arc<Self>) -> InflightGuard {
        self.count.fetch_add(1, Ordering::SeqCst);
        InflightGuard(self.clone())
    }

    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Resolves when the gateway is stopping and open streams must end.
    pub fn cut_signal(&self) -> watch::Receiver<bool> {
        self.cut.subscribe()
    }

    fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// True if nothing is in flight within `limit`.
    async fn wait_idle(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.idle.notified();
            if self.count() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.count() == 0;
            }
        }
    }
}

pub struct InflightGuard(Arc<Inflight>);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drain_waits_for_streams_then_cuts_them() {
        let inflight = Arc::new(Inflight::new());
        assert!(inflight.wait_idle(Duration::from_millis(10)).await);
        let guard = inflight.enter();
        assert!(!inflight.wait_idle(Duration::from_millis(20)).await);
        let mut cut = inflight.cut_signal();
        let stream = tokio::spawn(async move {
            let _ = cut.wait_for(|c| *c).await;
            drop(guard);
        });
        inflight.cut();
        assert!(inflight.wait_idle(Duration::from_secs(2)).await);
        stream.await.unwrap();
    }
}
