//! What of a proxied request is recorded (`proxy.request`) or logged: an
//! allow-list of harmless Convox options, every other value `[REDACTED]`.

use std::collections::BTreeMap;

use http::HeaderMap;
use serde_json::{json, Map, Value};

use super::keys::{env_keys, list_keys, map_keys};
use super::{is_secret_name, redact_command, redact_value, REDACTED};
use crate::routes::{parse_urlencoded, RouteMatch};

/// Longest value recorded as is; longer ones are cut (they are options, not data).
const MAX_VALUE_CHARS: usize = 256;

/// Form and query fields whose values are harmless Convox options, shown as is
/// (after [`redact_value`]). Anything else is `[REDACTED]`.
const SAFE_FIELDS: &[&str] = &[
    "ack_by",
    "action",
    "active",
    "age",
    "alert-threshold-percent",
    "all",
    "app",
    "at-cap-action",
    "build",
    "cache",
    "checks",
    "count",
    "cpu",
    "description",
    "development",
    "domains",
    "duration",
    "durationinhour",
    "end",
    "ended",
    "entrypoint",
    "error",
    "events",
    "external",
    "file",
    "files",
    "follow",
    "force",
    "force_clear_cooldown",
    "generated",
    "generation",
    "git-sha",
    "gpu",
    "gpu-vendor",
    "id",
    "idle",
    "image",
    "issuer",
    "kind",
    "limit",
    "lines",
    "lock",
    "max",
    "memory",
    "metrics",
    "min",
    "monthly-cap-usd",
    "name",
    "no-cache",
    "parent-release",
    "period",
    "prefix",
    "previous",
    "pricing-adjustment",
    "release",
    "reset_period",
    "role",
    "server",
    "service",
    "services",
    "since",
    "start",
    "started",
    "status",
    "tail",
    "tar-extra",
    "threshold",
    "timeout",
    "type",
    "url",
    "username",
    "version",
    "wildcard-domain",
];

/// Fields that hold a map or list of `K=V`: recorded as their keys.
const ENV_FIELD: &str = "env";
const MAP_FIELDS: &[&str] = &["parameters"];
const LIST_FIELDS: &[&str] = &["build-args"];

/// Request headers that are Convox options, shown as is.
const OPTION_HEADERS: &[&str] = &[
    "command",
    "cpu",
    "cpu-limit",
    "disable-stdin",
    "entrypoint",
    "filter",
    "follow",
    "gpu",
    "gpu-vendor",
    "height",
    "image",
    "maxlogrequests",
    "memory",
    "memory-limit",
    "node-labels",
    "prefix",
    "previous",
    "privileged",
    "public",
    "release",
    "since",
    "system-critical",
    "tail",
    "terminal",
    "timeout",
    "tty",
    "use-service-volume",
    "width",
    "x-host",
    "x-port",
];

/// Option headers holding url-encoded maps: recorded as their keys.
const MAP_HEADERS: &[&str] = &["environment", "volumes"];

/// Option headers that are secrets.
const SECRET_OPTION_HEADERS: &[&str] = &["private-key"];

/// Ordinary headers safe to show in logs (besides the option headers).
const SAFE_HEADERS: &[&str] = &[
    "accept",
    "accept-encoding",
    "accept-language",
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "convox-actor",
    "convox-tid",
    "expect",
    "host",
    "origin",
    "request-id",
    "sec-websocket-extensions",
    "sec-websocket-version",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "version",
    "x-convox-actor",
    "x-convox-tid",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "x-request-id",
];

fn clip(value: String) -> String {
    if value.chars().count() <= MAX_VALUE_CHARS {
        value
    } else {
        let mut cut: String = value.chars().take(MAX_VALUE_CHARS).collect();
        cut.push('…');
        cut
    }
}

/// How one form or query field is recorded.
fn field_value(name: &str, value: &str) -> Value {
    let lower = name.to_ascii_lowercase();
    if lower == ENV_FIELD {
        return json!({ "keys": env_keys(value) });
    }
    if MAP_FIELDS.contains(&lower.as_str()) {
        return json!({ "keys": map_keys(value) });
    }
    if LIST_FIELDS.contains(&lower.as_str()) {
        return json!({ "keys": list_keys(value) });
    }
    if lower == "command" {
        return json!(clip(redact_command(value)));
    }
    if is_secret_name(&lower) || !SAFE_FIELDS.contains(&lower.as_str()) {
        return json!(REDACTED);
    }
    json!(clip(redact_value(value)))
}

/// How one request header is recorded; `None` when it is not recorded at all
/// (`options_only` and not a Convox option).
fn header_value(name: &str, value: &[u8], options_only: bool) -> Option<Value> {
    let text = String::from_utf8_lossy(value);
    if MAP_HEADERS.contains(&name) {
        return Some(json!({ "keys": map_keys(&text) }));
    }
    if SECRET_OPTION_HEADERS.contains(&name) {
        return Some(json!(REDACTED));
    }
    if name == "command" {
        return Some(json!(clip(redact_command(&text))));
    }
    if OPTION_HEADERS.contains(&name) {
        return Some(json!(clip(redact_value(&text))));
    }
    if options_only {
        return None;
    }
    if SAFE_HEADERS.contains(&name) {
        return Some(json!(clip(redact_value(&text))));
    }
    Some(json!(REDACTED))
}

/// Group values by name: one value as is, repeated names as an array.
fn group(entries: impl Iterator<Item = (String, Value)>) -> Map<String, Value> {
    let mut grouped: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (name, value) in entries {
        grouped.entry(name).or_default().push(value);
    }
    grouped
        .into_iter()
        .map(|(name, mut values)| {
            let value = if values.len() == 1 {
                values.remove(0)
            } else {
                Value::Array(values)
            };
            (name, value)
        })
        .collect()
}

fn fields_object(fields: &[(String, String)]) -> Map<String, Value> {
    group(
        fields
            .iter()
            .map(|(name, value)| (name.clone(), field_value(name, value))),
    )
}

/// The parameters recorded in `proxy.request`: query and form fields and
/// Convox option headers, secret values replaced by `[REDACTED]`, env and
/// parameter maps reduced to their keys. `form` is the request's form as for
/// `policy::decide` (`routes::request_form`: body fields, then the query's);
/// the query's share of it is recorded under `query` only.
pub fn request_params(
    _m: &RouteMatch,
    query: Option<&str>,
    headers: &HeaderMap,
    form: Option<&[(String, String)]>,
) -> Value {
    let query_pairs = query
        .map(|q| parse_urlencoded(q.as_bytes()))
        .unwrap_or_default();
    let form = form.unwrap_or_default();
    // request_form appends the query's fields: record those once, as query.
    let body = if form.ends_with(&query_pairs) {
        &form[..form.len() - query_pairs.len()]
    } else {
        form
    };

    let mut params = Map::new();
    let q = fields_object(&query_pairs);
    if !q.is_empty() {
        params.insert("query".into(), Value::Object(q));
    }
    let f = fields_object(body);
    if !f.is_empty() {
        params.insert("form".into(), Value::Object(f));
    }
    let h = group(headers.iter().filter_map(|(name, value)| {
        header_value(name.as_str(), value.as_bytes(), true)
            .map(|v| (canonical_header(name.as_str()), v))
    }));
    if !h.is_empty() {
        params.insert("headers".into(), Value::Object(h));
    }
    Value::Object(params)
}

/// `x-convox-actor` → `X-Convox-Actor`, as the rack (Go) spells header names.
fn canonical_header(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// A query string fit for a log line: each field's value kept only when
/// [`request_params`] would show it, otherwise `[REDACTED]`.
pub fn redact_query(query: &str) -> String {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let decoded = parse_urlencoded(pair.as_bytes());
            let Some((name, value)) = decoded.first() else {
                return pair.to_owned();
            };
            match field_value(name, value) {
                Value::String(shown) if shown == *value => format!("{raw_name}={raw_value}"),
                _ => format!("{raw_name}={REDACTED}"),
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Request headers fit for a log line: an allow-list shown (after
/// [`redact_value`]); `Environment`/`Volumes` as keys; everything else —
/// `Authorization`, `Cookie`, `Set-Cookie`, `Private-Key`, `Session`, unknown
/// headers — as `[REDACTED]`.
pub fn redact_headers(headers: &HeaderMap) -> Value {
    Value::Object(group(headers.iter().filter_map(|(name, value)| {
        header_value(name.as_str(), value.as_bytes(), false).map(|v| (name.as_str().to_owned(), v))
    })))
}
