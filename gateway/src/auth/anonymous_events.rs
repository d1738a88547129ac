//! A budget for events nobody authenticated: `auth.login.started`,
//! `auth.login.failed` and the sign-in `rate_limit.exceeded`. Anyone can
//! cause them, so without a bound a flood (from many addresses, each under
//! its request rate) would grow the chain without limit.
//!
//! Per window (`ANONYMOUS_EVENT_WINDOW_SECONDS`, 60) each address (an IPv6
//! address: its /64) may have `ANONYMOUS_EVENTS_PER_ADDRESS` (20) such events
//! recorded one by one, and all addresses together
//! `ANONYMOUS_EVENTS_PER_WINDOW` (300). Past either, the event is counted
//! instead, and when the window ends one `auth.anonymous_events.aggregated`
//! says how many of each type were counted and from where. The request itself
//! is served as before: the budget decides only how it is recorded, so a flood
//! cannot stop people signing in, and what they do once signed in is recorded
//! in full (authenticated events never pass through here).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use events::catalogue::auth::AddressCount;
use events::catalogue::{AnonymousEventsAggregated, EventPayload};
use events::store::Appender;
use events::{Actor, Draft};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::proxy::auth_failure_limit::limit_key;

/// Beyond this many addresses in one window, new addresses are not tracked one
/// by one (memory stays bounded); their events go to the global budget only.
const MAX_TRACKED: usize = 100_000;
/// How many addresses the aggregate names.
const TOP_ADDRESSES: usize = 10;

pub struct AnonymousEvents {
    window: Duration,
    per_address: u32,
    global: u32,
    state: Mutex<Window>,
}

struct Window {
    start: DateTime<Utc>,
    recorded: u32,
    recorded_by_address: HashMap<IpAddr, u32>,
    counted: BTreeMap<&'static str, u64>,
    counted_by_address: HashMap<IpAddr, u64>,
    counted_untracked: u64,
}

impl Window {
    fn new(start: DateTime<Utc>) -> Window {
        Window {
            start,
            recorded: 0,
            recorded_by_address: HashMap::new(),
            counted: BTreeMap::new(),
            counted_by_address: HashMap::new(),
            counted_untracked: 0,
        }
    }
}

impl AnonymousEvents {
    pub fn new(window: Duration, per_address: u32, global: u32) -> AnonymousEvents {
        AnonymousEvents {
            window,
            per_address,
            global,
            state: Mutex::new(Window::new(Utc::now())),
        }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// Whether an anonymous event of `event_type` from `ip` is recorded one by
    /// one (true), or only counted into the window's aggregate (false).
    pub fn admit(&self, event_type: &'static str, ip: IpAddr) -> bool {
        let key = limit_key(ip);
        let mut w = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let tracked =
            w.recorded_by_address.contains_key(&key) || w.recorded_by_address.len() < MAX_TRACKED;
        let mine = if tracked {
            w.recorded_by_address.get(&key).copied().unwrap_or(0)
        } else {
            0
        };
        if w.recorded < self.global && mine < self.per_address {
            w.recorded += 1;
            if tracked {
                *w.recorded_by_address.entry(key).or_insert(0) += 1;
            }
            return true;
        }
        *w.counted.entry(event_type).or_insert(0) += 1;
        if w.counted_by_address.contains_key(&key) || w.counted_by_address.len() < MAX_TRACKED {
            *w.counted_by_address.entry(key).or_insert(0) += 1;
        } else {
            w.counted_untracked += 1;
        }
        false
    }

    /// End the current window (a new one starts `now`); its aggregate, when anything was counted.
    pub fn roll(&self, now: DateTime<Utc>) -> Option<AnonymousEventsAggregated> {
        let finished = {
            let mut w = self
                .state
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            std::mem::replace(&mut *w, Window::new(now))
        };
        if finished.counted.is_empty() {
            return None;
        }
        let mut by_address: Vec<(IpAddr, u64)> = finished.counted_by_address.into_iter().collect();
        let addresses = by_address.len() as u64 + u64::from(finished.counted_untracked > 0);
        by_address.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Some(AnonymousEventsAggregated {
            window_start: finished.start.to_rfc3339_opts(SecondsFormat::Secs, true),
            window_seconds: self.window.as_secs(),
            per_address_limit: self.per_address,
            global_limit: self.global,
            counted: finished
                .counted
                .into_iter()
                .map(|(t, n)| (t.to_owned(), n))
                .collect(),
            addresses,
            top_addresses: by_address
                .into_iter()
                .take(TOP_ADDRESSES)
                .map(|(ip, count)| AddressCount {
                    address: ip.to_string(),
                    count,
                })
                .collect(),
        })
    }

    /// Every window, the aggregate of the window that ended; at stop, that of the last one.
    pub fn spawn_recorder(
        self: &Arc<Self>,
        appender: Appender,
        mut stopped: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let budget = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(budget.window);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await; // the first tick is immediate
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = async { let _ = stopped.wait_for(|s| *s).await; } => break,
                }
                if let Some(aggregate) = budget.roll(Utc::now()) {
                    record(&appender, aggregate).await;
                }
            }
            if let Some(aggregate) = budget.roll(Utc::now()) {
                record(&appender, aggregate).await;
            }
        })
    }
}

fn draft(aggregate: AnonymousEventsAggregated) -> Draft {
    aggregate.draft(Actor::system("gateway"))
}

async fn record(appender: &Appender, aggregate: AnonymousEventsAggregated) {
    let counted: u64 = aggregate.counted.values().sum();
    if let Err(e) = appender.append(draft(aggregate)).await {
        // Only counts are lost: each counted request was served or refused already.
        tracing::error!(error = %e, counted, "could not record auth.anonymous_events.aggregated");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn each_address_has_its_budget_then_events_are_counted() {
        let budget = AnonymousEvents::new(Duration::from_secs(60), 2, 100);
        let a = ip("192.0.2.1");
        assert!(budget.admit("auth.login.started", a));
        assert!(budget.admit("auth.login.failed", a));
        for _ in 0..5 {
            assert!(!budget.admit("auth.login.started", a));
        }
        assert!(!budget.admit("auth.login.failed", a));
        // Another address is not affected; an IPv6 /64 is one address.
        assert!(budget.admit("auth.login.started", ip("192.0.2.2")));
        assert!(budget.admit("auth.login.started", ip("2001:db8:1:2::1")));
        assert!(budget.admit("auth.login.started", ip("2001:db8:1:2::2")));
        assert!(!budget.admit("auth.login.started", ip("2001:db8:1:2:ffff::9")));

        let start = Utc::now();
        let aggregate = budget.roll(start).expect("something was counted");
        assert_eq!(aggregate.counted["auth.login.started"], 6);
        assert_eq!(aggregate.counted["auth.login.failed"], 1);
        assert_eq!(aggregate.addresses, 2);
        assert_eq!(aggregate.top_addresses[0].address, "192.0.2.1");
        assert_eq!(aggregate.top_addresses[0].count, 6);
        assert_eq!(aggregate.top_addresses[1].address, "2001:db8:1:2::");
        assert_eq!(aggregate.top_addresses[1].count, 1);
        assert_eq!(
            (aggregate.per_address_limit, aggregate.global_limit),
            (2, 100)
        );

        // The next window starts afresh, and an empty window leaves no aggregate.
        assert!(budget.admit("auth.login.started", a));
        assert!(budget.roll(Utc::now()).is_none());
    }

    #[test]
    fn all_addresses_together_are_capped() {
        let budget = AnonymousEvents::new(Duration::from_secs(60), 5, 10);
        let recorded = (0..1000u32)
            .filter(|i| {
                let address = IpAddr::from([10, 0, (i / 256) as u8, (i % 256) as u8]);
                budget.admit("auth.login.started", address)
            })
            .count();
        assert_eq!(recorded, 10);
        let aggregate = budget.roll(Utc::now()).unwrap();
        assert_eq!(aggregate.counted["auth.login.started"], 990);
        assert_eq!(aggregate.addresses, 990);
        assert_eq!(aggregate.top_addresses.len(), TOP_ADDRESSES);
    }
}
