//! Every tampering the verifier must catch, each on a chain built in memory
//! with `Event::seal`, plus the clean runs and their summaries.

use serde_json::{json, Value};

use super::*;
use crate::merkle::{leaf_hash, root};
use crate::note::Signer;
use crate::testing::{checkpoint_at, sample_chain, sample_signer, signed_checkpoint};

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

// ---- check 1 ---------------------------------------------------------------

#[test]
fn every_changed_byte_of_a_row_is_caught() {
    let events = sample_chain(4, CHAIN);
    let notes = notes(&events, &[4]);
    for target in [1, 3] {
        let original = row(&events[target]);
        for position in 0..original.canonical.len() {
            for delta in [1u8, 0x20, 0x80] {
                let mut tampered = rows(&events);
                tampered[target].canonical[position] =
                    tampered[target].canonical[position].wrapping_add(delta);
                let failure =
                    assert_failure(verify_rows(&tampered, &notes), 1, Some(target as u64 + 1));
                assert!(!failure.message.is_empty());
            }
        }
    }
}

#[test]
fn every_changed_byte_of_an_archive_line_is_caught() {
    let events = sample_chain(3, CHAIN);
    let lines: Vec<Vec<u8>> = events.iter().map(Event::to_line).collect();
    for position in 0..lines[1].len() {
        let mut tampered = lines.clone();
        tampered[1][position] ^= 0x01;
        let failure = verify_lines(&tampered, &[]).unwrap_err();
        assert_eq!(failure.check, 1, "{failure}");
        assert_eq!(
            failure.object.as_deref(),
            Some("segments/00000000000000000001-00000000000000000010.jsonl")
        );
    }
}

#[test]
fn changed_hash_column_is_caught() {
    let events = sample_chain(3, CHAIN);
    let mut tampered = rows(&events);
    tampered[1].hash = events[0].hash.clone();
    let failure = assert_failure(verify_rows(&tampered, &[]), 1, Some(2));
    assert_eq!(failure.expected, events[1].hash);
    assert_eq!(failure.found, events[0].hash);
}

#[test]
fn non_json_row_is_caught() {
    let events = sample_chain(3, CHAIN);
    let mut tampered = rows(&events);
    tampered[1].canonical = b"not json at all".to_vec();
    tampered[1].hash = hash_hex(&tampered[1].canonical);
    assert_failure(verify_rows(&tampered, &[]), 1, Some(2));
    tampered[1].canonical = Vec::new();
    assert_failure(verify_rows(&tampered, &[]), 1, Some(2));
}

#[test]
fn non_canonical_bytes_are_caught_even_with_a_matching_hash() {
    let events = sample_chain(3, CHAIN);
    let value: Value = serde_json::from_slice(&events[1].canonical_bytes()).unwrap();
    let pretty = serde_json::to_vec_pretty(&value).unwrap();
    let mut tampered = rows(&events);
    tampered[1].hash = hash_hex(&pretty);
    tampered[1].canonical = pretty;
    let failure = assert_failure(verify_rows(&tampered, &[]), 1, Some(2));
    assert!(failure.found.contains("canonical"), "{failure}");
}

#[test]
fn missing_fields_and_wrong_types_are_caught() {
    let events = sample_chain(3, CHAIN);
    let edits: [fn(&mut Value); 9] = [
        |v| {
            v.as_object_mut().unwrap().remove("type");
        },
        |v| {
            v.as_object_mut().unwrap().remove("prev");
        },
        |v| v["seq"] = json!("2"),
        |v| v["data"] = json!([1, 2]),
        |v| v["actor"]["kind"] = json!(7),
        |v| v["ts"] = json!("yesterday"),
        |v| v["data"]["latency"] = json!(1.5),
        |v| v["extra"] = json!(1),
        |v| v["hash"] = json!("00"),
    ];
    for (i, edit) in edits.iter().enumerate() {
        let mut tampered = rows(&events);
        tampered[1] = edited_row(&events[1], *edit);
        let failure = verify_rows(&tampered, &[]).unwrap_err();
        assert_eq!(
            (failure.check, failure.seq),
            (1, Some(2)),
            "edit {i}: {failure}"
        );
    }
}

#[test]
fn seq_column_must_match_the_envelope() {
    let events = sample_chain(3, CHAIN);
    let mut tampered = rows(&events);
    tampered[1].seq = 7;
    let failure = assert_failure(verify_rows(&tampered, &[]), 1, Some(7));
    assert_eq!(
        (failure.expected.as_str(), failure.found.as_str()),
        ("seq 7", "seq 2")
    );
    tampered[1].seq = -2;
    assert_failure(verify_rows(&tampered, &[]), 1, Some(2));
}

#[test]
fn events_of_another_chain_are_caught() {
    let ours = sample_chain(2, CHAIN);
    let theirs = sample_chain(3, "another-chain");
    // Linked correctly to ours, but of another chain.
    let mut foreign = theirs[2].clone();
    foreign.seq = 3;
    foreign.prev = ours[1].hash.clone();
    foreign.hash = foreign.computed_hash();
    let mut all = rows(&ours);
    all.push(row(&foreign));
    let failure = assert_failure(verify_rows(&all, &[]), 1, Some(3));
    assert_eq!(failure.found, "chain another-chain");
    // Without an expected chain, the first event sets it.
    let mut verifier = ChainVerifier::new(None, trusted());
    for r in &all[..2] {
        verifier.push_stored(r.seq, &r.canonical, &r.hash).unwrap();
    }
    assert_eq!(
        verifier
            .push_stored(all[2].seq, &all[2].canonical, &all[2].hash)
            .unwrap_err()
            .check,
        1
    );
}

// ---- check 2 ---------------------------------------------------------------

#[test]
fn event_changed_with_its_own_hash_recomputed_is_caught_by_the_next_link() {
    let events = sample_chain(5, CHAIN);
    let mut tampered = rows(&events);
    let forged = altered(&events[2]);
    tampered[2] = row(&forged);
    let failure = assert_failure(verify_rows(&tampered, &[]), 2, Some(4));
    assert_eq!(failure.expected, forged.hash);
    assert_eq!(failure.found, events[2].hash);
}

#[test]
fn deleted_row_is_caught() {
    let events = sample_chain(5, CHAIN);
    let mut tampered = rows(&events);
    tampered.remove(2);
    let failure = assert_failure(verify_rows(&tampered, &[]), 2, Some(3));
    assert_eq!(
        (failure.expected.as_str(), failure.found.as_str()),
        ("seq 3", "seq 4")
    );
    // The first row deleted.
    assert_failure(verify_rows(&rows(&events)[1..], &[]), 2, Some(1));
}

#[test]
fn swapped_and_duplicated_rows_are_caught() {
    let events = sample_chain(5, CHAIN);
    let mut swapped = rows(&events);
    swapped.swap(2, 3);
    assert_failure(verify_rows(&swapped, &[]), 2, Some(3));
    let mut duplicated = rows(&events);
    duplicated.insert(3, duplicated[2].clone());
    let failure = assert_failure(verify_rows(&duplicated, &[]), 2, Some(4));
    assert_eq!(failure.found, "seq 3");
}

#[test]
fn genesis_must_link_to_zeros() {
    let mut first = sample_chain(1, CHAIN)[0].clone();
    first.prev = "11".repeat(32);
    first.hash = first.computed_hash();
    let failure = assert_failure(verify_rows(&[row(&first)], &[]), 2, Some(1));
    assert_eq!(failure.expected, GENESIS_PREV);
}

// ---- check 3 ---------------------------------------------------------------

#[test]
fn altered_last_event_is_caught_by_a_checkpoint_at_it() {
    let events = sample_chain(5, CHAIN);
    let mut tampered = rows(&events);
    tampered[4] = row(&altered(&events[4]));
    let failure = assert_failure(verify_rows(&tampered, &notes(&events, &[2, 5])), 3, Some(5));
    assert_eq!(
        failure.object.as_deref(),
        Some("checkpoints/00000000000000000005.note")
    );
    assert_eq!(failure.expected, checkpoint_at(&events, 5).root_base64());
    // Documented limit: past the newest checkpoint, only the chain vouches
    // for the tail, and a rehashed last event is self-consistent.
    assert!(verify_rows(&tampered, &notes(&events, &[2])).is_ok());
}

#[test]
fn consistent_rewrite_of_the_tail_is_caught_by_the_checkpoint_root() {
    let events = sample_chain(10, CHAIN);
    let forged = rewritten_from(&events, 6);
    let failure = assert_failure(
        verify_rows(&rows(&forged), &notes(&events, &[5, 10])),
        3,
        Some(10),
    );
    assert!(failure.message.contains("Merkle root"), "{failure}");
    assert_eq!(failure.found, checkpoint_at(&forged, 10).root_base64());
    // A head-only mismatch (same root, other head) is caught too.
    let mut wrong_head = checkpoint_at(&events, 10);
    wrong_head.head = events[8].hash.clone();
    let note = wrong_head.sign(&signer()).unwrap();
    let failure = assert_failure(
        verify_rows(&rows(&events), &[("head".into(), note)]),
        3,
        Some(10),
    );
    assert_eq!(
        (failure.expected.as_str(), failure.found.as_str()),
        (events[8].hash.as_str(), events[9].hash.as_str())
    );
}

#[test]
fn truncated_tail_below_a_checkpoint_is_caught() {
    let events = sample_chain(8, CHAIN);
    let notes = notes(&events, &[4, 8]);
    let failure = assert_failure(verify_rows(&rows(&events)[..6], &notes), 3, Some(7));
    assert_eq!(failure.expected, "at least 8 events");
    assert_eq!(failure.found, "6 events");
    assert_eq!(
        failure.object.as_deref(),
        Some("checkpoints/00000000000000000008.note")
    );
    // Everything gone.
    assert_failure(verify_rows(&[], &notes), 3, Some(1));
}

#[test]
fn corrupted_checkpoint_signature_is_caught() {
    let events = sample_chain(4, CHAIN);
    let note = signed_checkpoint(&events, 4, &signer());
    // Change one base64 character of the signature (keeping valid base64).
    let at = note.len() - 10;
    let replacement = if &note[at..at + 1] == "A" { "B" } else { "A" };
    let corrupted = format!("{}{}{}", &note[..at], replacement, &note[at + 1..]);
    let failure = assert_failure(
        verify_rows(&rows(&events), &[("cp".into(), corrupted)]),
        3,
        None,
    );
    assert_eq!(failure.object.as_deref(), Some("cp"));
    assert!(failure.message.contains("invalid"), "{failure}");
    // A changed body under the original signature.
    let altered_body = note.replacen("\n4\n", "\n3\n", 1);
    assert_failure(
        verify_rows(&rows(&events), &[("cp".into(), altered_body)]),
        3,
        None,
    );
}

#[test]
fn bad_base64_in_a_note_is_caught() {
    let events = sample_chain(4, CHAIN);
    let note = signed_checkpoint(&events, 4, &signer());
    let (body, _) = note.split_once("\n\n").unwrap();
    let bad = format!("{body}\n\n\u{2014} rack-gateway-test !!not*base64!!\n");
    let failure = assert_failure(verify_rows(&rows(&events), &[("cp".into(), bad)]), 3, None);
    assert!(failure.found.contains("base64"), "{failure}");
    // Not even a note.
    let failure = assert_failure(
        verify_rows(&rows(&events), &[("cp".into(), "garbage".into())]),
        3,
        None,
    );
    assert_eq!(failure.expected, "a well-formed signed note");
    let mut verifier = ChainVerifier::new(None, trusted());
    assert_eq!(
        verifier
            .add_checkpoint_bytes("cp", b"\xff\xfe")
            .unwrap_err()
            .check,
        3
    );
}

#[test]
fn checkpoint_by_an_untrusted_key_is_caught() {
    let events = sample_chain(4, CHAIN);
    let intruder = sample_signer("intruder");
    let note = checkpoint_at(&events, 4).sign(&intruder).unwrap();
    let failure = assert_failure(
        verify_rows(&rows(&events), &[("cp".into(), note.clone())]),
        3,
        None,
    );
    assert!(failure.found.contains("intruder+"), "{failure}");
    // With no trusted keys at all, nothing verifies.
    let mut verifier = ChainVerifier::new(None, vec![]);
    let note = signed_checkpoint(&events, 4, &signer());
    assert_eq!(verifier.add_checkpoint("cp", &note).unwrap_err().check, 3);
}

#[test]
fn checkpoint_origin_must_be_this_chain() {
    let events = sample_chain(4, CHAIN);
    let mut other = checkpoint_at(&events, 4);
    other.origin = Checkpoint::origin_for_chain("another-chain");
    let note = other.sign(&signer()).unwrap();
    let failure = assert_failure(
        verify_rows(&rows(&events), &[("cp".into(), note)]),
        3,
        Some(4),
    );
    assert_eq!(failure.expected, format!("rack-gateway/{CHAIN}"));
    other.origin = "example.com/log".into();
    let note = other.sign(&signer()).unwrap();
    assert_failure(
        verify_rows(&rows(&events), &[("cp".into(), note)]),
        3,
        Some(4),
    );
}

#[test]
fn checkpoint_added_after_its_size_was_streamed_is_refused() {
    let events = sample_chain(4, CHAIN);
    let mut verifier = ChainVerifier::new(None, trusted());
    for r in rows(&events) {
        verifier.push_stored(r.seq, &r.canonical, &r.hash).unwrap();
    }
    // At the current size it can still be checked; below it cannot.
    verifier
        .add_checkpoint("at4", &signed_checkpoint(&events, 4, &signer()))
        .unwrap();
    let failure = verifier
        .add_checkpoint("at2", &signed_checkpoint(&events, 2, &signer()))
        .unwrap_err();
    assert_eq!((failure.check, failure.seq), (3, Some(2)));
}

// ---- check 5 ---------------------------------------------------------------

#[test]
fn two_checkpoints_of_one_size_must_agree() {
    let events = sample_chain(6, CHAIN);
    let forked = rewritten_from(&events, 4);
    let honest = signed_checkpoint(&events, 6, &signer());
    let fork = signed_checkpoint(&forked, 6, &signer());
    let notes = vec![
        ("database".to_string(), honest),
        ("archive".to_string(), fork),
    ];
    let failure = assert_failure(verify_rows(&rows(&events), &notes), 5, Some(6));
    assert_eq!(failure.object.as_deref(), Some("archive"));
    assert!(failure.message.contains("database"), "{failure}");
    assert_eq!(
        failure.expected,
        format!("root {}", checkpoint_at(&events, 6).root_base64())
    );
}

// ---- resuming after a trusted prefix ------------------------------------------

fn prefix_of(events: &[Event], size: usize) -> (u64, String, Vec<Hash>) {
    let mut tree = CompactRange::new();
    for event in &events[..size] {
        tree.push(leaf_hash(&event.canonical_bytes()));
    }
    (
        size as u64,
        events[size - 1].hash.clone(),
        tree.frontier().to_vec(),
    )
}

#[test]
fn resumed_verification_of_a_partial_export() {
    let events = sample_chain(10, CHAIN);
    let (size, head, frontier) = prefix_of(&events, 5);
    let all_notes = notes(&events, &[2, 5, 10]);
    let run = |notes: &[(String, String)], before: bool| -> Result<Summary, Failure> {
        let mut verifier = ChainVerifier::new(Some(CHAIN.into()), trusted());
        if before {
            for (label, note) in notes {
                verifier.add_checkpoint(label, note)?;
            }
        }
        let mut verifier = verifier.resume_after(size, head.clone(), frontier.clone())?;
        if !before {
            for (label, note) in notes {
                verifier.add_checkpoint(label, note)?;
            }
        }
        for r in rows(&events[5..]) {
            verifier.push_stored(r.seq, &r.canonical, &r.hash)?;
        }
        verifier.finish()
    };
    for before in [false, true] {
        let summary = run(&all_notes, before).unwrap();
        assert_eq!(summary.events, 5);
        assert_eq!(summary.head_seq, 10);
        assert_eq!(summary.first_ts.as_ref(), Some(&events[5].ts));
        // The checkpoint at 2 lies inside the trusted prefix: not counted as verified.
        assert_eq!(summary.checkpoints, 2);
        assert_eq!(summary.checkpoint_size, Some(10));
        // No checkpoint vouches for the prefix.
        let without = [all_notes[0].clone(), all_notes[2].clone()];
        assert_failure(run(&without, before), 3, Some(5));
    }
}

#[test]
fn resume_with_a_wrong_prefix_is_caught() {
    let events = sample_chain(10, CHAIN);
    let forked = rewritten_from(&events, 3);
    let cp5 = notes(&events, &[5]);
    // A frontier of another history.
    let (size, _, frontier) = prefix_of(&forked, 5);
    let mut verifier = ChainVerifier::new(None, trusted())
        .resume_after(size, events[4].hash.clone(), frontier)
        .unwrap();
    let failure = verifier.add_checkpoint(&cp5[0].0, &cp5[0].1).unwrap_err();
    assert_eq!((failure.check, failure.seq), (3, Some(5)));
    assert!(verifier.finish().is_err());
    // A wrong head hash.
    let (size, _, frontier) = prefix_of(&events, 5);
    let mut verifier = ChainVerifier::new(None, trusted());
    verifier.add_checkpoint(&cp5[0].0, &cp5[0].1).unwrap();
    let failure = verifier
        .resume_after(size, events[3].hash.clone(), frontier.clone())
        .unwrap_err();
    assert_eq!((failure.check, failure.seq), (3, Some(5)));
    // Malformed arguments.
    let fresh = || ChainVerifier::new(None, trusted());
    assert!(fresh()
        .resume_after(5, "xyz".into(), frontier.clone())
        .is_err());
    assert!(fresh()
        .resume_after(5, events[4].hash.clone(), vec![])
        .is_err());
    assert!(fresh()
        .resume_after(0, events[4].hash.clone(), vec![])
        .is_err());
    assert!(fresh().resume_after(0, GENESIS_PREV.into(), vec![]).is_ok());
    // The events after the prefix must continue it.
    let mut verifier = fresh()
        .resume_after(5, events[4].hash.clone(), frontier)
        .unwrap();
    let r = row(&events[6]);
    assert_eq!(
        verifier
            .push_stored(r.seq, &r.canonical, &r.hash)
            .unwrap_err()
            .check,
        2
    );
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
