//! Every tampering the verifier must catch, each on a chain built in memory
//! with `Event::seal`: the shared helpers, clean runs and the verifier's own
//! behaviour here; tampered events (checks 1, 2) in `tests/events.rs`;
//! checkpoints (checks 3, 5) and resuming in `tests/checkpoints.rs`.

use serde_json::{json, Value};

use super::*;
use crate::envelope::{hash_hex, Event};
use crate::merkle::{leaf_hash, root};
use crate::note::Signer;
use crate::testing::{checkpoint_at, sample_chain, sample_signer, signed_checkpoint};

mod checkpoints;
mod events;

const CHAIN: &str = "0193a1b2-chain-under-test";

fn signer() -> Signer {
    sample_signer("rack-gateway-test")
}

fn trusted() -> Vec<Verifier> {
    vec![signer().verifier()]
}

/// A database row as `verify-chain` reads it.
#[derive(Clone, Debug)]
struct Row {
    seq: i64,
    canonical: Vec<u8>,
    hash: String,
}

fn row(event: &Event) -> Row {
    Row {
        seq: event.seq as i64,
        canonical: event.canonical_bytes(),
        hash: event.hash.clone(),
    }
}

fn rows(events: &[Event]) -> Vec<Row> {
    events.iter().map(row).collect()
}

/// Notes at the given sizes, labelled like archive objects.
fn notes(events: &[Event], sizes: &[usize]) -> Vec<(String, String)> {
    sizes
        .iter()
        .map(|&size| {
            (
                format!("checkpoints/{size:020}.note"),
                signed_checkpoint(events, size, &signer()),
            )
        })
        .collect()
}

fn verify_rows(rows: &[Row], notes: &[(String, String)]) -> Result<Summary, Failure> {
    let mut verifier = ChainVerifier::new(Some(CHAIN.into()), trusted());
    for (label, note) in notes {
        verifier.add_checkpoint(label, note)?;
    }
    for row in rows {
        verifier.push_stored(row.seq, &row.canonical, &row.hash)?;
    }
    verifier.finish()
}

fn verify_lines(lines: &[Vec<u8>], notes: &[(String, String)]) -> Result<Summary, Failure> {
    let mut verifier = ChainVerifier::new(Some(CHAIN.into()), trusted());
    for (label, note) in notes {
        verifier.add_checkpoint(label, note)?;
    }
    for line in lines {
        verifier.push_line(
            "segments/00000000000000000001-00000000000000000010.jsonl",
            line,
        )?;
    }
    verifier.finish()
}

/// The event with its data changed and its own hash recomputed.
fn altered(event: &Event) -> Event {
    let mut event = event.clone();
    event.data["tampered"] = json!(true);
    event.hash = event.computed_hash();
    event
}

/// Events from `from_seq` on rewritten, relinked and rehashed: a consistent forgery.
fn rewritten_from(events: &[Event], from_seq: usize) -> Vec<Event> {
    let mut forged = events[..from_seq - 1].to_vec();
    for event in &events[from_seq - 1..] {
        let mut event = event.clone();
        event.data["rewritten"] = json!(true);
        event.prev = forged
            .last()
            .map_or(GENESIS_PREV.to_owned(), |e: &Event| e.hash.clone());
        event.hash = event.computed_hash();
        forged.push(event);
    }
    forged
}

/// Canonical bytes run through an edit of the JSON value, re-canonicalised,
/// with the stored hash recomputed to match: only check 1's parsing can object.
fn edited_row(event: &Event, edit: impl FnOnce(&mut Value)) -> Row {
    let mut value: Value = serde_json::from_slice(&event.canonical_bytes()).unwrap();
    edit(&mut value);
    let canonical = serde_json_canonicalizer::to_vec(&value).unwrap();
    Row {
        seq: event.seq as i64,
        hash: hash_hex(&canonical),
        canonical,
    }
}

fn assert_failure(result: Result<Summary, Failure>, check: u8, seq: Option<u64>) -> Failure {
    match result {
        Ok(summary) => panic!("verified a tampered chain: {summary:?}"),
        Err(failure) => {
            assert_eq!((failure.check, failure.seq), (check, seq), "{failure}");
            failure
        }
    }
}

// ---- clean runs -------------------------------------------------------------

#[test]
fn clean_chain_with_several_checkpoints_passes_with_the_right_summary() {
    let events = sample_chain(10, CHAIN);
    let mut all_notes = notes(&events, &[3, 7, 10]);
    // The same checkpoint from the database too: one more note, same size.
    all_notes.push(("database".into(), signed_checkpoint(&events, 7, &signer())));
    let expected = Summary {
        chain: Some(CHAIN.into()),
        events: 10,
        head_seq: 10,
        head_hash: events[9].hash.clone(),
        checkpoint_size: Some(10),
        checkpoints: 4,
        first_ts: Some(events[0].ts.clone()),
        last_ts: Some(events[9].ts.clone()),
        signed_by: vec!["rack-gateway-test".into()],
    };
    assert_eq!(
        verify_rows(&rows(&events), &all_notes),
        Ok(expected.clone())
    );
    let lines: Vec<Vec<u8>> = events.iter().map(Event::to_line).collect();
    assert_eq!(verify_lines(&lines, &all_notes), Ok(expected));
    // Trailing newlines, as read from a segment file, are fine.
    let with_newlines: Vec<Vec<u8>> = lines
        .iter()
        .map(|l| [l.as_slice(), b"\n"].concat())
        .collect();
    assert!(verify_lines(&with_newlines, &all_notes).is_ok());
}

#[test]
fn recomputed_root_is_the_rfc6962_root_of_the_canonical_bytes() {
    let events = sample_chain(13, CHAIN);
    let mut verifier = ChainVerifier::new(None, trusted());
    for event in &events {
        let r = row(event);
        verifier.push_stored(r.seq, &r.canonical, &r.hash).unwrap();
    }
    let leaves: Vec<_> = events
        .iter()
        .map(|e| leaf_hash(&e.canonical_bytes()))
        .collect();
    assert_eq!(verifier.tree().root(), root(&leaves));
    assert_eq!(verifier.head_hash(), events[12].hash);
    assert_eq!(verifier.events(), 13);
    let summary = verifier.finish().unwrap();
    assert_eq!(summary.chain.as_deref(), Some(CHAIN));
    assert_eq!(summary.checkpoint_size, None);
    assert_eq!(summary.checkpoints, 0);
}

#[test]
fn signers_of_all_checkpoints_are_reported() {
    let events = sample_chain(4, CHAIN);
    let (first, second) = (signer(), sample_signer("second-key"));
    let both = [&first, &second];
    let double = crate::note::sign(&checkpoint_at(&events, 4).body(), &both).unwrap();
    let mut verifier = ChainVerifier::new(None, vec![signer().verifier(), second.verifier()]);
    verifier.add_checkpoint("double", &double).unwrap();
    for r in rows(&events) {
        verifier.push_stored(r.seq, &r.canonical, &r.hash).unwrap();
    }
    let summary = verifier.finish().unwrap();
    assert_eq!(
        summary.signed_by,
        vec!["rack-gateway-test".to_string(), "second-key".to_string()]
    );
}

#[test]
fn empty_chain_and_size_zero_checkpoint() {
    let summary = verify_rows(&[], &[]).unwrap();
    assert_eq!(summary.events, 0);
    assert_eq!(summary.head_seq, 0);
    assert_eq!(summary.head_hash, GENESIS_PREV);
    assert_eq!(summary.first_ts, None);
    let events = sample_chain(2, CHAIN);
    let zero = Checkpoint::for_chain(CHAIN, 0, crate::merkle::empty_root(), GENESIS_PREV);
    let note = zero.sign(&signer()).unwrap();
    let summary = verify_rows(&rows(&events), &[("zero".into(), note)]).unwrap();
    assert_eq!(summary.checkpoint_size, Some(0));
    // A size-0 checkpoint with any other root is refused.
    let bad = Checkpoint::for_chain(CHAIN, 0, leaf_hash(b"x"), GENESIS_PREV);
    let note = bad.sign(&signer()).unwrap();
    assert_failure(verify_rows(&[], &[("zero".into(), note)]), 3, Some(0));
}

// ---- the verifier itself ------------------------------------------------------

#[test]
fn a_failure_is_sticky() {
    let events = sample_chain(4, CHAIN);
    let mut verifier = ChainVerifier::new(None, trusted());
    let all = rows(&events);
    let first = verifier
        .push_stored(all[1].seq, &all[1].canonical, &all[1].hash)
        .unwrap_err();
    // Ignoring the error and carrying on gets the same failure, never a summary.
    for r in &all {
        assert_eq!(
            verifier.push_stored(r.seq, &r.canonical, &r.hash),
            Err(first.clone())
        );
    }
    assert_eq!(
        verifier.add_checkpoint("cp", &signed_checkpoint(&events, 4, &signer())),
        Err(first.clone())
    );
    assert_eq!(verifier.finish(), Err(first));
}

#[test]
fn failure_serializes_and_prints_as_verify_chain_reports_it() {
    let failure = Failure {
        check: 3,
        seq: Some(8),
        object: Some("checkpoints/00000000000000000008.note".into()),
        expected: "root A".into(),
        found: "root B".into(),
        message: "the Merkle root recomputed over events 1..8 is not the signed checkpoint's"
            .into(),
    };
    assert_eq!(
        serde_json::to_value(&failure).unwrap(),
        json!({
            "check": 3, "seq": 8, "object": "checkpoints/00000000000000000008.note",
            "expected": "root A", "found": "root B",
            "message": "the Merkle root recomputed over events 1..8 is not the signed checkpoint's"
        })
    );
    assert_eq!(
        failure.to_string(),
        "check 3 failed at seq 8 in checkpoints/00000000000000000008.note: the Merkle root \
         recomputed over events 1..8 is not the signed checkpoint's; expected root A, found root B"
    );
    let summary = verify_rows(&[], &[]).unwrap();
    let value = serde_json::to_value(&summary).unwrap();
    for key in ["events", "head_seq", "head_hash", "checkpoint_size"] {
        assert!(value.get(key).is_some(), "{key}");
    }
}

#[test]
fn a_longer_chain_streams_through_with_periodic_checkpoints() {
    let events = sample_chain(3000, CHAIN);
    let sizes: Vec<usize> = (1..=3).map(|k| k * 1000).chain([1234, 2999]).collect();
    let summary = verify_rows(&rows(&events), &notes(&events, &sizes)).unwrap();
    assert_eq!(summary.head_seq, 3000);
    assert_eq!(summary.checkpoints, 5);
    // One leaf changed deep inside is caught at the next checkpoint even with its hash recomputed
    // and the rest of the chain relinked.
    let forged = rewritten_from(&events, 1500);
    assert_failure(
        verify_rows(&rows(&forged), &notes(&events, &sizes)),
        3,
        Some(2000),
    );
}
