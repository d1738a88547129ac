//! Failed authentications at the rack proxy, limited per client address in
//! fixed windows (the sign-in routes' request rate is another limit:
//! `auth::sign_in_rate_limit`).
//!
//! Each address (an IPv6 address counts as its /64, which one host usually
//! holds whole) may fail `limit` times per window; after that every failing
//! request from it gets 429 until the window ends. A valid credential is
//! never refused for others' failures (guessing a 256-bit token is hopeless,
//! so there is nothing to confirm). Refusals are counted, not recorded one by one: when
//! a window ends, one `rate_limit.exceeded` event per address says how many
//! requests were refused, so a flood cannot fill the chain.
//!
//! [`AuthFailureLimiter::spawn_recorder`] writes those events.
//!
//! Memory is bounded: at most [`MAX_ADDRESSES`] addresses are tracked; when
//! full, finished windows are swept first, and past that new addresses are
//! not limited (authentication itself still applies).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use events::store::Appender;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::record;

pub const MAX_ADDRESSES: usize = 100_000;

/// What the limiter says about a request before it is authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    Closed { retry_after_secs: u64 },
}

/// One address's refused requests in one finished window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeded {
    pub address: IpAddr,
    /// Unix seconds.
    pub window_start: u64,
    pub window_seconds: u64,
    pub limit: u32,
    pub failures: u32,
    pub refused: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    window_start: u64,
    failures: u32,
    refused: u64,
}

#[derive(Debug)]
pub struct AuthFailureLimiter {
    limit: u32,
    window: u64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<IpAddr, Entry>,
    /// Finished windows with refusals, not yet recorded.
    finished: Vec<Exceeded>,
}

impl AuthFailureLimiter {
    pub fn new(limit: u32, window: Duration) -> AuthFailureLimiter {
        AuthFailureLimiter {
            limit,
            window: window.as_secs().max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn window_seconds(&self) -> u64 {
        self.window
    }

    fn window_start(&self, now: u64) -> u64 {
        now - now % self.window
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Before authenticating: may this address try? A closed gate counts the refusal.
    /// `now` is Unix seconds.
    pub fn check(&self, address: IpAddr, now: u64) -> Gate {
        let address = limit_key(address);
        let start = self.window_start(now);
        let mut inner = self.lock();
        let Some(entry) = self.current(&mut inner, address, start) else {
            return Gate::Open;
        };
        if entry.failures < self.limit {
            return Gate::Open;
        }
        entry.refused += 1;
        if entry.refused == 1 {
            tracing::warn!(
                address = %address,
                limit = self.limit,
                window_seconds = self.window,
                "too many failed authentications; refusing this address until the window ends"
            );
        }
        Gate::Closed {
            retry_after_secs: (start + self.window).saturating_sub(now).max(1),
        }
    }

    /// After a failed authentication.
    pub fn record_failure(&self, address: IpAddr, now: u64) {
        let address = limit_key(address);
        let start = self.window_start(now);
        let mut inner = self.lock();
        if !inner.entries.contains_key(&address) && inner.entries.len() >= MAX_ADDRESSES {
            self.sweep(&mut inner, start);
            if inner.entries.len() >= MAX_ADDRESSES {
                tracing::warn!("rate limiter full; a new address is not limited");
                return;
            }
        }
        let entry = inner.entries.entry(address).or_insert(Entry {
            window_start: start,
            failures: 0,
            refused: 0,
        });
        if entry.window_start != start {
            let old = *entry;
            *entry = Entry {
                window_start: start,
                failures: 0,
                refused: 0,
            };
            if old.refused > 0 {
                let finished = self.exceeded(address, old);
                inner.finished.push(finished);
            }
        }
        if let Some(entry) = inner.entries.get_mut(&address) {
            entry.failures = entry.failures.saturating_add(1);
        }
    }

    /// The entry for the current window, rolling over a stale one.
    fn current<'a>(
        &self,
        inner: &'a mut Inner,
        address: IpAddr,
        start: u64,
    ) -> Option<&'a mut Entry> {
        let stale = inner
            .entries
            .get(&address)
            .filter(|e| e.window_start != start)
            .copied();
        if let Some(old) = stale {
            inner.entries.remove(&address);
            if old.refused > 0 {
                inner.finished.push(self.exceeded(address, old));
            }
            return None;
        }
        inner.entries.get_mut(&address)
    }

    fn exceeded(&self, address: IpAddr, entry: Entry) -> Exceeded {
        Exceeded {
            address,
            window_start: entry.window_start,
            window_seconds: self.window,
            limit: self.limit,
            failures: entry.failures,
            refused: entry.refused,
        }
    }

    /// Drop every entry of a window before `start`, keeping those with refusals to report.
    fn sweep(&self, inner: &mut Inner, start: u64) {
        let stale: Vec<(IpAddr, Entry)> = inner
            .entries
            .iter()
            .filter(|(_, e)| e.window_start < start)
            .map(|(a, e)| (*a, *e))
            .collect();
        for (address, entry) in stale {
            inner.entries.remove(&address);
            if entry.refused > 0 {
                inner.finished.push(self.exceeded(address, entry));
            }
        }
    }

    /// Windows that have ended (before `now`), with refusals: to be recorded.
    pub fn take_finished(&self, now: u64) -> Vec<Exceeded> {
        let start = self.window_start(now);
        let mut inner = self.lock();
        self.sweep(&mut inner, start);
        std::mem::take(&mut inner.finished)
    }

    /// Everything with refusals, ended or not (at shutdown).
    pub fn take_all(&self) -> Vec<Exceeded> {
        let mut inner = self.lock();
        let entries: Vec<(IpAddr, Entry)> = inner.entries.drain().collect();
        let mut all = std::mem::take(&mut inner.finished);
        all.extend(
            entries
                .into_iter()
                .filter(|(_, e)| e.refused > 0)
                .map(|(a, e)| self.exceeded(a, e)),
        );
        all
    }

    /// Put back what could not be recorded, to try again on the next tick.
    pub fn restore(&self, unrecorded: Vec<Exceeded>) {
        self.lock().finished.extend(unrecorded);
    }

    /// Records each finished rate-limit window as one `rate_limit.exceeded`
    /// event; at stop, records the windows still open.
    pub fn spawn_recorder(
        self: &Arc<Self>,
        appender: Appender,
        mut stopped: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let limiter = self.clone();
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
}

async fn record_exceeded(
    appender: &Appender,
    limiter: &AuthFailureLimiter,
    exceeded: Vec<Exceeded>,
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

/// What the limiter counts an address as: IPv4 as itself (also when mapped
/// into IPv6), IPv6 as its /64 (a host gets a whole /64 and can rotate
/// addresses within it at will).
pub fn limit_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(std::net::Ipv6Addr::from(bits))
            }
        },
    }
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_count_as_their_slash_64() {
        let limiter = AuthFailureLimiter::new(2, Duration::from_secs(60));
        let now = 1_000_000;
        limiter.record_failure("2001:db8:1:2::1".parse().unwrap(), now);
        limiter.record_failure("2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap(), now);
        assert!(matches!(
            limiter.check("2001:db8:1:2:abcd::9".parse().unwrap(), now),
            Gate::Closed { .. }
        ));
        assert_eq!(
            limiter.check("2001:db8:1:3::1".parse().unwrap(), now),
            Gate::Open,
            "another /64 is another client"
        );
        assert_eq!(
            limit_key("::ffff:10.1.2.3".parse().unwrap()),
            "10.1.2.3".parse::<IpAddr>().unwrap()
        );
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn closes_after_the_limit_and_reopens_next_window() {
        let limiter = AuthFailureLimiter::new(3, Duration::from_secs(60));
        let a = ip("1.2.3.4");
        let t = 6_000; // a window boundary
        for _ in 0..3 {
            assert_eq!(limiter.check(a, t), Gate::Open);
            limiter.record_failure(a, t);
        }
        assert_eq!(
            limiter.check(a, t + 10),
            Gate::Closed {
                retry_after_secs: 50
            }
        );
        for _ in 0..9 {
            assert!(matches!(limiter.check(a, t + 20), Gate::Closed { .. }));
        }
        // Another address is not affected.
        assert_eq!(limiter.check(ip("5.6.7.8"), t + 20), Gate::Open);
        assert!(limiter.take_finished(t + 59).is_empty(), "window not over");
        let reported = limiter.take_finished(t + 60);
        assert_eq!(
            reported,
            vec![Exceeded {
                address: a,
                window_start: t,
                window_seconds: 60,
                limit: 3,
                failures: 3,
                refused: 10
            }]
        );
        assert!(limiter.take_finished(t + 61).is_empty(), "reported once");
        assert_eq!(limiter.check(a, t + 61), Gate::Open);
    }

    #[test]
    fn a_rollover_on_check_keeps_the_report() {
        let limiter = AuthFailureLimiter::new(1, Duration::from_secs(10));
        let a = ip("::1");
        limiter.record_failure(a, 100);
        assert!(matches!(limiter.check(a, 101), Gate::Closed { .. }));
        assert_eq!(limiter.check(a, 111), Gate::Open);
        let reported = limiter.take_finished(111);
        assert_eq!(reported.len(), 1);
        assert_eq!(reported[0].refused, 1);
        assert_eq!(reported[0].window_start, 100);
    }

    #[test]
    fn failures_without_refusals_are_not_reported() {
        let limiter = AuthFailureLimiter::new(5, Duration::from_secs(10));
        limiter.record_failure(ip("1.1.1.1"), 100);
        assert!(limiter.take_finished(200).is_empty());
        assert!(limiter.take_all().is_empty());
    }
}
