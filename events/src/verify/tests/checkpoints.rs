//! Checks 3 and 5: signed checkpoints against the stream, and resuming after a trusted prefix.

use super::*;

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
