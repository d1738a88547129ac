//! The streams, websockets and pending `proxy.response` records still
//! running. A stop lets them finish within a grace, then cuts them (they
//! record `gateway_shutdown`) and waits briefly for their records, so the
//! appender drains only after every one is written.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

/// How long streams cut at shutdown get to record their end.
const CUT_GRACE: Duration = Duration::from_secs(3);

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

    /// At stop, after the listener closed: let running streams and websockets
    /// finish within `grace`, then cut them (they record `gateway_shutdown`),
    /// and wait briefly for their records.
    pub async fn drain(&self, grace: Duration) {
        if !self.wait_idle(grace).await {
            tracing::warn!(
                open = self.count(),
                "streams still open at stop; closing them"
            );
            self.cut();
            if !self.wait_idle(CUT_GRACE).await {
                tracing::error!(
                    open = self.count(),
                    "streams did not record their end before stop"
                );
            }
        }
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
