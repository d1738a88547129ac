//! Property tests: generated proofs verify, tampering fails, streaming
//! generation equals the RFC 6962 recursion, and [`CompactRange`] equals
//! [`root`] at every size.

use proptest::prelude::*;

use super::*;

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
