//! Everything that could carry a secret out of a proxied request passes here
//! before it reaches an event, a log line or an error message (events.md §1:
//! no secret ever enters the chain).
//!
//! Where the rack API takes secrets (convox-api.md §4–6), and what we record:
//!
//! | where | recorded as |
//! |---|---|
//! | `env` field (`POST /apps/{app}/releases`, legacy env body) | its keys |
//! | `parameters` field (`PUT /apps/{app}`, `PUT /system`, `POST/PUT /resources`) — a url-encoded map whose values may be passwords | its keys |
//! | `build-args` field (`K=V,…`) | its keys |
//! | `Environment` and `Volumes` headers of `run` (url-encoded maps) | their keys |
//! | `value` (`PUT configs`), `password` (`POST /registries`), `key`/`private` (certificates), `src-creds-pass` (image import), legacy top-level parameter fields | `[REDACTED]` |
//! | `Private-Key` header (instance shell), `Authorization`, `Cookie`, `Session`, any header not on the allow-list | `[REDACTED]` |
//! | `Command` header / `command` field | the command with URL passwords, `NAME=value` of secret-looking names, `--password value` and known token shapes redacted ([`redact_command`]) |
//! | query and form fields | the value when the name is on the allow-list of known-harmless Convox options and not secret-looking; otherwise `[REDACTED]` |
//!
//! Values we do show still go through [`redact_value`], which removes URL
//! passwords, gateway tokens, JWTs, AWS access key ids, `Basic`/`Bearer`
//! credentials and private-key blocks. The reply of `POST /system/jwt/token`
//! (and every route with `reply_has_secrets`) must never be recorded; the
//! [`Scrubber`] removes known secrets (the rack token, the presented
//! credential) from any text, such as an upstream error message.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use http::HeaderMap;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Map, Value};

use super::routes::{parse_urlencoded, RouteMatch};

pub const REDACTED: &str = "[REDACTED]";

/// Longest value recorded as is; longer ones are cut (they are options, not data).
const MAX_VALUE_CHARS: usize = 256;

/// Parts of a name that mark it as secret (case-insensitive substrings).
const SECRET_NAME_PARTS: &[&str] = &[
    "secret",
    "token",
    "password",
    "passwd",
    "pass",
    "key",
    "auth",
    "cookie",
    "session",
    "credential",
    "cred",
    "private",
    "bearer",
    "jwt",
    "dsn",
    "signature",
    "salt",
    "otp",
];

/// Whole words (split on anything not a letter or digit) that mark a name as secret.
const SECRET_NAME_WORDS: &[&str] = &["pw", "pwd", "sig"];

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

/// Request headers that are Convox options (convox-api.md §4–5), shown as is.
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

/// Does this name (a field, header, query or env name) look like it holds a secret?
pub fn is_secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_NAME_PARTS.iter().any(|p| lower.contains(p))
        || lower
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| SECRET_NAME_WORDS.contains(&w))
}

/// A key worth recording: looks like a variable name. Anything else (a line
/// pasted without its name, say) could be a secret, and is left out.
fn plausible_key(key: &str) -> bool {
    let mut chars = key.chars();
    key.len() <= 256
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The environment as Convox reads it (`structs.Environment.Load`): one
/// `KEY=value` per line, key trimmed, lines without `=` ignored; later
/// duplicates win.
fn parse_env(env: &str) -> BTreeMap<&str, &str> {
    let mut vars = BTreeMap::new();
    for line in env.lines() {
        if let Some((key, value)) = line.split_once('=') {
            let key = key.trim();
            if plausible_key(key) {
                vars.insert(key, value);
            }
        }
    }
    vars
}

/// The keys of an env body (`K=V\n…`, the CLI's env form), in first-seen order.
pub fn env_keys(env: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut keys = Vec::new();
    for line in env.lines() {
        if let Some((key, _)) = line.split_once('=') {
            let key = key.trim();
            if plausible_key(key) && seen.insert(key) {
                keys.push(key.to_owned());
            }
        }
    }
    keys
}

/// Which keys an env change adds, removes and changes: keys only, never values.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct EnvChange {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

pub fn env_change(old: &str, new: &str) -> EnvChange {
    let old = parse_env(old);
    let new = parse_env(new);
    let mut change = EnvChange::default();
    for (key, value) in &new {
        match old.get(key) {
            None => change.added.push((*key).to_owned()),
            Some(before) if before != value => change.changed.push((*key).to_owned()),
            Some(_) => {}
        }
    }
    for key in old.keys() {
        if !new.contains_key(key) {
            change.removed.push((*key).to_owned());
        }
    }
    change
}

fn map_keys(encoded: &str) -> Vec<String> {
    let mut keys: Vec<String> = parse_urlencoded(encoded.as_bytes())
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| plausible_key(k))
        .collect();
    keys.dedup();
    keys
}

fn list_keys(list: &str) -> Vec<String> {
    list.split(',')
        .filter_map(|item| item.split_once('=').map(|(k, _)| k.trim()))
        .filter(|k| plausible_key(k))
        .map(str::to_owned)
        .collect()
}

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

/// A run/exec command fit for the record: URL passwords, `NAME=value` and
/// `--name value` / `--name=value` where the name looks secret, and known
/// token shapes are redacted. (Short flags like `-p secret` cannot be told
/// apart from harmless ones and are kept.)
pub fn redact_command(command: &str) -> String {
    let cleaned = redact_value(command);
    let mut out: Vec<String> = Vec::new();
    let mut redact_next = false;
    for token in cleaned.split(' ') {
        if redact_next && !token.is_empty() {
            out.push(REDACTED.to_owned());
            redact_next = false;
            continue;
        }
        if let Some((name, _)) = token.split_once('=') {
            if is_secret_name(name.trim_start_matches('-')) {
                out.push(format!("{name}={REDACTED}"));
                continue;
            }
        } else if token.starts_with("--") && is_secret_name(token.trim_start_matches('-')) {
            redact_next = true;
        }
        out.push(token.to_owned());
    }
    out.join(" ")
}

fn is_base64url(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// Remove secrets recognisable by their shape from any text: private-key
/// blocks (the whole value), URL user-info passwords, gateway tokens
/// (`rgw_sess_…`, `rgw_token_…`), JWTs, AWS access key ids, and the credential
/// after `Basic`/`Bearer`.
pub fn redact_value(value: &str) -> String {
    if value.contains("PRIVATE KEY") {
        return REDACTED.to_owned();
    }
    let value = redact_userinfo(value);
    // Runs of token characters (base64url and '.'), judged one by one.
    let mut out = String::with_capacity(value.len());
    let mut run = String::new();
    let mut previous_run = String::new();
    let flush = |run: &mut String, previous: &mut String, out: &mut String| {
        if run.is_empty() {
            return;
        }
        let after_scheme =
            previous.eq_ignore_ascii_case("basic") || previous.eq_ignore_ascii_case("bearer");
        out.push_str(&judge_run(run, after_scheme));
        *previous = std::mem::take(run);
    };
    for c in value.chars() {
        if is_base64url(c) || c == '.' {
            run.push(c);
        } else if (c == '+' || c == '/' || c == '=')
            && (previous_run.eq_ignore_ascii_case("basic")
                || previous_run.eq_ignore_ascii_case("bearer"))
            && !run.is_empty()
        {
            // Standard base64 after Basic/Bearer: keep it in the run.
            run.push(c);
        } else {
            flush(&mut run, &mut previous_run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut previous_run, &mut out);
    out
}

fn judge_run(run: &str, after_scheme: bool) -> String {
    if after_scheme {
        return REDACTED.to_owned();
    }
    for prefix in ["rgw_sess_", "rgw_token_"] {
        if let Some(at) = run.find(prefix) {
            return format!("{}{REDACTED}", &run[..at]);
        }
    }
    if run.starts_with("eyJ") && run.matches('.').count() >= 2 {
        return REDACTED.to_owned();
    }
    let aws = run.len() == 20
        && (run.starts_with("AKIA") || run.starts_with("ASIA"))
        && run
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if aws {
        return REDACTED.to_owned();
    }
    run.to_owned()
}

/// `scheme://user:password@host` → `scheme://user:[REDACTED]@host`;
/// `scheme://token@host` → `scheme://[REDACTED]@host`.
fn redact_userinfo(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>') || c.is_whitespace()
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(userinfo_end) => {
                let userinfo = &authority[..userinfo_end];
                match userinfo.split_once(':') {
                    Some((user, _)) => out.push_str(&format!("{user}:{REDACTED}")),
                    None => out.push_str(REDACTED),
                }
                out.push_str(&authority[userinfo_end..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Characters escaped in URL user-info (what the CLI does to a RACK_URL password).
const USERINFO: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Removes known secrets — the rack token, the credential a request presented —
/// from any text, in the forms they travel in (as is, percent-encoded,
/// base64, and inside a Basic header), then applies [`redact_value`].
#[derive(Clone, Default)]
pub struct Scrubber {
    needles: Vec<String>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scrubber({} needles)", self.needles.len())
    }
}

/// Shorter secrets are not scrubbed: replacing two or three characters
/// everywhere would destroy messages and hide nothing.
pub const MIN_SCRUBBED_LEN: usize = 4;

impl Scrubber {
    pub fn new() -> Scrubber {
        Scrubber::default()
    }

    /// Add a secret (and its percent-encoded and base64 forms).
    pub fn add(&mut self, secret: &str) -> &mut Scrubber {
        if secret.len() < MIN_SCRUBBED_LEN {
            return self;
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        self.push(secret.to_owned());
        self.push(utf8_percent_encode(secret, USERINFO).to_string());
        self.push(b64.encode(secret));
        self.push(b64url.encode(secret));
        self
    }

    /// Add Basic credentials: the password and the header's base64 of `user:password`.
    pub fn add_basic(&mut self, username: &str, password: &str) -> &mut Scrubber {
        self.add(password);
        let b64 = base64::engine::general_purpose::STANDARD;
        self.push(b64.encode(format!("{username}:{password}")));
        self.push(b64.encode(format!(
            "{username}:{}",
            utf8_percent_encode(password, USERINFO)
        )));
        self
    }

    /// A scrubber with these secrets added.
    pub fn with(secrets: &[&str]) -> Scrubber {
        let mut s = Scrubber::new();
        for secret in secrets {
            s.add(secret);
        }
        s
    }

    fn push(&mut self, needle: String) {
        if needle.len() >= MIN_SCRUBBED_LEN && !self.needles.contains(&needle) {
            self.needles.push(needle);
            // Longest first, so a secret's encodings are not half-replaced.
            self.needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        }
    }

    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = out.replace(needle.as_str(), REDACTED);
            }
        }
        redact_value(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::path::normalize;
    use crate::proxy::routes::{body_fields, match_route, request_form};
    use http::Method;
    use serde::Deserialize;

    #[test]
    fn secret_names_are_recognised() {
        for name in [
            "password",
            "DB_PASSWORD",
            "passwd",
            "src-creds-pass",
            "SECRET_KEY_BASE",
            "api-key",
            "API_KEY",
            "apikey",
            "x-api-key",
            "access_token",
            "Authorization",
            "Cookie",
            "Set-Cookie",
            "session",
            "Private-Key",
            "private",
            "credentials",
            "bearer",
            "jwt",
            "SENTRY_DSN",
            "X-Amz-Signature",
            "key",
            "pw",
            "db-pwd",
            "otp_code",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in [
            "limit",
            "name",
            "service",
            "version",
            "description",
            "url",
            "count",
        ] {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn env_keys_follow_convox_parsing() {
        assert_eq!(
            env_keys("A=1\nB=two=2\r\n  C =3\n\n# comment\nnot a var\n=orphan\nA=again\nbad key=1"),
            ["A", "B", "C"]
        );
        assert!(env_keys("").is_empty());
        // A pasted secret without a name is not a key.
        assert!(env_keys("sk_live_abc def").is_empty());
    }

    #[test]
    fn env_change_names_keys_only() {
        let change = env_change("A=1\nB=2\nC=3", "A=1\nB=20\nD=4");
        assert_eq!(
            change,
            EnvChange {
                added: vec!["D".into()],
                removed: vec!["C".into()],
                changed: vec!["B".into()],
            }
        );
        let text = serde_json::to_string(&change).unwrap();
        assert!(!text.contains("20") && !text.contains('4'), "{text}");
        assert_eq!(env_change("A=1", "A=1"), EnvChange::default());
    }

    #[test]
    fn values_lose_their_secret_parts() {
        assert_eq!(
            redact_value("postgres://app:s3cret@db:5432/app"),
            "postgres://app:[REDACTED]@db:5432/app"
        );
        assert_eq!(
            redact_value("https://tok123@gw.example/x"),
            "https://[REDACTED]@gw.example/x"
        );
        assert_eq!(
            redact_value("object://myapp/tmp/a.tgz"),
            "object://myapp/tmp/a.tgz"
        );
        assert_eq!(
            redact_value("use rgw_token_AbC-dEf_123 now"),
            "use [REDACTED] now"
        );
        assert_eq!(
            redact_value("t=eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjoieCJ9.c2lnbmF0dXJl"),
            "t=[REDACTED]"
        );
        assert_eq!(redact_value("AKIAABCDEFGHIJKLMNOP x"), "[REDACTED] x");
        assert_eq!(
            redact_value("Authorization: Basic Y29udm94OnMzY3IzdA=="),
            "Authorization: Basic [REDACTED]"
        );
        assert_eq!(redact_value("bearer abc.def"), "bearer [REDACTED]");
        assert_eq!(
            redact_value("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----"),
            REDACTED
        );
        assert_eq!(redact_value("web-1 3.19.0 ok"), "web-1 3.19.0 ok");
    }

    #[test]
    fn commands_keep_their_shape() {
        assert_eq!(redact_command("sleep 3600"), "sleep 3600");
        assert_eq!(
            redact_command("rake db:migrate VERSION=0"),
            "rake db:migrate VERSION=0"
        );
        assert_eq!(
            redact_command("psql postgres://admin:hunter2@db/app -c 'select 1'"),
            "psql postgres://admin:[REDACTED]@db/app -c 'select 1'"
        );
        assert_eq!(
            redact_command("API_KEY=abc123 ./run --password hunter2 --token=xyz -v"),
            "API_KEY=[REDACTED] ./run --password [REDACTED] --token=[REDACTED] -v"
        );
    }

    #[test]
    fn queries_and_headers_for_log_lines() {
        assert_eq!(
            redact_query("limit=1&access_token=abc&env=A%3D1&service=web&zzz=1"),
            "limit=1&access_token=[REDACTED]&env=[REDACTED]&service=web&zzz=[REDACTED]"
        );
        assert_eq!(redact_query(""), "");
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            "Basic Y29udm94OnMzY3IzdA==".parse().unwrap(),
        );
        h.insert("cookie", "session_token=abc".parse().unwrap());
        h.insert("private-key", "LS0tLS1CRUdJTg==".parse().unwrap());
        h.insert("user-agent", "convox.go/dev".parse().unwrap());
        h.insert("environment", "A=1&B_TOKEN=zzz".parse().unwrap());
        h.insert("command", "sleep 3600".parse().unwrap());
        h.insert("x-custom", "whatever".parse().unwrap());
        let v = redact_headers(&h);
        assert_eq!(v["authorization"], REDACTED);
        assert_eq!(v["cookie"], REDACTED);
        assert_eq!(v["private-key"], REDACTED);
        assert_eq!(v["x-custom"], REDACTED);
        assert_eq!(v["user-agent"], "convox.go/dev");
        assert_eq!(v["command"], "sleep 3600");
        assert_eq!(v["environment"], json!({"keys": ["A", "B_TOKEN"]}));
    }

    #[test]
    fn request_params_record_query_form_and_options_once() {
        let m = match_route(
            &Method::POST,
            &normalize("/apps/myapp/releases").unwrap(),
            false,
        )
        .unwrap();
        let body = vec![
            ("env".to_owned(), "A=1\nB=2".to_owned()),
            ("description".to_owned(), "env set".to_owned()),
        ];
        let form = request_form(Some("parent-release=R1"), Some(&body));
        let mut h = HeaderMap::new();
        h.insert("authorization", "Basic eA==".parse().unwrap());
        h.insert("follow", "false".parse().unwrap());
        let v = request_params(&m, Some("parent-release=R1"), &h, Some(&form));
        assert_eq!(
            v,
            json!({
                "query": {"parent-release": "R1"},
                "form": {"env": {"keys": ["A", "B"]}, "description": "env set"},
                "headers": {"Follow": "false"},
            })
        );
        // Repeated fields become arrays; nothing at all gives an empty object.
        let form = vec![
            ("force".to_owned(), "true".to_owned()),
            ("force".to_owned(), "false".to_owned()),
        ];
        let v = request_params(&m, None, &HeaderMap::new(), Some(&form));
        assert_eq!(v, json!({"form": {"force": ["true", "false"]}}));
        assert_eq!(request_params(&m, None, &HeaderMap::new(), None), json!({}));
    }

    #[test]
    fn the_scrubber_removes_known_secrets_in_their_encodings() {
        let token = "rack-T0ken/with+odd=chars";
        let mut s = Scrubber::new();
        s.add_basic("convox", token).add("ab");
        let b64 = base64::engine::general_purpose::STANDARD;
        let header = format!("Basic {}", b64.encode(format!("convox:{token}")));
        let pct = utf8_percent_encode(token, USERINFO).to_string();
        for text in [
            format!("dial upstream: 401 for {token}"),
            format!("auth header was {header}"),
            format!("url https://convox:{pct}@rack.internal"),
            format!("b64 {}", b64.encode(token)),
        ] {
            let out = s.scrub(&text);
            assert!(!out.contains(token), "{out}");
            assert!(!out.contains(&pct), "{out}");
            assert!(!out.contains(&b64.encode(token)), "{out}");
            assert!(out.contains(REDACTED), "{out}");
        }
        // Too-short secrets are ignored rather than shredding every message.
        assert_eq!(s.scrub("about"), "about");
        assert!(!format!("{s:?}").contains(token));
        assert_eq!(
            Scrubber::with(&["abcdef"]).scrub("x abcdef y"),
            "x [REDACTED] y"
        );
    }

    #[derive(Deserialize)]
    struct CorpusEntry {
        name: String,
        method: String,
        path: String,
        query: Option<String>,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        form: Option<Vec<(String, String)>>,
        body: Option<String>,
        secrets: Vec<String>,
        #[serde(default)]
        keys: Vec<String>,
    }

    #[test]
    fn the_redaction_corpus_leaks_nothing() {
        let corpus: Vec<CorpusEntry> =
            serde_json::from_str(include_str!("../../tests/data/redaction_corpus.json"))
                .expect("corpus parses");
        assert!(corpus.len() >= 20);
        let mut all_secrets = BTreeSet::new();
        for entry in &corpus {
            let method = Method::from_bytes(entry.method.as_bytes()).unwrap();
            let path = normalize(&entry.path).unwrap();
            let mut headers = HeaderMap::new();
            for (k, v) in &entry.headers {
                headers.append(
                    http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    http::HeaderValue::from_str(v).unwrap(),
                );
            }
            let websocket = crate::proxy::routes::is_websocket_upgrade(&headers);
            let m = match_route(&method, &path, websocket)
                .unwrap_or_else(|e| panic!("{}: {e}", entry.name));
            let content_type = entry
                .headers
                .iter()
                .find_map(|(k, v)| k.eq_ignore_ascii_case("content-type").then_some(v.as_str()));
            let fields = match (&entry.form, &entry.body) {
                (Some(form), None) => form.clone(),
                (None, Some(body)) => body_fields(m.route, content_type, body.as_bytes()).unwrap(),
                (None, None) => Vec::new(),
                _ => panic!("{}: form or body, not both", entry.name),
            };
            let form = request_form(entry.query.as_deref(), Some(&fields));
            let mut out = serde_json::to_string(&request_params(
                &m,
                entry.query.as_deref(),
                &headers,
                Some(&form),
            ))
            .unwrap();
            out.push_str(&redact_headers(&headers).to_string());
            if let Some(q) = &entry.query {
                out.push_str(&redact_query(q));
            }
            if let Some(c) = crate::proxy::routes::command_of(&m, &headers, Some(&form)) {
                out.push_str(&redact_command(&c));
            }
            assert!(!entry.secrets.is_empty(), "{}: no secrets", entry.name);
            for secret in &entry.secrets {
                assert!(
                    secret.len() >= 6,
                    "{}: secret too short to test",
                    entry.name
                );
                assert!(
                    all_secrets.insert(secret.clone()),
                    "{}: secrets must be distinct across the corpus: {secret}",
                    entry.name
                );
                assert!(
                    !out.contains(secret.as_str()),
                    "{}: secret {secret:?} leaked into {out}",
                    entry.name
                );
            }
            for key in &entry.keys {
                assert!(
                    out.contains(&format!("\"{key}\"")),
                    "{}: key {key} missing from {out}",
                    entry.name
                );
            }
        }
    }
}
