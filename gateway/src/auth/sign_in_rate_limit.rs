//! The request rate of the public sign-in routes, limited per client (an
//! IPv6 client is its /64; 10 requests per second, burst 20, by default; failed authentications at the
//! rack proxy are another limit: `proxy::auth_failure_limit`): a token bucket per client
//! address, in memory (each replica limits on its own, which is what a flood
//! against one replica needs). Over the limit: 429 with `Retry-After`, and a
//! `rate_limit.exceeded` event at most once a minute per address, so a flood
//! cannot flood the audit chain too.
//!
//! A hand-written bucket rather than a crate: it is thirty lines, and the
//! event-once-a-minute rule needs the bucket's own state anyway.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use events::catalogue::auth::SignInRate;
use events::catalogue::{EventPayload, RateLimitExceeded};
use events::Actor;

use super::client::ClientInfo;
use crate::api::ApiError;
use crate::state::AppState;

/// Beyond this many tracked addresses, idle (full) buckets are dropped.
const PRUNE_ABOVE: usize = 10_000;
const REPORT_EVERY: Duration = Duration::from_secs(60);

pub struct SignInRateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
    last_reported: Option<Instant>,
}

/// What the limiter decided for one request.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Refused; `report` is true when this refusal should be recorded as an event.
    Limited {
        report: bool,
    },
}

impl SignInRateLimiter {
    pub fn new(per_second: u32, burst: u32) -> SignInRateLimiter {
        SignInRateLimiter {
            per_second: f64::from(per_second.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// One request from `ip` (an IPv6 address counts as its /64: a host
    /// holds a whole /64 and could otherwise rotate through it).
    pub fn check(&self, ip: IpAddr, now: Instant) -> Verdict {
        let ip = crate::proxy::auth_failure_limit::limit_key(ip);
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            let (rate, burst) = (self.per_second, self.burst);
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.updated).as_secs_f64() * rate < burst
            });
        }
        let bucket = buckets.entry(ip).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
            last_reported: None,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Verdict::Allowed;
        }
        let report = bucket
            .last_reported
            .is_none_or(|at| now.saturating_duration_since(at) >= REPORT_EVERY);
        if report {
            bucket.last_reported = Some(now);
        }
        Verdict::Limited { report }
    }
}

/// Extractor for the public sign-in routes: the client, once the limiter lets it through.
pub struct PublicAuth(pub ClientInfo);

impl FromRequestParts<AppState> for PublicAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Ok(client) = ClientInfo::from_request_parts(parts, state).await;
        match state
            .identity
            .sign_in_limiter
            .check(client.ip, Instant::now())
        {
            Verdict::Allowed => Ok(PublicAuth(client)),
            Verdict::Limited { report } => {
                tracing::warn!(ip = %client.ip, path = parts.uri.path(), "sign-in rate limit exceeded");
                // Once a minute per address, and within the budget of anonymous events.
                let report = report
                    && state
                        .identity
                        .anonymous_events
                        .admit(RateLimitExceeded::TYPE, client.ip);
                if report {
                    let draft = RateLimitExceeded::SignInRate(SignInRate {
                        path: parts.uri.path().to_owned(),
                        limit_per_second: state.settings.auth.rate_limit_per_second,
                        burst: state.settings.auth.rate_limit_burst,
                    })
                    .draft(Actor::anonymous())
                    .with_source(client.source.clone());
                    // The refusal stands whether or not the record is written.
                    if let Err(e) = state.appender.append(draft).await {
                        tracing::error!(error = %e, "could not record rate_limit.exceeded");
                    }
                }
                let mut error = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too many sign-in requests from this address; wait a moment and try again",
                )
                .with_reason("rate_limited");
                error.retry_after_seconds = Some(1);
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_slash_64_shares_one_bucket() {
        let limiter = SignInRateLimiter::new(1, 2);
        let now = Instant::now();
        for host in ["2001:db8:5:6::1", "2001:db8:5:6::2"] {
            assert_eq!(limiter.check(host.parse().unwrap(), now), Verdict::Allowed);
        }
        assert!(matches!(
            limiter.check("2001:db8:5:6:ffff::3".parse().unwrap(), now),
            Verdict::Limited { .. }
        ));
        assert_eq!(
            limiter.check("2001:db8:5:7::1".parse().unwrap(), now),
            Verdict::Allowed
        );
    }

    #[test]
    fn bucket_allows_the_burst_then_refills_at_the_rate() {
        let limiter = SignInRateLimiter::new(2, 3);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check(ip, t0), Verdict::Allowed);
        }
        assert_eq!(limiter.check(ip, t0), Verdict::Limited { report: true });
        assert_eq!(limiter.check(ip, t0), Verdict::Limited { report: false });
        assert_eq!(limiter.check(other, t0), Verdict::Allowed);
        let later = t0 + Duration::from_millis(500);
        assert_eq!(limiter.check(ip, later), Verdict::Allowed);
        assert_eq!(limiter.check(ip, later), Verdict::Limited { report: false });
        let much_later = t0 + Duration::from_secs(61);
        assert_eq!(limiter.check(ip, much_later), Verdict::Allowed);
        for _ in 0..2 {
            limiter.check(ip, much_later);
        }
        assert_eq!(
            limiter.check(ip, much_later),
            Verdict::Limited { report: true }
        );
    }
}
