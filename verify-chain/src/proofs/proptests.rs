//! Property tests: a proof file an attacker controls can make `check_inclusion`
//! and `check_consistency` say many things, but never "verified" unless it
//! really is, never panic and never hang. Thousands of cases per run
//! (`PROPTEST_CASES` raises it).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use events::merkle::{consistency_proof, inclusion_proof, leaf_hash, Hash};
use events::testing::{sample_chain, sample_signer, signed_checkpoint};
use proptest::prelude::*;

use super::{
    check_consistency, check_inclusion, ConsistencyProof, InclusionProof, CONSISTENCY, INCLUSION,
};

const EVENTS: usize = 9;

fn leaves(events: &[events::Event]) -> Vec<Hash> {
    events
        .iter()
        .map(|e| leaf_hash(&e.canonical_bytes()))
        .collect()
}

/// A valid inclusion proof of event `seq` in the checkpoint of `size` events, and its key.
fn valid_inclusion(seq: u64, size: usize) -> (InclusionProof, Vec<events::note::Verifier>) {
    let events = sample_chain(EVENTS, "prop");
    let signer = sample_signer("prop-key");
    let checkpoint = signed_checkpoint(&events, size, &signer);
    let all = leaves(&events[..size]);
    let path = inclusion_proof(&all, seq - 1).expect("in range");
    let event = &events[(seq - 1) as usize];
    let proof = InclusionProof {
        kind: INCLUSION.to_owned(),
        version: 1,
        chain: event.chain.clone(),
        seq,
        leaf_index: seq - 1,
        tree_size: size as u64,
        event: String::from_utf8(event.to_line()).expect("utf-8"),
        leaf_hash: hex::encode(leaf_hash(&event.canonical_bytes())),
        audit_path: path.iter().map(hex::encode).collect(),
        root: BASE64.encode(events::merkle::root(&all)),
        checkpoint,
        published_keys: vec![],
    };
    (proof, vec![signer.verifier()])
}

fn valid_consistency(old: usize, new: usize) -> (ConsistencyProof, Vec<events::note::Verifier>) {
    let events = sample_chain(EVENTS, "prop");
    let signer = sample_signer("prop-key");
    let all = leaves(&events[..new]);
    let path = consistency_proof(&all, old as u64).expect("in range");
    let proof = ConsistencyProof {
        kind: CONSISTENCY.to_owned(),
        version: 1,
        chain: "prop".to_owned(),
        old_size: old as u64,
        new_size: new as u64,
        old_root: BASE64.encode(events::merkle::root(&all[..old])),
        new_root: BASE64.encode(events::merkle::root(&all)),
        proof: path.iter().map(hex::encode).collect(),
        old_checkpoint: signed_checkpoint(&events, old, &signer),
        new_checkpoint: signed_checkpoint(&events, new, &signer),
        published_keys: vec![],
    };
    (proof, vec![signer.verifier()])
}

/// Change one character of `text` at `at` (modulo its length) to `to`.
fn mutate(text: &str, at: usize, to: char) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return to.to_string();
    }
    let at = at % chars.len();
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i == at { to } else { *c })
        .collect()
}

#[test]
fn the_generators_make_proofs_that_verify() {
    for size in 1..=EVENTS {
        for seq in 1..=size as u64 {
            let (proof, keys) = valid_inclusion(seq, size);
            assert_eq!(
                check_inclusion(&proof, &keys),
                Ok(()),
                "seq {seq} of {size}"
            );
        }
        for old in 1..=size {
            let (proof, keys) = valid_consistency(old, size);
            assert_eq!(check_consistency(&proof, &keys), Ok(()), "{old} → {size}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Any one-character change to any text field of a valid inclusion proof
    /// (event, leaf hash, path, root, checkpoint, chain) is rejected, unless
    /// the change left it as it was.
    #[test]
    fn a_changed_inclusion_proof_never_verifies(
        size in 1usize..=EVENTS,
        seq_pick in 0u64..100,
        field in 0usize..6,
        at in 0usize..10_000,
        to in proptest::char::any(),
    ) {
        let seq = 1 + seq_pick % size as u64;
        let (mut proof, keys) = valid_inclusion(seq, size);
        let before = serde_json::to_string(&proof).unwrap();
        match field {
            0 => proof.event = mutate(&proof.event, at, to),
            1 => proof.leaf_hash = mutate(&proof.leaf_hash, at, to),
            2 => match proof.audit_path.len() {
                0 => proof.audit_path.push(mutate("", at, to)),
                n => proof.audit_path[at % n] = mutate(&proof.audit_path[at % n], at / n, to),
            },
            3 => proof.root = mutate(&proof.root, at, to),
            4 => proof.checkpoint = mutate(&proof.checkpoint, at, to),
            _ => proof.chain = mutate(&proof.chain, at, to),
        }
        let after = serde_json::to_string(&proof).unwrap();
        let outcome = check_inclusion(&proof, &keys);
        if before == after {
            prop_assert!(outcome.is_ok());
        } else if outcome.is_ok() {
            // Verified after a change: only if the change kept the meaning —
            // a hex digit's case, or an event line that is still the same event.
            match field {
                1 | 2 => prop_assert_eq!(before.to_lowercase(), after.to_lowercase()),
                0 => {
                    let original = valid_inclusion(seq, size).0;
                    let a = events::Event::from_line(original.event.as_bytes()).unwrap();
                    let b = events::Event::from_line(proof.event.as_bytes()).unwrap();
                    prop_assert_eq!(a.canonical_bytes(), b.canonical_bytes());
                    prop_assert_eq!(a.hash, b.hash);
                }
                _ => prop_assert!(false, "field {} verified after a change", field),
            }
        }
    }

    /// Numbers that do not agree with the signed checkpoint never verify.
    #[test]
    fn inclusion_numbers_must_agree(
        size in 1usize..=EVENTS,
        seq_pick in 0u64..100,
        seq in proptest::num::u64::ANY,
        leaf_index in proptest::num::u64::ANY,
        tree_size in proptest::num::u64::ANY,
    ) {
        let real = 1 + seq_pick % size as u64;
        let (mut proof, keys) = valid_inclusion(real, size);
        proof.seq = seq;
        proof.leaf_index = leaf_index;
        proof.tree_size = tree_size;
        let same = seq == real && leaf_index == real - 1 && tree_size == size as u64;
        prop_assert_eq!(check_inclusion(&proof, &keys).is_ok(), same);
    }

    /// A consistency proof with any one hash or size changed never verifies.
    #[test]
    fn a_changed_consistency_proof_never_verifies(
        new in 1usize..=EVENTS,
        old_pick in 0usize..100,
        field in 0usize..5,
        at in 0usize..10_000,
        to in proptest::char::any(),
        size in proptest::num::u64::ANY,
    ) {
        let old = 1 + old_pick % new;
        let (mut proof, keys) = valid_consistency(old, new);
        let before = serde_json::to_string(&proof).unwrap();
        match field {
            0 => match proof.proof.len() {
                0 => proof.proof.push(mutate("", at, to)),
                n => proof.proof[at % n] = mutate(&proof.proof[at % n], at / n, to),
            },
            1 => proof.old_root = mutate(&proof.old_root, at, to),
            2 => proof.new_checkpoint = mutate(&proof.new_checkpoint, at, to),
            3 => proof.old_size = size,
            _ => proof.new_size = size,
        }
        let after = serde_json::to_string(&proof).unwrap();
        let verified = check_consistency(&proof, &keys).is_ok();
        if before == after {
            prop_assert!(verified);
        } else if verified {
            // Only a hex digit's case may change and still verify.
            prop_assert_eq!(field, 0);
            prop_assert_eq!(before.to_lowercase(), after.to_lowercase());
        }
    }

    /// Arbitrary JSON for a proof file: no panic, never verified.
    #[test]
    fn arbitrary_proof_files_never_verify(text in ".{0,600}") {
        let (_, keys) = valid_inclusion(1, 1);
        if let Ok(proof) = serde_json::from_str::<InclusionProof>(&text) {
            prop_assert!(check_inclusion(&proof, &keys).is_err());
        }
        if let Ok(proof) = serde_json::from_str::<ConsistencyProof>(&text) {
            prop_assert!(check_consistency(&proof, &keys).is_err());
        }
    }
}
