//! Checks 1 and 2: each event's bytes and hash, and the links between events.

use super::*;

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
