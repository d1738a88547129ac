//! Deterministic chains, keys and checkpoints for tests, in this crate and
//! others (enable the `testing` feature in `[dev-dependencies]`).
//!
//! Everything here is a pure function of its arguments, so a test that fails
//! once fails the same way every time.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::{Builder, Uuid};

use crate::checkpoint::Checkpoint;
use crate::envelope::{Actor, ActorKind, Draft, Event, Source, GENESIS_PREV};
use crate::merkle::{leaf_hash, CompactRange};
use crate::note::Signer;

/// Timestamp of the first sample event.
pub const SAMPLE_START: &str = "2026-11-23T10:30:00.000000Z";

/// `n` sealed, correctly linked events of `chain`, seq 1..=n, one second
/// apart from [`SAMPLE_START`], cycling through a few event types.
pub fn sample_chain(n: usize, chain: &str) -> Vec<Event> {
    let mut events: Vec<Event> = Vec::with_capacity(n);
    for i in 1..=n as u64 {
        let prev = events
            .last()
            .map_or(GENESIS_PREV.to_owned(), |e| e.hash.clone());
        events.push(sample_event(chain, i, &prev));
    }
    events
}

/// The sample event at `seq` after `prev`; also used to forge rewrites in tests.
pub fn sample_event(chain: &str, seq: u64, prev: &str) -> Event {
    let draft = sample_draft(seq);
    let ts = sample_start() + Duration::seconds(seq as i64) + Duration::microseconds(seq as i64);
    // A UUIDv7 whose time is the event's and whose "random" bits are the seq.
    let mut random = [0u8; 10];
    random[2..].copy_from_slice(&seq.to_be_bytes());
    let id: Uuid =
        Builder::from_unix_timestamp_millis(ts.timestamp_millis() as u64, &random).into_uuid();
    // Sample drafts are valid and seq is small: sealing cannot fail unless
    // this helper itself is broken, which a panic in a test should say.
    Event::seal(draft, chain, seq, prev, id, ts).expect("sample events are valid")
}

fn sample_start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(SAMPLE_START)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

fn sample_draft(seq: u64) -> Draft {
    let user = Actor {
        kind: ActorKind::User,
        id: Some(format!("user-{}", seq % 5)),
        email: Some(format!("user{}@example.com", seq % 5)),
        role: Some("deployer".into()),
    };
    let source = Source {
        ip: Some("192.0.2.10".into()),
        user_agent: Some("convox/3.19".into()),
        request_id: Some(format!("req-{seq}")),
        instance: Some("gw-1".into()),
    };
    match seq % 4 {
        0 => Draft::new(
            "user.created",
            Actor::system("root"),
            json!({"email": format!("new{seq}@example.com"), "role": "viewer"}),
        ),
        1 => Draft::new(
            "proxy.request",
            user,
            json!({"method": "GET", "path": "/apps", "decision": "allow", "permission": "apps:read"}),
        )
        .with_source(source),
        2 => Draft::new(
            "proxy.response",
            user,
            json!({"status": 200, "latency_us": seq * 137, "bytes_out": seq * 1024}),
        )
        .with_source(source),
        _ => Draft::new(
            "auth.login.succeeded",
            user,
            json!({"provider": "oauth", "mfa": true}),
        ),
    }
}

/// A signer with a fixed key derived from `name` (never use outside tests).
pub fn sample_signer(name: &str) -> Signer {
    let seed: [u8; 32] = Sha256::digest(format!("rack-gateway test key: {name}")).into();
    Signer::from_ed25519_seed(name, &seed).expect("sample key names are valid")
}

/// The checkpoint of the first `size` events (`size <= events.len()`; the
/// events must all be of one chain). Panics otherwise: it is a test helper.
pub fn checkpoint_at(events: &[Event], size: usize) -> Checkpoint {
    let mut tree = CompactRange::new();
    for event in &events[..size] {
        tree.push(leaf_hash(&event.canonical_bytes()));
    }
    let (chain, head) = match size.checked_sub(1).and_then(|i| events.get(i)) {
        Some(last) => (last.chain.as_str(), last.hash.as_str()),
        None => (
            events.first().map_or("sample", |e| e.chain.as_str()),
            GENESIS_PREV,
        ),
    };
    Checkpoint::for_chain(chain, size as u64, tree.root(), head)
}

/// [`checkpoint_at`], signed: the note text as stored and archived.
pub fn signed_checkpoint(events: &[Event], size: usize, signer: &Signer) -> String {
    checkpoint_at(events, size)
        .sign(signer)
        .expect("sample checkpoints are well formed")
}
