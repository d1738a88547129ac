//! The rack proxy's own limits (`/api/v1/rack-proxy`): failed
//! authentications, form size, connecting to the rack, the request log.

use std::time::Duration;

use super::{bad, Reader, SettingsError, View};

#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// Failed authentications one client address may make per window before
    /// every request from it gets 429 until the window ends (`PROXY_AUTH_FAILURE_LIMIT`, 10).
    pub auth_failure_limit: u32,
    /// The rate-limit window (`PROXY_AUTH_FAILURE_WINDOW_SECONDS`, 60); one
    /// aggregated `rate_limit.exceeded` event per address and window.
    pub auth_failure_window: Duration,
    /// Largest form body the proxy reads to decide on it (`PROXY_MAX_FORM_BYTES`, 1 MiB); larger → 413.
    pub max_form_bytes: usize,
    /// Connecting to the rack gives up after this long (`RACK_CONNECT_TIMEOUT_MS`, 10000) → 502.
    pub rack_connect_timeout: Duration,
    /// Write the per-request JSON line on stdout (`REQUEST_LOG`: `stdout`, the default, or `off`).
    pub request_log: bool,
    /// The rack's response head must come within this long for quick calls
    /// (`RACK_RESPONSE_TIMEOUT_SECONDS`, 60) → 504, recorded.
    pub rack_response_timeout: Duration,
    /// ... and within this long for uploads, downloads, builds and proxies
    /// (`RACK_SLOW_RESPONSE_TIMEOUT_SECONDS`, 900).
    pub rack_slow_response_timeout: Duration,
    /// Open websockets (exec, logs, attach) are re-authorised this often: a
    /// revoked session or token, a disabled user or a lowered role closes
    /// them with 1008 (`STREAM_REAUTHORIZE_SECONDS`, 5).
    pub stream_reauthorize_every: Duration,
    /// A websocket with no frame either way for this long is closed
    /// (`WEBSOCKET_IDLE_TIMEOUT_SECONDS`, 900).
    pub websocket_idle_timeout: Duration,
    /// A client body that stops sending for this long is cut off, and a
    /// form the proxy reads must arrive whole within it
    /// (`CLIENT_BODY_TIMEOUT_SECONDS`, 30) → 408.
    pub client_body_timeout: Duration,
}

pub(super) fn read(r: &Reader) -> Result<ProxySettings, SettingsError> {
    let proxy = ProxySettings {
        auth_failure_limit: r.parse("PROXY_AUTH_FAILURE_LIMIT", 10u32)?,
        auth_failure_window: Duration::from_secs(
            r.parse("PROXY_AUTH_FAILURE_WINDOW_SECONDS", 60u64)?,
        ),
        max_form_bytes: r.parse("PROXY_MAX_FORM_BYTES", 1usize << 20)?,
        rack_connect_timeout: Duration::from_millis(r.parse("RACK_CONNECT_TIMEOUT_MS", 10_000u64)?),
        rack_response_timeout: Duration::from_secs(
            r.parse("RACK_RESPONSE_TIMEOUT_SECONDS", 60u64)?,
        ),
        rack_slow_response_timeout: Duration::from_secs(
            r.parse("RACK_SLOW_RESPONSE_TIMEOUT_SECONDS", 900u64)?,
        ),
        stream_reauthorize_every: Duration::from_secs(r.parse("STREAM_REAUTHORIZE_SECONDS", 5u64)?),
        websocket_idle_timeout: Duration::from_secs(
            r.parse("WEBSOCKET_IDLE_TIMEOUT_SECONDS", 900u64)?,
        ),
        client_body_timeout: Duration::from_secs(r.parse("CLIENT_BODY_TIMEOUT_SECONDS", 30u64)?),
        request_log: match r
            .string("REQUEST_LOG", "stdout")
            .to_ascii_lowercase()
            .as_str()
        {
            "stdout" => true,
            "off" => false,
            other => {
                return Err(bad(
                    "REQUEST_LOG",
                    format!("{other:?} is not one of: stdout, off"),
                ))
            }
        },
    };
    if proxy.auth_failure_window.is_zero() {
        return Err(bad("PROXY_AUTH_FAILURE_WINDOW_SECONDS", "must be positive"));
    }
    if proxy.rack_connect_timeout.is_zero() {
        return Err(bad("RACK_CONNECT_TIMEOUT_MS", "must be positive"));
    }
    for (name, value) in [
        ("RACK_RESPONSE_TIMEOUT_SECONDS", proxy.rack_response_timeout),
        (
            "RACK_SLOW_RESPONSE_TIMEOUT_SECONDS",
            proxy.rack_slow_response_timeout,
        ),
        ("STREAM_REAUTHORIZE_SECONDS", proxy.stream_reauthorize_every),
        (
            "WEBSOCKET_IDLE_TIMEOUT_SECONDS",
            proxy.websocket_idle_timeout,
        ),
    ] {
        if value.is_zero() {
            return Err(bad(name, "must be positive"));
        }
    }
    Ok(proxy)
}

pub(super) fn describe(s: &ProxySettings, view: &mut View) {
    view.show("PROXY_AUTH_FAILURE_LIMIT", s.auth_failure_limit);
    view.show(
        "PROXY_AUTH_FAILURE_WINDOW_SECONDS",
        s.auth_failure_window.as_secs(),
    );
    view.show("PROXY_MAX_FORM_BYTES", s.max_form_bytes);
    view.show(
        "RACK_CONNECT_TIMEOUT_MS",
        s.rack_connect_timeout.as_millis() as u64,
    );
    view.show("REQUEST_LOG", if s.request_log { "stdout" } else { "off" });
    view.show(
        "RACK_RESPONSE_TIMEOUT_SECONDS",
        s.rack_response_timeout.as_secs(),
    );
    view.show(
        "RACK_SLOW_RESPONSE_TIMEOUT_SECONDS",
        s.rack_slow_response_timeout.as_secs(),
    );
    view.show(
        "STREAM_REAUTHORIZE_SECONDS",
        s.stream_reauthorize_every.as_secs(),
    );
    view.show(
        "WEBSOCKET_IDLE_TIMEOUT_SECONDS",
        s.websocket_idle_timeout.as_secs(),
    );
    view.show(
        "CLIENT_BODY_TIMEOUT_SECONDS",
        s.client_body_timeout.as_secs(),
    );
}
