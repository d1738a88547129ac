//! The direct writer must give exactly the generic canonicaliser's bytes: every
//! chain ever written was hashed over those.

use proptest::prelude::*;
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::*;
use crate::envelope::{ActorKind, Event};

/// The envelope without `hash` as the generic canonicaliser saw it before
/// this writer existed.
#[derive(Serialize)]
struct Unsealed<'a> {
    v: u64,
    chain: &'a str,
    seq: u64,
    id: &'a str,
    ts: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    actor: &'a Actor,
    source: &'a Source,
    data: &'a Value,
    prev: &'a str,
}

fn generic_unsealed(e: &Event) -> Vec<u8> {
    serde_json_canonicalizer::to_vec(&Unsealed {
        v: e.v,
        chain: &e.chain,
        seq: e.seq,
        id: &e.id,
        ts: &e.ts,
        event_type: &e.event_type,
        actor: &e.actor,
        source: &e.source,
        data: &e.data,
        prev: &e.prev,
    })
    .unwrap()
}

/// Strings that exercise every escape and the UTF-16 key order: controls,
/// quotes, backslashes, DEL, non-ASCII, U+E000.. and astral characters.
fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => any::<char>(),
            2 => prop::sample::select(vec![
                '\u{0}', '\u{8}', '\t', '\n', '\u{b}', '\u{c}', '\r', '\u{1f}', '"', '\\', '/',
                '\u{7f}', 'é', '\u{2028}', '\u{e000}', '\u{ffff}', '\u{10000}', '😀',
            ]),
            4 => prop::char::range('a', 'e'),
        ],
        0..8,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-(1i64 << 53)..(1i64 << 53)).prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    prop::option::of(text())
}

fn event() -> impl Strategy<Value = Event> {
    (
        (text(), any::<u64>(), text(), text(), text(), text()),
        (
            prop::sample::select(vec![
                ActorKind::User,
                ActorKind::ApiToken,
                ActorKind::System,
                ActorKind::Anonymous,
            ]),
            opt_text(),
            opt_text(),
            opt_text(),
        ),
        (opt_text(), opt_text(), opt_text(), opt_text()),
        prop::collection::btree_map(text(), value(), 0..6),
        text(),
    )
        .prop_map(
            |((chain, seq, id, ts, event_type, prev), actor, source, data, hash)| Event {
                v: 1,
                chain,
                seq,
                id,
                ts,
                event_type,
                actor: Actor {
                    kind: actor.0,
                    id: actor.1,
                    email: actor.2,
                    role: actor.3,
                },
                source: Source {
                    ip: source.0,
                    user_agent: source.1,
                    request_id: source.2,
                    instance: source.3,
                },
                data: Value::Object(data.into_iter().collect()),
                prev,
                hash,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn values_match_the_generic_canonicaliser(v in value()) {
        let mut direct = Vec::new();
        write_value(&mut direct, &v);
        prop_assert_eq!(
            String::from_utf8(direct).unwrap(),
            serde_json_canonicalizer::to_string(&v).unwrap()
        );
    }

    #[test]
    fn envelopes_and_lines_match_the_generic_canonicaliser(e in event()) {
        prop_assert_eq!(e.canonical_bytes(), generic_unsealed(&e));
        prop_assert_eq!(e.to_line(), serde_json_canonicalizer::to_vec(&e).unwrap());
    }
}

#[test]
fn utf16_order_puts_astral_keys_before_private_use_ones() {
    // UTF-8 (and code point) order has U+E000 first; RFC 8785 sorts by UTF-16
    // code units, where U+10000 is the surrogate D800 and so comes first.
    let v = json!({"\u{e000}": 1, "\u{10000}": 2, "a": 3});
    let mut out = Vec::new();
    write_value(&mut out, &v);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "{\"a\":3,\"\u{10000}\":2,\"\u{e000}\":1}"
    );
}
