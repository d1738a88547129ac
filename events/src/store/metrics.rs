//! Appender figures for `/metrics`: appends, batch sizes, append latency, chain head.
//!
//! Registered into the gateway's Prometheus registry; the appender only records.

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
}

impl Default for AppenderMetrics {
    fn default() -> Self {
        AppenderMetrics {
            appends: Counter::default(),
            failures: Counter::default(),
            batch_events: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            latency_seconds: Histogram::new(exponential_buckets(0.000_25, 2.0, 16)),
            head: Gauge::default(),
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
}
