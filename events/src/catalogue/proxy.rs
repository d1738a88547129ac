//! The rack proxy's records: `proxy.request`, committed before anything is
//! forwarded (or as the whole record of a refusal), and `proxy.response`,
//! after the rack answered (for streams and websockets, at their end).
//!
//! Everything that came from the request has been through the redactor
//! before it gets here. Optional fields are left out when they do not apply.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The proxy's verdict on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Allow,
    Deny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }
}

/// `proxy.request`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProxyRequest {
    /// The gateway's id of the request (also sent upstream and in the reply).
    pub request_id: String,
    pub rack: String,
    pub method: String,
    /// The normalised path, or what was asked for when it could not be normalised; credential shapes redacted.
    pub path: String,
    /// The matched route; `null` when none matched.
    pub route: Option<String>,
    /// The permission the route needs; `null` before a route matched.
    pub permission: Option<String>,
    pub decision: Decision,
    pub reason: String,
    pub websocket: bool,
    /// Redacted query, form fields and Convox option headers (`query`, `form`,
    /// `headers`); `null` when the request was refused before they were read.
    pub params: Value,
    /// An env change: the new env's keys (never values); what it adds,
    /// removes and changes is on the `proxy.response`, because the rack's
    /// current env is read only once this event is committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_change: Option<EnvChange>,
    /// A run or exec command as the rack will read it, redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The client's own `X-Request-Id`, redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_request_id: Option<String>,
    /// Refusals: the status the gateway answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Refusals: why, as a stable code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Refusals: who is at fault, `client`, `upstream` or `gateway`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// A refused exec session told in-band: `websocket_error_frame`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered: Option<String>,
}

/// What an env change does, by key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EnvChange {
    Keys {
        added: Vec<String>,
        removed: Vec<String>,
        changed: Vec<String>,
    },
    /// The rack's current env could not be read: the new env's keys only.
    Unreadable { error: String, keys: Vec<String> },
    /// On `proxy.request`: the keys of the env asked for (the change itself
    /// is on `proxy.response`).
    Requested { keys: Vec<String> },
}

/// `proxy.response`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyResponse {
    pub request_id: String,
    /// The status the client got (101 for websockets).
    pub status: u16,
    /// Time to the answer's head, in µs.
    pub latency_us: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// `http`, `stream` (a body relayed as it came) or `websocket`.
    pub kind: String,
    /// The seq of the `proxy.request` this answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_seq: Option<u64>,
    /// Streams and websockets: from the start of the request to the end of the stream, in µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_us: Option<u64>,
    /// Streams and websockets: `client`, `rack`, `gateway_shutdown`, `error`,
    /// `abandoned` (the request was cancelled half-way), `reauthorization`
    /// (the caller lost the right to it: closed with 1008) or `idle_timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_by: Option<String>,
    /// When the gateway closed a websocket itself: why (e.g. `session revoked`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames_in: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames_out: Option<u64>,
    /// The rack's own `Request-Id`, to find the exchange in the rack's logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack_request_id: Option<String>,
    /// The rack failed: it never got the request, or its reply broke off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_error: Option<UpstreamError>,
    /// An env change: the keys it added, removed and changed, read from the
    /// rack's env after the `proxy.request` was committed (or why it could not be).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_change: Option<EnvChange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamError {
    /// Stable: `rack_unreachable`, `rack_reply_broken`, `websocket_error`, ...
    pub code: String,
    /// What went wrong, with the rack token and the presented credential scrubbed.
    pub detail: String,
}
