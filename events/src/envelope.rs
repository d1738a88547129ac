//! The v1 event envelope (docs/events.md §2) and its canonical bytes (§3).
//!
//! Two directions, two levels of trust:
//! - [`Draft`] → [`Event`]: the appender fills in chain, seq, id, ts and prev,
//!   then [`Event::seal`] computes the hash. Drafts are validated (integers
//!   only, object payload) so nothing unverifiable is ever written.
//! - bytes → [`Event`]: [`Event::from_canonical`] and [`Event::from_line`] parse
//!   untrusted input strictly (exact key sets, exact types, canonical form),
//!   because verify-chain must never accept a row it cannot vouch for.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

mod canonical;

/// Format version written into every event.
pub const FORMAT_VERSION: u64 = 1;

/// `prev` of the first event: 64 zeros.
pub const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Largest integer an event may hold: beyond 2^53 − 1 RFC 8785 (which
/// serialises numbers as IEEE doubles) would silently change the value.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    User,
    ApiToken,
    System,
    Anonymous,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::ApiToken => "api_token",
            ActorKind::System => "system",
            ActorKind::Anonymous => "anonymous",
        }
    }
}

/// Who caused the event. Every key is always present; unknown values are null.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: Option<String>,
    pub email: Option<String>,
    pub role: Option<String>,
}

impl Actor {
    /// An operator command or the gateway itself; `id` names the OS user or component.
    pub fn system(id: impl Into<String>) -> Self {
        Actor {
            kind: ActorKind::System,
            id: Some(id.into()),
            email: None,
            role: None,
        }
    }

    pub fn anonymous() -> Self {
        Actor {
            kind: ActorKind::Anonymous,
            id: None,
            email: None,
            role: None,
        }
    }
}

/// Where the event came from. Every key is always present; null where not applicable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub instance: Option<String>,
}

/// What a caller hands to the appender: everything but the chain position.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub event_type: String,
    pub actor: Actor,
    pub source: Source,
    pub data: Value,
}

impl Draft {
    pub fn new(event_type: impl Into<String>, actor: Actor, data: Value) -> Self {
        Draft {
            event_type: event_type.into(),
            actor,
            source: Source::default(),
            data,
        }
    }

    pub fn with_source(mut self, source: Source) -> Self {
        self.source = source;
        self
    }

    /// Refuse what could not be hashed unambiguously or verified later.
    pub fn validate(&self) -> Result<(), EnvelopeError> {
        if !is_valid_type(&self.event_type) {
            return Err(EnvelopeError::Invalid(format!(
                "event type {:?} is not a dotted lowercase name",
                self.event_type
            )));
        }
        if !self.data.is_object() {
            return Err(EnvelopeError::Invalid("data must be a JSON object".into()));
        }
        check_integers_only(&self.data, "data")
    }
}

/// One sealed event: the envelope plus its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub v: u64,
    pub chain: String,
    pub seq: u64,
    pub id: String,
    pub ts: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub actor: Actor,
    pub source: Source,
    pub data: Value,
    pub prev: String,
    pub hash: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("invalid envelope: {0}")]
    Invalid(String),
    #[error("bytes are not in canonical (RFC 8785) form")]
    NotCanonical,
}

impl Event {
    /// Place a validated draft at `seq` after `prev` and compute its hash.
    pub fn seal(
        draft: Draft,
        chain: &str,
        seq: u64,
        prev: &str,
        id: Uuid,
        ts: DateTime<Utc>,
    ) -> Result<Event, EnvelopeError> {
        draft.validate()?;
        if seq == 0 || seq > MAX_SAFE_INTEGER {
            return Err(EnvelopeError::Invalid(format!("seq {seq} out of range")));
        }
        let mut event = Event {
            v: FORMAT_VERSION,
            chain: chain.to_owned(),
            seq,
            id: id.to_string(),
            ts: format_ts(ts),
            event_type: draft.event_type,
            actor: draft.actor,
            source: draft.source,
            data: draft.data,
            prev: prev.to_owned(),
            hash: String::new(),
        };
        event.hash = hash_hex(&event.canonical_bytes());
        Ok(event)
    }

    /// `canonical(e)`: RFC 8785 bytes of the envelope without `hash` — what is hashed and stored.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        canonical::write_unsealed(&mut out, self);
        out
    }

    /// One archive/export line: the full envelope, `hash` included, in canonical form (no newline).
    pub fn to_line(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(600);
        let written = canonical::write_unsealed(&mut out, self);
        let member = canonical::hash_member(&self.hash);
        out.splice(written.hash_at..written.hash_at, member);
        out
    }

    /// hex(SHA-256(canonical bytes)) recomputed now; compare with `self.hash`.
    pub fn computed_hash(&self) -> String {
        hash_hex(&self.canonical_bytes())
    }

    /// Parse the bytes stored in the database (envelope without `hash`) and
    /// attach the stored hash, *without* checking it: checking is the verifier's job.
    pub fn from_canonical(bytes: &[u8], stored_hash: &str) -> Result<Event, EnvelopeError> {
        let stored: Stored = parse_typed(bytes)?;
        let event = Event {
            v: stored.v,
            chain: stored.chain,
            seq: stored.seq,
            id: stored.id,
            ts: stored.ts,
            event_type: stored.event_type,
            actor: stored.actor,
            source: stored.source,
            data: stored.data,
            prev: stored.prev,
            hash: stored_hash.to_owned(),
        };
        check_fields(&event, false)?;
        if event.canonical_bytes() != bytes {
            return Err(EnvelopeError::NotCanonical);
        }
        Ok(event)
    }

    /// Parse one archive line (full envelope with `hash`), strictly.
    pub fn from_line(line: &[u8]) -> Result<Event, EnvelopeError> {
        Self::parse_line(line).map(|(event, _)| event)
    }

    /// [`from_line`](Event::from_line), also returning the event's canonical
    /// bytes (the line without its `hash` member): what the verifier hashes,
    /// cut from the one serialisation that proved the line canonical.
    pub fn parse_line(line: &[u8]) -> Result<(Event, Vec<u8>), EnvelopeError> {
        let event: Event = parse_typed(line)?;
        check_fields(&event, true)?;
        let mut canonical = Vec::with_capacity(line.len());
        let written = canonical::write_unsealed(&mut canonical, &event);
        let member = canonical::hash_member(&event.hash);
        let (before, after) = canonical.split_at(written.hash_at);
        let is_canonical = line.len() == canonical.len() + member.len()
            && line.starts_with(before)
            && line[before.len()..].starts_with(&member)
            && line.ends_with(after);
        if !is_canonical {
            return Err(EnvelopeError::NotCanonical);
        }
        Ok((event, canonical))
    }
}

/// hex(SHA-256(bytes)), lowercase.
pub fn hash_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// RFC 3339 UTC with exactly 6 fractional digits and `Z`.
pub fn format_ts(ts: DateTime<Utc>) -> String {
    ts.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parse an envelope timestamp, accepting only the exact form [`format_ts`] writes.
pub fn parse_ts(ts: &str) -> Result<DateTime<Utc>, EnvelopeError> {
    let parsed = DateTime::parse_from_rfc3339(ts)
        .map_err(|e| EnvelopeError::Invalid(format!("ts {ts:?}: {e}")))?
        .with_timezone(&Utc);
    if format_ts(parsed) != ts {
        return Err(EnvelopeError::Invalid(format!(
            "ts {ts:?} is not RFC 3339 UTC with 6 fractional digits and Z"
        )));
    }
    Ok(parsed)
}

fn is_valid_type(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && t.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

/// 64 lowercase hex characters: the form of every hash in the chain.
pub(crate) fn is_lower_hex_64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn check_integers_only(value: &Value, path: &str) -> Result<(), EnvelopeError> {
    match value {
        Value::Number(n) => {
            let fits = n.as_u64().is_some_and(|u| u <= MAX_SAFE_INTEGER)
                || n.as_i64()
                    .is_some_and(|i| i.unsigned_abs() <= MAX_SAFE_INTEGER);
            if fits {
                Ok(())
            } else {
                Err(EnvelopeError::Invalid(format!(
                    "{path}: {n} is not an integer within ±(2^53−1); events hold integers only"
                )))
            }
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| check_integers_only(item, &format!("{path}[{i}]"))),
        Value::Object(map) => map
            .iter()
            .try_for_each(|(k, item)| check_integers_only(item, &format!("{path}.{k}"))),
        _ => Ok(()),
    }
}

/// The stored form: the envelope without `hash`, every field required and
/// no other allowed (an absent nullable field fails the canonical comparison
/// that follows, since the canonical form always writes it).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    v: u64,
    chain: String,
    seq: u64,
    id: String,
    ts: String,
    #[serde(rename = "type")]
    event_type: String,
    actor: Actor,
    source: Source,
    data: Value,
    prev: String,
}

/// Untrusted bytes into the envelope's exact types; the caller then checks
/// the values ([`check_fields`]) and that the bytes are their canonical form,
/// which together refuse every byte the writer would not have written.
fn parse_typed<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, EnvelopeError> {
    serde_json::from_slice::<T>(bytes).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            EnvelopeError::NotJson(e.to_string())
        } else {
            EnvelopeError::Invalid(e.to_string())
        }
    })
}

/// What the types alone do not say: versions, ranges and formats.
fn check_fields(event: &Event, with_hash: bool) -> Result<(), EnvelopeError> {
    let invalid = |m: String| Err(EnvelopeError::Invalid(m));
    if event.v != FORMAT_VERSION {
        return invalid(format!("v must be {FORMAT_VERSION}"));
    }
    if !(1..=MAX_SAFE_INTEGER).contains(&event.seq) {
        return invalid("seq must be a positive integer".into());
    }
    if event.chain.is_empty() {
        return invalid("chain must not be empty".into());
    }
    if Uuid::parse_str(&event.id).is_err() {
        return invalid(format!("id {:?} is not a UUID", event.id));
    }
    parse_ts(&event.ts)?;
    if !is_valid_type(&event.event_type) {
        return invalid(format!(
            "type {:?} is not a dotted lowercase name",
            event.event_type
        ));
    }
    if !is_lower_hex_64(&event.prev) {
        return invalid("prev must be 64 lowercase hex characters".into());
    }
    if with_hash && event.hash.is_empty() {
        return invalid("hash must not be empty".into());
    }
    if !event.data.is_object() {
        return invalid("data must be an object".into());
    }
    check_integers_only(&event.data, "data")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn draft() -> Draft {
        Draft::new(
            "user.created",
            Actor::system("root"),
            json!({"email": "a@example.com", "role": "admin", "n": 3}),
        )
    }

    fn sealed() -> Event {
        let ts = DateTime::parse_from_rfc3339("2026-11-23T10:30:00.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        let id = Uuid::parse_str("01936f3e-8a4b-7c3d-9e2f-0123456789ab").unwrap();
        Event::seal(draft(), "chain-1", 1, GENESIS_PREV, id, ts).unwrap()
    }

    #[test]
    fn canonical_bytes_are_sorted_compact_and_exclude_hash() {
        let e = sealed();
        let text = String::from_utf8(e.canonical_bytes()).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"actor":{"email":null,"id":"root","kind":"system","role":null},"chain":"chain-1","#,
                r#""data":{"email":"a@example.com","n":3,"role":"admin"},"id":"01936f3e-8a4b-7c3d-9e2f-0123456789ab","#,
                r#""prev":"0000000000000000000000000000000000000000000000000000000000000000","seq":1,"#,
                r#""source":{"instance":null,"ip":null,"request_id":null,"user_agent":null},"#,
                r#""ts":"2026-11-23T10:30:00.123456Z","type":"user.created","v":1}"#
            )
        );
        assert_eq!(e.hash, hash_hex(text.as_bytes()));
    }

    #[test]
    fn round_trips_through_canonical_and_line() {
        let e = sealed();
        assert_eq!(
            Event::from_canonical(&e.canonical_bytes(), &e.hash).unwrap(),
            e
        );
        assert_eq!(Event::from_line(&e.to_line()).unwrap(), e);
    }

    #[test]
    fn rejects_floats_and_unsafe_integers_in_drafts() {
        let mut d = draft();
        d.data = json!({"latency": 1.5});
        assert!(d.validate().is_err());
        d.data = json!({"big": 9007199254740992u64});
        assert!(d.validate().is_err());
        d.data = json!({"ok": 9007199254740991u64, "neg": -5});
        assert!(d.validate().is_ok());
        d.data = json!([1]);
        assert!(d.validate().is_err());
        d.data = json!({});
        d.event_type = "Bad Type".into();
        assert!(d.validate().is_err());
    }

    #[test]
    fn strict_parse_rejects_malformed_rows() {
        let e = sealed();
        let good = e.canonical_bytes();
        let text = String::from_utf8(good.clone()).unwrap();
        let cases: Vec<Vec<u8>> = vec![
            b"not json".to_vec(),
            b"[1,2]".to_vec(),
            text.replace(r#""seq":1"#, r#""seq":"1""#).into_bytes(),
            text.replace(r#""seq":1,"#, "").into_bytes(),
            text.replace(r#""v":1"#, r#""v":2"#).into_bytes(),
            text.replace(r#""kind":"system""#, r#""kind":"robot""#)
                .into_bytes(),
            text.replace(r#""role":null},"chain""#, r#""role":null,"x":1},"chain""#)
                .into_bytes(),
            text.replace("10:30:00.123456Z", "10:30:00Z").into_bytes(),
            text.replace(r#""n":3"#, r#""n":3.5"#).into_bytes(),
            text.replace("{\"actor\"", "{ \"actor\"").into_bytes(),
            text.replace(r#""prev":"0000"#, r#""prev":"X000"#)
                .into_bytes(),
        ];
        for (i, bytes) in cases.iter().enumerate() {
            assert!(
                Event::from_canonical(bytes, &e.hash).is_err(),
                "case {i} was accepted: {}",
                String::from_utf8_lossy(bytes)
            );
        }
        assert_eq!(
            Event::from_canonical(
                text.replace("{\"actor\"", "{ \"actor\"").as_bytes(),
                &e.hash
            ),
            Err(EnvelopeError::NotCanonical)
        );
    }

    #[test]
    fn timestamps_have_exactly_six_digits() {
        let ts = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(format_ts(ts), "2026-01-02T03:04:05.000000Z");
        assert!(parse_ts("2026-01-02T03:04:05.000000Z").is_ok());
        assert!(parse_ts("2026-01-02T03:04:05.000000+00:00").is_err());
    }
}
