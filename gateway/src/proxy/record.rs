//! What the proxy writes down: the `proxy.request` / `proxy.response` events
//! and the aggregated `rate_limit.exceeded` event (their payloads are declared
//! in `events::catalogue`), and the per-request JSON line on stdout.
//!
//! Every number is an integer (latency in µs, sizes in bytes); every value
//! that came from the request has been through the redactor before it gets
//! here.

use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;

use chrono::{SecondsFormat, TimeZone, Utc};
use events::catalogue::auth::ProxyAuthFailures;
use events::catalogue::proxy::UpstreamError;
use events::catalogue::{Decision, EventPayload, ProxyRequest, ProxyResponse, RateLimitExceeded};
use events::{Actor, Draft, Source};
use serde::Serialize;

use super::auth_failure_limit::Exceeded;
use super::context::RequestContext;
use super::error::ProxyError;

/// `proxy.request`: written before anything is forwarded (allow), or as the
/// whole record of a refusal (deny, with the status the gateway answered).
pub fn request_event(
    ctx: &RequestContext,
    rack: &str,
    decision: Decision,
    reason: &str,
    denial: Option<&ProxyError>,
) -> Draft {
    request(ctx, rack, decision, reason, denial)
        .draft(ctx.actor())
        .with_source(ctx.source())
}

/// `proxy.request` for an exec session refused in-band: a denial told to the
/// client in a websocket error frame (`delivered`), not in an HTTP status.
pub fn in_band_refusal_event(ctx: &RequestContext, rack: &str, refusal: &ProxyError) -> Draft {
    let reason = refusal.public_message();
    let mut payload = request(ctx, rack, Decision::Deny, &reason, Some(refusal));
    payload.delivered = Some("websocket_error_frame".to_owned());
    payload.draft(ctx.actor()).with_source(ctx.source())
}

fn request(
    ctx: &RequestContext,
    rack: &str,
    decision: Decision,
    reason: &str,
    denial: Option<&ProxyError>,
) -> ProxyRequest {
    ProxyRequest {
        request_id: ctx.request_id.clone(),
        rack: rack.to_owned(),
        method: ctx.method.as_str().to_owned(),
        path: ctx.shown_path(),
        route: ctx.route.clone(),
        permission: ctx.permission.clone(),
        decision,
        reason: reason.to_owned(),
        websocket: ctx.websocket,
        params: ctx.params.clone(),
        env_change: ctx.env_change.clone(),
        command: ctx.command.clone(),
        client_request_id: ctx.client_request_id.clone(),
        status: denial.map(|e| e.status().as_u16()),
        error: denial.map(|e| e.code().to_owned()),
        fault: denial.map(|e| e.fault().as_str().to_owned()),
        delivered: None,
    }
}

/// How a forwarded exchange ended.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    /// The status the client got (101 for websockets).
    pub status: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// `http`, `stream` (a body relayed as it came) or `websocket`.
    pub kind: &'static str,
    /// Streams and websockets: from the start of the request to the end of the stream.
    pub duration_us: Option<u64>,
    /// Streams and websockets: `client`, `rack`, `gateway_shutdown`, or `error`.
    pub closed_by: Option<&'static str>,
    /// The gateway closed it itself: why.
    pub closed_reason: Option<String>,
    pub frames_in: Option<u64>,
    pub frames_out: Option<u64>,
    /// The rack's own `Request-Id` for the exchange, to find it in the rack's logs.
    pub rack_request_id: Option<String>,
    /// The rack failed: it never got the request, or its reply broke off.
    pub upstream_error: Option<(&'static str, String)>,
}

/// `proxy.response`: after the rack answered (or failed to).
pub fn response_event(ctx: &RequestContext, latency_us: u64, exchange: &Exchange) -> Draft {
    ProxyResponse {
        request_id: ctx.request_id.clone(),
        status: exchange.status,
        latency_us,
        bytes_in: exchange.bytes_in,
        bytes_out: exchange.bytes_out,
        kind: exchange.kind.to_owned(),
        request_seq: ctx.request_seq,
        duration_us: exchange.duration_us,
        closed_by: exchange.closed_by.map(str::to_owned),
        closed_reason: exchange.closed_reason.clone(),
        frames_in: exchange.frames_in,
        frames_out: exchange.frames_out,
        rack_request_id: exchange.rack_request_id.clone(),
        upstream_error: exchange
            .upstream_error
            .as_ref()
            .map(|(code, detail)| UpstreamError {
                code: (*code).to_owned(),
                detail: detail.clone(),
            }),
        env_change: ctx.env_diff.clone(),
    }
    .draft(ctx.actor())
    .with_source(ctx.source())
}

/// One address's refused requests in one window, as one event.
pub fn rate_limit_event(exceeded: &Exceeded) -> Draft {
    let window_start = Utc
        .timestamp_opt(exceeded.window_start as i64, 0)
        .single()
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
    RateLimitExceeded::ProxyAuthFailures(ProxyAuthFailures {
        address: exceeded.address.to_string(),
        window_start,
        window_seconds: exceeded.window_seconds,
        limit: exceeded.limit,
        failures: exceeded.failures,
        refused: exceeded.refused,
    })
    .draft(Actor::anonymous())
    .with_source(Source {
        ip: Some(exceeded.address.to_string()),
        ..Source::default()
    })
}

/// The stdout line: one per proxied request or refusal.
#[derive(Debug, Clone, Serialize)]
pub struct RequestLine {
    pub ts: String,
    pub user_email: Option<String>,
    pub rack: String,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub latency_ms: u64,
    pub rbac_decision: &'static str,
    pub request_id: String,
    pub client_ip: String,
}

impl RequestLine {
    pub fn new(ctx: &RequestContext, rack: &str, status: u16, decision: Decision) -> RequestLine {
        RequestLine {
            ts: ctx.started_at.to_rfc3339_opts(SecondsFormat::Micros, true),
            user_email: ctx.acting_as(),
            rack: rack.to_owned(),
            method: ctx.method.to_string(),
            path: ctx.shown_path(),
            status,
            latency_ms: ctx.elapsed_us() / 1000,
            rbac_decision: decision.as_str(),
            request_id: ctx.request_id.clone(),
            client_ip: ctx.client_ip.to_string(),
        }
    }
}

/// Where request lines go. Writing happens on a thread of its own, so a slow
/// or blocked stdout never stalls a request; lines are dropped (and counted
/// in the log) only if a large backlog builds up.
#[derive(Clone)]
pub struct RequestLog {
    sender: Option<SyncSender<String>>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
}

const BACKLOG: usize = 65_536;

impl RequestLog {
    pub fn stdout() -> RequestLog {
        let (sender, receiver) = sync_channel::<String>(BACKLOG);
        let spawned = std::thread::Builder::new()
            .name("request-log".into())
            .spawn(move || {
                use std::io::Write;
                let stdout = std::io::stdout();
                while let Ok(line) = receiver.recv() {
                    let mut out = stdout.lock();
                    let _ = out.write_all(line.as_bytes());
                    let _ = out.flush();
                }
            });
        match spawned {
            Ok(_) => RequestLog {
                sender: Some(sender),
                dropped: Default::default(),
            },
            Err(e) => {
                tracing::error!(error = %e, "cannot start the request log writer; request lines are off");
                RequestLog::off()
            }
        }
    }

    pub fn off() -> RequestLog {
        RequestLog {
            sender: None,
            dropped: Default::default(),
        }
    }

    pub fn write(&self, line: &RequestLine) {
        let Some(sender) = &self.sender else {
            return;
        };
        let Ok(mut text) = serde_json::to_string(line) else {
            return;
        };
        text.push('\n');
        match sender.try_send(text) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                let n = self
                    .dropped
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n.is_multiple_of(1000) {
                    tracing::error!(
                        dropped = n + 1,
                        "stdout request log backlog full; lines dropped"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, Method};
    use serde_json::{json, Value};

    fn ctx() -> RequestContext {
        RequestContext::new(
            Method::GET,
            "/apps".into(),
            None,
            &HeaderMap::new(),
            "127.0.0.1".parse().unwrap(),
            false,
        )
    }

    #[test]
    fn events_hold_integers_only_and_validate() {
        let mut c = ctx();
        c.path = Some("/apps".into());
        c.route = Some("AppList".into());
        c.permission = Some("convox:app:list".into());
        c.params = json!({});
        let draft = request_event(&c, "default", Decision::Allow, "role viewer", None);
        draft.validate().unwrap();
        assert_eq!(draft.data["decision"], "allow");
        assert_eq!(
            draft.source.request_id.as_deref(),
            Some(c.request_id.as_str())
        );
        let exchange = Exchange {
            status: 200,
            bytes_in: 0,
            bytes_out: 12,
            kind: "http",
            ..Exchange::default()
        };
        let draft = response_event(&c, 1234, &exchange);
        draft.validate().unwrap();
        assert_eq!(draft.data["latency_us"], 1234);
        let denied = ProxyError::UnknownRoute("GET /nope".into());
        let draft = request_event(&c, "default", Decision::Deny, "unknown", Some(&denied));
        assert_eq!(draft.data["status"], 404);
        assert_eq!(draft.data["fault"], "client");
    }

    #[test]
    fn the_request_line_has_the_seed_fields() {
        let line = RequestLine::new(&ctx(), "prod", 401, Decision::Deny);
        let v = serde_json::to_value(&line).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "client_ip",
                "latency_ms",
                "method",
                "path",
                "rack",
                "rbac_decision",
                "request_id",
                "status",
                "ts",
                "user_email"
            ]
        );
        assert_eq!(v["rack"], "prod");
        assert_eq!(v["user_email"], Value::Null);
    }
}
