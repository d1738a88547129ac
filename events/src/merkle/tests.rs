//! Known-answer tests against the RFC 6962 reference vectors, and property
//! tests for the proofs.
//!
//! Vectors are copied from transparency-dev/merkle (the Go reference used by
//! Certificate Transparency, Trillian and Sigsum):
//! - leaves, node hashes, roots, compact trees: `testonly/constants.go`
//!   at commit 417fb0c314750d94e53942e9f92e79b6d35915db;
//! - inclusion and consistency proofs and their corruptions:
//!   `proof/verify_test.go` at commit 022f84cb1f2655a4399874cfa190c3f1d60b32a8
//!   (`inclusionProofs`, `consistencyProofs`, `corruptInclusionProof`,
//!   `corruptConsistencyProof`, `TestVerifyConsistency`); the same data is
//!   published as JSON under `testdata/` since commit bcba819e.
//!
//! These are the vectors of google/certificate-transparency's
//! `merkle_tree_test.cc`, from which the Go code was ported.

use proptest::prelude::*;

use super::*;

fn h(hex_str: &str) -> Hash {
    let bytes = hex::decode(hex_str).unwrap();
    bytes.try_into().unwrap()
}

/// `testonly.LeafInputs()`.
const LEAF_INPUTS: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// `testonly.NodeHashes()`: level → hashes of the complete subtrees at that level.
const NODE_HASHES: [&[&str]; 4] = [
    &[
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    &[
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    &[
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
];

/// `testonly.RootHashes()`: root of the tree of the first `i` leaves.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// `testonly.CompactTrees()`: (level, index) into NODE_HASHES of each frontier hash.
const COMPACT_TREES: [&[(usize, usize)]; 9] = [
    &[],
    &[(0, 0)],
    &[(1, 0)],
    &[(1, 0), (0, 2)],
    &[(2, 0)],
    &[(2, 0), (0, 4)],
    &[(2, 0), (1, 2)],
    &[(2, 0), (1, 2), (0, 6)],
    &[(3, 0)],
];

/// `inclusionProofs` of verify_test.go: (1-based leaf, tree size, proof).
const INCLUSION_PROOFS: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        3,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        2,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

/// `consistencyProofs` of verify_test.go: (old size, new size, proof).
const CONSISTENCY_PROOFS: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

/// `sha256SomeHash` of verify_test.go, a hash that is in no tree.
const SOME_HASH: &str = "abacaba000000000000000000000000000000000000000000060061e00123456";

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

// ---- property tests -------------------------------------------------------

fn leaves_for(size: usize, salt: u64) -> Vec<Hash> {
    (0..size as u64)
        .map(|i| leaf_hash(&[salt.to_be_bytes(), i.to_be_bytes()].concat()))
        .collect()
}

fn hash_ranges(leaves: &[Hash], ranges: Vec<std::ops::Range<u64>>) -> Vec<Hash> {
    let mut hasher = RangeHasher::new(ranges);
    let needed = hasher.needed_leaves() as usize;
    leaves[..needed].iter().for_each(|leaf| hasher.push(*leaf));
    hasher.finish().unwrap()
}

/// For each proof hash, whether it is a left sibling of the path. Two
/// (index, size) pairs with the same shape make the verifier perform the same
/// hash operations, so a proof for one verifies for the other; that is how
/// RFC 9162 verification binds the size, and the tests below check that
/// a tampered size is accepted only in exactly that case.
fn inclusion_shape(index: u64, size: u64) -> Option<Vec<bool>> {
    let ranges = inclusion_proof_ranges(index, size).ok()?;
    Some(ranges.iter().map(|r| r.end <= index).collect())
}

fn consistency_shape(old: u64, new: u64) -> Option<(bool, Vec<bool>)> {
    let ranges = consistency_proof_ranges(old, new).ok()?;
    let level = old.trailing_zeros();
    let start = ((old - 1) >> level) << level;
    let left = ranges.iter().map(|r| r.end <= start).collect();
    Some((old.is_power_of_two(), left))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn compact_range_root_equals_root_at_every_size(size in 0usize..300, salt: u64) {
        let leaves = leaves_for(size, salt);
        let mut compact = CompactRange::new();
        for n in 0..=size {
            prop_assert_eq!(compact.root(), root(&leaves[..n]));
            let resumed = CompactRange::from_frontier(compact.size(), compact.frontier().to_vec());
            prop_assert_eq!(resumed.as_ref(), Ok(&compact));
            if n < size {
                compact.push(leaves[n]);
            }
        }
    }

    #[test]
    fn resumed_compact_range_continues_correctly(size in 1usize..300, cut in 0usize..300, salt: u64) {
        let cut = cut % (size + 1);
        let leaves = leaves_for(size, salt);
        let mut prefix = CompactRange::new();
        leaves[..cut].iter().for_each(|leaf| prefix.push(*leaf));
        let mut resumed = CompactRange::from_frontier(cut as u64, prefix.frontier().to_vec()).unwrap();
        leaves[cut..].iter().for_each(|leaf| resumed.push(*leaf));
        prop_assert_eq!(resumed.root(), root(&leaves));
    }

    #[test]
    fn inclusion_proofs_verify_and_resist_tampering(size in 1u64..300, index in 0u64..300, salt: u64, flip in 0usize..32) {
        let index = index % size;
        let leaves = leaves_for(size as usize, salt);
        let tree_root = root(&leaves);
        let leaf = leaves[index as usize];
        let proof = inclusion_proof(&leaves, index).unwrap();

        // Streaming generation equals the RFC 6962 recursion.
        prop_assert_eq!(hash_ranges(&leaves, inclusion_proof_ranges(index, size).unwrap()), proof.clone());
        prop_assert_eq!(verify_inclusion(&leaf, index, size, &proof, &tree_root), Ok(()));

        for i in 0..proof.len() {
            let mut wrong = proof.clone();
            wrong[i][flip] ^= 1;
            prop_assert!(verify_inclusion(&leaf, index, size, &wrong, &tree_root).is_err());
        }
        let mut wrong_root = tree_root;
        wrong_root[flip] ^= 0x80;
        prop_assert!(verify_inclusion(&leaf, index, size, &proof, &wrong_root).is_err());
        let mut wrong_leaf = leaf;
        wrong_leaf[flip] ^= 0x80;
        prop_assert!(verify_inclusion(&wrong_leaf, index, size, &proof, &tree_root).is_err());
        prop_assert!(verify_inclusion(&leaf, index, size, &proof[..proof.len().saturating_sub(1)], &tree_root).is_err() || proof.is_empty());
        prop_assert!(verify_inclusion(&leaf, index, size, &[&proof[..], &[tree_root]].concat(), &tree_root).is_err());

        // Another index in the same tree is another path: always rejected.
        for other in [index.wrapping_sub(1), index + 1, index ^ 2, index ^ 1] {
            if other != index {
                prop_assert!(verify_inclusion(&leaf, other, size, &proof, &tree_root).is_err());
            }
        }
        // Another size is rejected unless its path has exactly the same shape.
        prop_assert!(verify_inclusion(&leaf, index, size * 2, &proof, &tree_root).is_err());
        let shape = inclusion_shape(index, size);
        for other in [size - 1, size + 1, size + 2, size / 2, size * 2 - 1] {
            if other != size && verify_inclusion(&leaf, index, other, &proof, &tree_root).is_ok() {
                prop_assert_eq!(inclusion_shape(index, other), shape.clone());
            }
        }
    }

    #[test]
    fn consistency_proofs_verify_and_resist_tampering(new in 1u64..300, old in 1u64..300, salt: u64, flip in 0usize..32) {
        let old = 1 + (old - 1) % new;
        let leaves = leaves_for(new as usize, salt);
        let (old_root, new_root) = (root(&leaves[..old as usize]), root(&leaves));
        let proof = consistency_proof(&leaves, old).unwrap();

        prop_assert_eq!(hash_ranges(&leaves, consistency_proof_ranges(old, new).unwrap()), proof.clone());
        prop_assert_eq!(verify_consistency(old, new, &old_root, &new_root, &proof), Ok(()));
        if old == new {
            prop_assert!(proof.is_empty());
            return Ok(());
        }

        for i in 0..proof.len() {
            let mut wrong = proof.clone();
            wrong[i][flip] ^= 1;
            prop_assert!(verify_consistency(old, new, &old_root, &new_root, &wrong).is_err());
        }
        let (mut wrong_old, mut wrong_new) = (old_root, new_root);
        wrong_old[flip] ^= 0x80;
        wrong_new[flip] ^= 0x80;
        prop_assert!(verify_consistency(old, new, &wrong_old, &new_root, &proof).is_err());
        prop_assert!(verify_consistency(old, new, &old_root, &wrong_new, &proof).is_err());
        prop_assert!(verify_consistency(old, new, &new_root, &old_root, &proof).is_err());
        prop_assert!(verify_consistency(old, new, &old_root, &new_root, &proof[1..]).is_err());
        prop_assert!(verify_consistency(old, new, &old_root, &new_root, &[&proof[..], &[new_root]].concat()).is_err());

        // Tampered sizes are accepted only when the proof shape is identical.
        let shape = consistency_shape(old, new);
        let tampered = [
            (old - 1, new), (old + 1, new), (old ^ 2, new),
            (old, new + 1), (old, new - 1), (old, new * 2), (old, new / 2),
        ];
        for (o, n) in tampered {
            if (o, n) != (old, new) && verify_consistency(o, n, &old_root, &new_root, &proof).is_ok() {
                prop_assert_eq!(consistency_shape(o, n), shape.clone(), "{}→{} accepted as {}→{}", old, new, o, n);
            }
        }
    }
}
