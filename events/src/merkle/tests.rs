//! Known-answer tests against the RFC 6962 reference vectors in
//! `vectors.rs`, whose header cites their source (transparency-dev/merkle);
//! the property tests are in `proptests.rs`.

use super::vectors::*;
use super::*;

fn reference_leaves() -> Vec<Hash> {
    LEAF_INPUTS
        .iter()
        .map(|input| leaf_hash(&hex::decode(input).unwrap()))
        .collect()
}

fn hashes(list: &[&str]) -> Vec<Hash> {
    list.iter().map(|s| h(s)).collect()
}

#[test]
fn empty_root_is_sha256_of_nothing() {
    assert_eq!(empty_root(), h(ROOTS[0]));
    assert_eq!(root(&[]), h(ROOTS[0]));
    assert_eq!(CompactRange::new().root(), h(ROOTS[0]));
}

#[test]
fn leaf_and_node_hashes_match_reference() {
    let leaves = reference_leaves();
    assert_eq!(leaves, hashes(NODE_HASHES[0]));
    for level in 1..NODE_HASHES.len() {
        let below = hashes(NODE_HASHES[level - 1]);
        let computed: Vec<Hash> = below
            .chunks(2)
            .map(|pair| node_hash(&pair[0], &pair[1]))
            .collect();
        assert_eq!(computed, hashes(NODE_HASHES[level]), "level {level}");
    }
}

#[test]
fn roots_and_frontiers_match_reference_at_every_size() {
    let leaves = reference_leaves();
    let mut compact = CompactRange::new();
    for size in 0..=8 {
        assert_eq!(root(&leaves[..size]), h(ROOTS[size]), "root({size})");
        assert_eq!(compact.size(), size as u64);
        assert_eq!(compact.root(), h(ROOTS[size]), "compact root at {size}");
        let frontier: Vec<Hash> = COMPACT_TREES[size]
            .iter()
            .map(|&(level, index)| h(NODE_HASHES[level][index]))
            .collect();
        assert_eq!(compact.frontier(), &frontier[..], "frontier at {size}");
        if size < 8 {
            compact.push(leaves[size]);
        }
    }
}

#[test]
fn inclusion_proofs_match_reference() {
    let leaves = reference_leaves();
    for (leaf, size, expected) in INCLUSION_PROOFS {
        let index = leaf - 1;
        let tree = &leaves[..size as usize];
        let proof = inclusion_proof(tree, index).unwrap();
        assert_eq!(proof, hashes(expected), "generated proof {index}@{size}");
        let mut hasher = RangeHasher::new(inclusion_proof_ranges(index, size).unwrap());
        tree.iter().for_each(|leaf| hasher.push(*leaf));
        assert_eq!(hasher.finish().unwrap(), proof, "ranges {index}@{size}");
        let root = h(ROOTS[size as usize]);
        verify_inclusion(&leaves[index as usize], index, size, &proof, &root).unwrap();
    }
}

#[test]
fn consistency_proofs_match_reference() {
    let leaves = reference_leaves();
    for (old, new, expected) in CONSISTENCY_PROOFS {
        let tree = &leaves[..new as usize];
        let proof = consistency_proof(tree, old).unwrap();
        assert_eq!(proof, hashes(expected), "generated proof {old}→{new}");
        let mut hasher = RangeHasher::new(consistency_proof_ranges(old, new).unwrap());
        tree.iter().for_each(|leaf| hasher.push(*leaf));
        assert_eq!(hasher.finish().unwrap(), proof, "ranges {old}→{new}");
        let (old_root, new_root) = (h(ROOTS[old as usize]), h(ROOTS[new as usize]));
        verify_consistency(old, new, &old_root, &new_root, &proof).unwrap();
    }
}

/// `corruptInclusionProof` of verify_test.go: every probe must be rejected.
#[test]
fn corrupted_reference_inclusion_proofs_are_rejected() {
    let leaves = reference_leaves();
    for (leaf, size, expected) in INCLUSION_PROOFS {
        let index = leaf - 1;
        let proof = hashes(expected);
        let root = h(ROOTS[size as usize]);
        let leaf = leaves[index as usize];
        let garbage = [0u8; 32];
        let mut probes: Vec<(String, Hash, u64, u64, Vec<Hash>, Hash)> = vec![
            (
                "index - 1".into(),
                leaf,
                index.wrapping_sub(1),
                size,
                proof.clone(),
                root,
            ),
            (
                "index + 1".into(),
                leaf,
                index + 1,
                size,
                proof.clone(),
                root,
            ),
            (
                "index ^ 2".into(),
                leaf,
                index ^ 2,
                size,
                proof.clone(),
                root,
            ),
            (
                "size * 2".into(),
                leaf,
                index,
                size * 2,
                proof.clone(),
                root,
            ),
            (
                "size / 2".into(),
                leaf,
                index,
                size / 2,
                proof.clone(),
                root,
            ),
            (
                "wrong leaf".into(),
                leaf_hash(b"WrongLeaf"),
                index,
                size,
                proof.clone(),
                root,
            ),
            (
                "empty root".into(),
                leaf,
                index,
                size,
                proof.clone(),
                empty_root(),
            ),
            (
                "random root".into(),
                leaf,
                index,
                size,
                proof.clone(),
                h(SOME_HASH),
            ),
            (
                "trailing garbage".into(),
                leaf,
                index,
                size,
                [&proof[..], &[garbage]].concat(),
                root,
            ),
            (
                "trailing root".into(),
                leaf,
                index,
                size,
                [&proof[..], &[root]].concat(),
                root,
            ),
            (
                "preceding garbage".into(),
                leaf,
                index,
                size,
                [&[garbage], &proof[..]].concat(),
                root,
            ),
            (
                "preceding root".into(),
                leaf,
                index,
                size,
                [&[root], &proof[..]].concat(),
                root,
            ),
        ];
        for i in 0..proof.len() {
            let mut wrong = proof.clone();
            wrong[i][0] ^= 8;
            probes.push((format!("proof[{i}] bit 3"), leaf, index, size, wrong, root));
        }
        if !proof.is_empty() {
            let removed = proof[..proof.len() - 1].to_vec();
            probes.push(("removed component".into(), leaf, index, size, removed, root));
        }
        if proof.len() > 1 {
            let inserted = [&[proof[0], h(SOME_HASH)], &proof[1..]].concat();
            probes.push((
                "inserted component".into(),
                leaf,
                index,
                size,
                inserted,
                root,
            ));
        }
        for (desc, leaf, index, size, proof, root) in probes {
            assert!(
                verify_inclusion(&leaf, index, size, &proof, &root).is_err(),
                "accepted {desc} for leaf {index}@{size}"
            );
        }
    }
}

/// `corruptConsistencyProof` of verify_test.go: every probe must be rejected.
#[test]
fn corrupted_reference_consistency_proofs_are_rejected() {
    let garbage = [0u8; 32];
    for (old, new, expected) in CONSISTENCY_PROOFS {
        let proof = hashes(expected);
        if proof.is_empty() {
            continue; // as in the Go test: only non-trivial proofs are corrupted
        }
        let (r1, r2) = (h(ROOTS[old as usize]), h(ROOTS[new as usize]));
        let wrong_root = leaf_hash(b"WrongRoot");
        let with = |front: &[Hash], back: &[Hash]| [front, &proof[..], back].concat();
        let mut probes: Vec<(String, u64, u64, Hash, Hash, Vec<Hash>)> = vec![
            ("size1 - 1".into(), old - 1, new, r1, r2, proof.clone()),
            ("size1 + 1".into(), old + 1, new, r1, r2, proof.clone()),
            ("size1 ^ 2".into(), old ^ 2, new, r1, r2, proof.clone()),
            ("size2 * 2".into(), old, new * 2, r1, r2, proof.clone()),
            ("size2 / 2".into(), old, new / 2, r1, r2, proof.clone()),
            (
                "wrong root1".into(),
                old,
                new,
                wrong_root,
                r2,
                proof.clone(),
            ),
            (
                "wrong root2".into(),
                old,
                new,
                r1,
                wrong_root,
                proof.clone(),
            ),
            ("swapped roots".into(), old, new, r2, r1, proof.clone()),
            ("empty proof".into(), old, new, r1, r2, Vec::new()),
            (
                "trailing garbage".into(),
                old,
                new,
                r1,
                r2,
                with(&[], &[garbage]),
            ),
            ("trailing root1".into(), old, new, r1, r2, with(&[], &[r1])),
            ("trailing root2".into(), old, new, r1, r2, with(&[], &[r2])),
            (
                "preceding garbage".into(),
                old,
                new,
                r1,
                r2,
                with(&[garbage], &[]),
            ),
            ("preceding root1".into(), old, new, r1, r2, with(&[r1], &[])),
            ("preceding root2".into(), old, new, r1, r2, with(&[r2], &[])),
            (
                "preceding proof[0]".into(),
                old,
                new,
                r1,
                r2,
                with(&[proof[0]], &[]),
            ),
            (
                "truncated proof".into(),
                old,
                new,
                r1,
                r2,
                proof[..proof.len() - 1].to_vec(),
            ),
        ];
        for i in 0..proof.len() {
            let mut wrong = proof.clone();
            wrong[i][0] ^= 16;
            probes.push((format!("proof[{i}] bit 4"), old, new, r1, r2, wrong));
        }
        for (desc, old, new, r1, r2, proof) in probes {
            assert!(
                verify_consistency(old, new, &r1, &r2, &proof).is_err(),
                "accepted {desc} for {old}→{new}"
            );
        }
    }
}

/// The size edge cases: `testdata/consistency/additional/*.json` of
/// transparency-dev/merkle at commit 417fb0c314750d94e53942e9f92e79b6d35915db
/// (they supersede `TestVerifyConsistency`, which still accepted 0→0). Roots
/// "don't care 1/2" are 12-byte strings there; here, hashes of those strings.
#[test]
fn consistency_edge_cases_match_reference() {
    let (root1, root2) = (leaf_hash(b"don't care 1"), leaf_hash(b"don't care 2"));
    let empty = empty_root();
    // (size1, size2, root1, root2, proof, accepted, description)
    type Case<'a> = (u64, u64, Hash, Hash, &'a [Hash], bool, &'a str);
    let cases: [Case; 14] = [
        (
            0,
            1,
            empty,
            empty,
            &[empty],
            false,
            "consistency check on empty tree (size1 is zero) is useless",
        ),
        (
            0,
            0,
            empty,
            root2,
            &[],
            false,
            "roots do not match and sizes are zero",
        ),
        (
            1,
            1,
            empty,
            root2,
            &[],
            false,
            "roots do not not match and sizes are one",
        ),
        (
            2,
            1,
            root1,
            root2,
            &[],
            false,
            "size1 is greater than size2 again",
        ),
        (
            1,
            0,
            root1,
            root2,
            &[],
            false,
            "size1 is greater than size2",
        ),
        (
            0,
            1,
            root1,
            root2,
            &[],
            false,
            "size1 is zero and does not equal size2",
        ),
        (
            0,
            1,
            empty,
            root2,
            &[],
            false,
            "size1 is zero and size2 is not zero",
        ),
        (
            1,
            1,
            root2,
            root2,
            &[],
            true,
            "sizes are equal (one) and proof is empty",
        ),
        (
            1,
            1,
            root1,
            root2,
            &[],
            false,
            "sizes are equal (one) but roots are not",
        ),
        (
            0,
            0,
            root1,
            root1,
            &[],
            false,
            "sizes are equal (zero) and proof is empty",
        ),
        (
            0,
            0,
            root1,
            root2,
            &[],
            false,
            "sizes are equal (zero) but roots are not",
        ),
        (
            1,
            2,
            root1,
            root2,
            &[],
            false,
            "sizes do not watch and proof is empty",
        ),
        (
            1,
            1,
            empty,
            empty,
            &[empty],
            false,
            "sizes match but proof is not empty and sizes are one",
        ),
        (
            0,
            0,
            empty,
            empty,
            &[empty],
            false,
            "sizes match but proof is not empty and sizes are zero",
        ),
    ];
    for (old, new, r1, r2, proof, ok, desc) in cases {
        let result = verify_consistency(old, new, &r1, &r2, proof);
        assert_eq!(result.is_ok(), ok, "{desc}: {old}→{new}: {result:?}");
    }
    assert_eq!(
        consistency_proof(&[], 0),
        Err(ProofError::EmptyOldTree { new_size: 0 })
    );
}

#[test]
fn errors_say_expected_versus_found() {
    let leaves = reference_leaves();
    let proof = inclusion_proof(&leaves, 5).unwrap();
    let root = h(ROOTS[8]);
    assert_eq!(
        verify_inclusion(&leaves[5], 5, 8, &proof[..2], &root),
        Err(ProofError::WrongProofLength {
            expected: 3,
            found: 2
        })
    );
    assert_eq!(
        verify_inclusion(&leaves[5], 5, 8, &proof, &h(SOME_HASH)),
        Err(ProofError::RootMismatch {
            expected: h(SOME_HASH),
            found: root
        })
    );
    assert_eq!(
        verify_inclusion(&leaves[5], 8, 8, &proof, &root),
        Err(ProofError::IndexOutOfRange { index: 8, size: 8 })
    );
    assert_eq!(
        inclusion_proof(&leaves, u64::MAX),
        Err(ProofError::IndexOutOfRange {
            index: u64::MAX,
            size: 8
        })
    );
    assert_eq!(
        consistency_proof(&leaves, 9),
        Err(ProofError::SizesOutOfOrder {
            old_size: 9,
            new_size: 8
        })
    );
    assert_eq!(
        consistency_proof_ranges(0, 8),
        Err(ProofError::EmptyOldTree { new_size: 8 })
    );
    let wrong_old = leaf_hash(b"old");
    let proof = consistency_proof(&leaves, 6).unwrap();
    assert_eq!(
        verify_consistency(6, 8, &wrong_old, &root, &proof),
        Err(ProofError::OldRootMismatch {
            expected: wrong_old,
            found: h(ROOTS[6])
        })
    );
    let message = ProofError::RootMismatch {
        expected: [0xab; 32],
        found: [0xcd; 32],
    }
    .to_string();
    assert!(message.contains(&"ab".repeat(32)) && message.contains(&"cd".repeat(32)));
}

#[test]
fn huge_sizes_do_not_panic() {
    let leaf = leaf_hash(b"x");
    for size in [u64::MAX, u64::MAX - 1, 1 << 63, (1 << 63) + 1] {
        for index in [0, 1, size / 2, size - 2, size - 1] {
            let ranges = inclusion_proof_ranges(index, size).unwrap();
            assert!(ranges.len() <= 128);
            assert!(ranges.iter().all(|r| r.start < r.end && r.end <= size));
            let proof = vec![leaf; ranges.len()];
            assert!(verify_inclusion(&leaf, index, size, &proof, &leaf).is_err());
        }
        for old in [1, 2, 3, size / 2, size - 1, size] {
            let ranges = consistency_proof_ranges(old, size).unwrap();
            assert!(ranges.iter().all(|r| r.start < r.end && r.end <= size));
            let proof = vec![leaf; ranges.len()];
            assert!(verify_consistency(old, size, &leaf, &empty_root(), &proof).is_err());
        }
    }
}

#[test]
fn frontier_must_match_size() {
    assert_eq!(
        CompactRange::from_frontier(3, vec![[0; 32]]),
        Err(ProofError::FrontierLength {
            size: 3,
            expected: 2,
            found: 1
        })
    );
    assert!(CompactRange::from_frontier(0, vec![]).is_ok());
    assert!(matches!(
        CompactRange::from_frontier(u64::MAX, vec![[0; 32]; 64]),
        Err(ProofError::SizeTooLarge { .. })
    ));
}

#[test]
fn range_hasher_reports_incomplete_and_empty_ranges() {
    let leaves = reference_leaves();
    let mut hasher = RangeHasher::new(vec![0..2, 4..8]);
    assert_eq!(hasher.needed_leaves(), 8);
    leaves[..6].iter().for_each(|leaf| hasher.push(*leaf));
    assert_eq!(
        hasher.clone().finish(),
        Err(ProofError::IncompleteRange {
            start: 4,
            end: 8,
            pushed: 6
        })
    );
    leaves[6..].iter().for_each(|leaf| hasher.push(*leaf));
    // Leaves past the last range are ignored.
    hasher.push(leaf_hash(b"extra"));
    assert_eq!(
        hasher.finish().unwrap(),
        vec![h(NODE_HASHES[1][0]), h(NODE_HASHES[2][1])]
    );
    let empty_range = 3..3;
    assert_eq!(
        RangeHasher::new(vec![empty_range]).finish(),
        Err(ProofError::EmptyRange { start: 3, end: 3 })
    );
    assert_eq!(RangeHasher::new(vec![]).finish(), Ok(vec![]));
}
