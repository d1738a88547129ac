//! RFC 8785 (JCS) bytes of an envelope, written directly into one buffer.
//!
//! The generic canonicaliser buffers every member of every object, re-parses
//! each key to sort it and formats every integer through a double; for the
//! envelope, whose ten keys and their order are fixed, that work is pure cost
//! paid twice per event on the appender and three times in `verify-chain`. This
//! writer produces the same bytes (a property test holds it to the generic
//! canonicaliser on arbitrary values) in one pass. Keys of `data` are sorted by
//! UTF-16 code units as RFC 8785 §3.2.3 says; numbers other than the safe
//! integers every event holds are handed to the generic canonicaliser.

use serde_json::{Map, Number, Value};

use super::{Actor, Event, Source, MAX_SAFE_INTEGER};

/// Where `"hash":…,` goes in the canonical bytes: right after `"data":…,`
/// (keys in order: actor, chain, data, hash, id, …).
pub(super) struct Written {
    pub hash_at: usize,
}

/// `canonical(e)` appended to `out`: the envelope without `hash`.
pub(super) fn write_unsealed(out: &mut Vec<u8>, event: &Event) -> Written {
    out.extend_from_slice(b"{\"actor\":");
    write_actor(out, &event.actor);
    out.extend_from_slice(b",\"chain\":");
    write_str(out, &event.chain);
    out.extend_from_slice(b",\"data\":");
    write_value(out, &event.data);
    out.push(b',');
    let hash_at = out.len();
    out.extend_from_slice(b"\"id\":");
    write_str(out, &event.id);
    out.extend_from_slice(b",\"prev\":");
    write_str(out, &event.prev);
    out.extend_from_slice(b",\"seq\":");
    write_u64(out, event.seq);
    out.extend_from_slice(b",\"source\":");
    write_source(out, &event.source);
    out.extend_from_slice(b",\"ts\":");
    write_str(out, &event.ts);
    out.extend_from_slice(b",\"type\":");
    write_str(out, &event.event_type);
    out.extend_from_slice(b",\"v\":");
    write_u64(out, event.v);
    out.push(b'}');
    Written { hash_at }
}

/// The `"hash":"…",` member as it stands in a canonical line.
pub(super) fn hash_member(hash: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(hash.len() + 10);
    out.extend_from_slice(b"\"hash\":");
    write_str(&mut out, hash);
    out.push(b',');
    out
}

fn write_actor(out: &mut Vec<u8>, actor: &Actor) {
    out.extend_from_slice(b"{\"email\":");
    write_opt_str(out, actor.email.as_deref());
    out.extend_from_slice(b",\"id\":");
    write_opt_str(out, actor.id.as_deref());
    out.extend_from_slice(b",\"kind\":");
    write_str(out, actor.kind.as_str());
    out.extend_from_slice(b",\"role\":");
    write_opt_str(out, actor.role.as_deref());
    out.push(b'}');
}

fn write_source(out: &mut Vec<u8>, source: &Source) {
    out.extend_from_slice(b"{\"instance\":");
    write_opt_str(out, source.instance.as_deref());
    out.extend_from_slice(b",\"ip\":");
    write_opt_str(out, source.ip.as_deref());
    out.extend_from_slice(b",\"request_id\":");
    write_opt_str(out, source.request_id.as_deref());
    out.extend_from_slice(b",\"user_agent\":");
    write_opt_str(out, source.user_agent.as_deref());
    out.push(b'}');
}

fn write_opt_str(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(s) => write_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// A JSON string as RFC 8785 §3.2.2.2 writes it: `"` and `\` escaped, control
/// characters as `\b \t \n \f \r` or `\u00xx` (lowercase), nothing else.
pub(super) fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(s.len() + 2);
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x09 => b"\\t",
            0x0a => b"\\n",
            0x0c => b"\\f",
            0x0d => b"\\r",
            0x00..=0x1f => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ],
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn write_u64(out: &mut Vec<u8>, n: u64) {
    if n <= MAX_SAFE_INTEGER {
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    } else {
        write_number(out, &Number::from(n));
    }
}

fn write_number(out: &mut Vec<u8>, n: &Number) {
    let safe = |magnitude: u64| magnitude <= MAX_SAFE_INTEGER;
    if let Some(u) = n.as_u64().filter(|&u| safe(u)) {
        out.extend_from_slice(itoa::Buffer::new().format(u).as_bytes());
    } else if let Some(i) = n.as_i64().filter(|i| safe(i.unsigned_abs())) {
        out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes());
    } else {
        // Fractions and integers past 2^53 − 1 are formatted as IEEE doubles
        // (ECMAScript's Number.toString); events never hold them, but this
        // writer must still agree with the generic canonicaliser if handed one.
        match serde_json_canonicalizer::to_vec(n) {
            Ok(bytes) => out.extend_from_slice(&bytes),
            Err(_) => out.extend_from_slice(b"null"),
        }
    }
}

pub(super) fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(out, map),
    }
}

fn write_object(out: &mut Vec<u8>, map: &Map<String, Value>) {
    out.push(b'{');
    // The map iterates in UTF-8 byte order, which is code point order; UTF-16
    // order differs only where a key holds a character from U+E000 up, so
    // only then are the members sorted again.
    if map.keys().any(|k| k.chars().any(|c| c >= '\u{e000}')) {
        let mut members: Vec<(&String, &Value)> = map.iter().collect();
        members.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
        write_members(out, members.into_iter());
    } else {
        write_members(out, map.iter());
    }
    out.push(b'}');
}

fn write_members<'a>(out: &mut Vec<u8>, members: impl Iterator<Item = (&'a String, &'a Value)>) {
    for (i, (key, value)) in members.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, key);
        out.push(b':');
        write_value(out, value);
    }
}

#[cfg(test)]
mod tests;
