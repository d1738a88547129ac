//! Appender figures for `/metrics`: appends, batch sizes, append latency, chain head.
//!
//! Registered into the gateway's Prometheus registry; the appender only records.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone)]
pub struct AppenderMetrics {
    appends: Counter,
    failures: Counter,
    batch_events: Histogram,
    latency_seconds: Histogram,
    head: Gauge,
    batches: Arc<BatchStats>,
}

/// Group-commit batch sizes seen by this appender, for benches and notes.
#[derive(Default, Debug)]
pub struct BatchStats {
    pub batches: AtomicU64,
    pub events: AtomicU64,
    pub largest: AtomicU64,
    /// Batches of 1, 2–4, 5–16, 17–64, 65–256, 257+ events.
    pub by_size: [AtomicU64; 6],
}

impl BatchStats {
    pub const BUCKETS: [&'static str; 6] = ["1", "2-4", "5-16", "17-64", "65-256", "257+"];

    fn record(&self, events: u64) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.events.fetch_add(events, Ordering::Relaxed);
        self.largest.fetch_max(events, Ordering::Relaxed);
        let bucket = match events {
            0..=1 => 0,
            2..=4 => 1,
            5..=16 => 2,
            17..=64 => 3,
            65..=256 => 4,
            _ => 5,
        };
        self.by_size[bucket].fetch_add(1, Ordering::Relaxed);
    }
}

impl Default for AppenderMetrics {
    fn default() -> Self {
        AppenderMetrics {
            appends: Counter::default(),
            failures: Counter::default(),
            batch_events: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            latency_seconds: Histogram::new(exponential_buckets(0.000_25, 2.0, 16)),
            head: Gauge::default(),
            batches: Arc::default(),
        }
    }
}

impl AppenderMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "rgw_audit_appends",
            "Events committed to the audit chain by this process",
            self.appends.clone(),
        );
        registry.register(
            "rgw_audit_append_failures",
            "Appends refused because the audit store failed or timed out",
            self.failures.clone(),
        );
        registry.register(
            "rgw_audit_batch_events",
            "Events per group-commit transaction",
            self.batch_events.clone(),
        );
        registry.register(
            "rgw_audit_append_latency_seconds",
            "Time from append call to committed answer",
            self.latency_seconds.clone(),
        );
        registry.register(
            "rgw_audit_chain_head",
            "Highest seq committed by this process",
            self.head.clone(),
        );
    }

    pub(crate) fn record_batch(&self, events: usize) {
        self.appends.inc_by(events as u64);
        self.batch_events.observe(events as f64);
        self.batches.record(events as u64);
    }

    pub(crate) fn record_latency(&self, latency: Duration) {
        self.latency_seconds.observe(latency.as_secs_f64());
    }

    pub(crate) fn record_failure(&self) {
        self.failures.inc();
    }

    pub(crate) fn set_head(&self, head: i64) {
        self.head.set(head);
    }

    pub fn appends(&self) -> u64 {
        self.appends.get()
    }

    pub fn batch_stats(&self) -> &BatchStats {
        &self.batches
    }
}
